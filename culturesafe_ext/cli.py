"""``culturesafe``: the commands lm_eval's own CLI does not cover (build datasets, judge, analyse...).

Each sub-command lives in its own module exposing ``add_parser(subparsers)``; the module is imported
only when the parser is built, and heavy imports stay inside the command functions.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from culturesafe_ext import __version__

# Modules that contribute sub-commands, in help order.
COMMAND_MODULES = [
    "culturesafe_ext.demo",
    "culturesafe_ext.builders.cli",
    "culturesafe_ext.judge.cli",
    "culturesafe_ext.training.cli",
    "culturesafe_ext.builders.generate.cli",
    "culturesafe_ext.analysis.cli",
    "culturesafe_ext.probing.cli",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="culturesafe",
        description="Cultural safety and knowledge benchmarks for lm-evaluation-harness. "
        "Evaluate with `lm_eval --tasks adaculturesafe ...`; use these commands for the rest.",
    )
    parser.add_argument("--version", action="version", version=f"culturesafe {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    from culturesafe_ext.analysis.cli import route_argv

    parser = build_parser()
    args = parser.parse_args(route_argv(sys.argv[1:] if argv is None else list(argv)))
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
