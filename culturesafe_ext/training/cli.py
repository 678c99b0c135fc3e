"""``culturesafe train <recipe>``: each recipe module adds its own sub-command.

A recipe module exposes ``add_parser(subparsers)``; heavy imports (torch, peft, trl) stay inside the
function that runs it, so ``culturesafe --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

from culturesafe_ext.cli_types import count, share

# Modules that contribute ``culturesafe train`` recipes, in help order.
RECIPE_MODULES: list[str] = [
    "culturesafe_ext.training.grounded_dpo",
    "culturesafe_ext.training.adapters",
    "culturesafe_ext.training.router",
]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train an adapter or router on training descriptions (held-out ones stay for evaluation)",
        description="Training recipes. Each splits the dataset by description and writes a manifest beside "
        "its output, so lm_eval refuses to evaluate on what was trained on.",
    )
    recipes = parser.add_subparsers(dest="recipe", metavar="RECIPE", required=True)
    for module_name in RECIPE_MODULES:
        importlib.import_module(module_name).add_parser(recipes)


def add_recipe_args(parser: argparse.ArgumentParser, out_help: str, split_help: str) -> None:
    """The arguments every recipe shares: base model, data source, output, and the description split."""
    parser.add_argument("--base", required=True, help="base model (HF id or folder)")
    parser.add_argument("--data", default="bundled", help="dataset: Hub id, folder from `culturesafe build`, bundled")
    parser.add_argument("--out", required=True, type=Path, help=out_help)
    parser.add_argument("--split", dest="split_file", help=split_help)
    parser.add_argument("--heldout-fraction", type=share, default=0.5, help="share of descriptions held out")
    parser.add_argument("--seed", type=count, default=0)
    parser.add_argument(
        "--prompt-format",
        choices=("raw", "chat"),
        default="raw",
        help="train on prompts as lm_eval sends them by default (raw) or with --apply_chat_template (chat)",
    )


def add_recipe(
    recipes: argparse._SubParsersAction, name: str, help: str, doc: str | None, out_help: str, split_help: str
) -> argparse.ArgumentParser:
    """A recipe's sub-command: its module docstring as the description, and the shared arguments."""
    parser = recipes.add_parser(name, help=help, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_recipe_args(parser, out_help, split_help)
    return parser


def recipe_args(args: argparse.Namespace) -> dict:
    """The shared arguments' values (:func:`add_recipe_args`, less the positional three) as keyword arguments."""
    return {
        "heldout_fraction": args.heldout_fraction,
        "seed": args.seed,
        "split_file": args.split_file,
        "prompt_format": args.prompt_format,
    }
