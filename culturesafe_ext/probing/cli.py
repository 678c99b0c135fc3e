"""``culturesafe probe ...``: neuron-probing commands (the statistics come from ``--model hf-probe``)."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("probe", help="analyse MLP neuron statistics recorded by --model hf-probe")
    commands = parser.add_subparsers(dest="probe_command", metavar="COMMAND", required=True)
    from culturesafe_ext.probing import compare

    compare.add_parser(commands)
