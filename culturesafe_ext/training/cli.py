"""``culturesafe train <recipe>``: each recipe module adds its own sub-command.

A recipe module exposes ``add_parser(subparsers)``; heavy imports (torch, peft, trl) stay inside the
function that runs it, so ``culturesafe --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib

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
