"""``culturesafe``: the commands lm_eval's own CLI does not cover (build datasets, judge, analyse...).

Each sub-command lives in its own module exposing ``add_parser(subparsers)``; the module is imported
only when the parser is built, and heavy imports stay inside the command functions.

A mistake (a bad setting, a missing file, a refused judge) ends in one line on stderr naming what to fix
and exit status 1; the Python traceback only with ``--debug`` (anywhere on the command line).
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
    "culturesafe_ext.analysis.rejudge",
    "culturesafe_ext.training.cli",
    "culturesafe_ext.builders.generate.cli",
    "culturesafe_ext.builders.synthesize.cli",
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
    parser.add_argument("--debug", action="store_true", help="show the Python traceback of an error")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    from culturesafe_ext.analysis.cli import route_argv

    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    parser = build_parser()
    args = parser.parse_args(route_argv(argv))
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("culturesafe: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        if debug:
            raise
        print(f"culturesafe {args.command}: error: {one_line(err)}", file=sys.stderr)
        print("(add --debug to see the traceback)", file=sys.stderr)
        return 1


def one_line(err: BaseException) -> str:
    """The error as one line: our own errors are their message, others keep their type's name."""
    text = " ".join(str(err).split())
    if isinstance(err, ValueError) and text:
        return text
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


if __name__ == "__main__":
    sys.exit(main())
