"""Issue 28 (inputs): every numeric option of every ``culturesafe`` command is range-checked by argparse, and
a bad value ends in one line naming the option before anything is loaded or run."""

from __future__ import annotations

import argparse

import pytest

from culturesafe_ext import cli_types
from culturesafe_ext.cli import build_parser, main

RUN = ["RUN_DIR"]
# (command words, the option, a bad value, what the error says)
BAD = [
    (["demo"], "--limit", "-1", ">= 1"),
    (["demo"], "--limit", "0", ">= 1"),
    (["demo"], "--batch-size", "-8", ">= 1"),
    (["demo"], "--safety-max-gen-toks", "nan", "whole number"),
    (["build", "culturax", "--source", "x.csv", "--out", "o"], "--threshold", "-3", ">= 0"),
    (["build", "culturax", "--source", "x.csv", "--out", "o"], "--suspect-threshold", "1.5", "between 0 and 1"),
    (
        ["generate", "adaculturesafe", "--descriptions", "d.csv", "--out", "o", "--generator", "g"],
        "--n-knowledge",
        "0",
        ">= 1",
    ),  # fmt: skip
    (
        ["generate", "culturax", "--questions", "q.csv", "--out", "o", "--generator", "g"],
        "--temperature",
        "inf",
        "finite",
    ),  # fmt: skip
    (["generate", "culturax", "--questions", "q.csv", "--out", "o", "--generator", "g"], "--max-tokens", "-1", ">= 1"),
    (["train", "adapters", "--base", "b", "--out", "o"], "--max-steps", "-5", ">= 1"),
    (["train", "adapters", "--base", "b", "--out", "o"], "--heldout-fraction", "2", "between 0 and 1"),
    (["train", "router", "--base", "b", "--out", "o"], "--C", "nan", "finite"),
    (["train", "grounded-dpo", "--base", "b", "--out", "o", "--generator", "{}"], "--learning-rate", "0", "> 0"),
    (["train", "grounded-dpo", "--base", "b", "--out", "o", "--generator", "{}"], "--max-pairs", "-1", ">= 0"),
    (["probe", "compare", "a.npz", "b.npz"], "--permutations", "-10", ">= 0"),
    (["probe", "compare", "a.npz", "b.npz"], "--top", "0", ">= 1"),
    (["judge", "calibrate", "sample", "RUN", "--out", "c"], "--n", "-2", ">= 1"),
    (["judge", "calibrate", "report", "CAL", "--ratings", "r.csv"], "--resamples", "0", ">= 1"),
    (["analyze", "report", "RUN", "--out", "o"], "--knows-threshold", "nan", "finite"),
    (["analyze", "report", "RUN", "--out", "o"], "--safe-threshold", "11", "between 1 and 10"),
    (["analyze", "report", "RUN", "--out", "o"], "--seed", "-1", ">= 0"),
    (["leaderboard", "build", "RUN", "--out", "o"], "--resamples", "-1", ">= 1"),
    (["leaderboard", "validate", "SUB"], "--max-judge-failure-rate", "1.5", "between 0 and 1"),
    (["leaderboard", "validate", "SUB"], "--max-judge-failure-rate", "NaN", "finite"),
    (["leaderboard", "validate", "SUB"], "--spot-check", "-2", ">= 0"),
    (["leaderboard", "validate", "SUB"], "--spot-check-tolerance", "-1", ">= 0"),
    (["leaderboard", "validate", "SUB"], "--min-judge-alpha", "Infinity", "finite"),
]


@pytest.mark.parametrize(("words", "option", "value", "expected"), BAD, ids=[f"{b[0][0]} {b[1]} {b[2]}" for b in BAD])
def test_a_bad_number_ends_in_one_line_naming_the_option(words, option, value, expected, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([*words, option, value])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert f"error: argument {option}: " in last and expected in last and repr(value) in last, err
    assert "Traceback" not in err


def test_the_defaults_and_good_values_pass():
    parser = build_parser()
    args = parser.parse_args(["demo"])
    assert (args.limit, args.batch_size, args.safety_max_gen_toks) == (4, "8", 48)
    args = parser.parse_args(["demo", "--limit", "1", "--batch-size", "auto:4"])
    assert (args.limit, args.batch_size) == (1, "auto:4")
    args = parser.parse_args(["leaderboard", "validate", "S", "--max-judge-failure-rate", "0", "--spot-check", "0"])
    assert (args.max_judge_failure_rate, args.spot_check) == (0.0, 0)
    args = parser.parse_args(["leaderboard", "validate", "S", "--min-judge-alpha", "-0.2"])
    assert args.min_judge_alpha == -0.2


def test_every_numeric_option_of_every_command_has_a_checked_type():
    """No ``type=int`` / ``type=float`` left anywhere in the tree: each number goes through cli_types."""
    checked = {getattr(cli_types, n) for n in dir(cli_types) if callable(getattr(cli_types, n))}

    def walk(parser: argparse.ArgumentParser, words: list[str]):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield from walk(sub, [*words, name])
            elif action.type in (int, float):
                yield " ".join(words), action.option_strings

    assert list(walk(build_parser(), [])) == []
    assert cli_types.in_range(1, 10).__qualname__.startswith("in_range")
    assert checked


def test_the_demo_refuses_a_bad_limit_before_loading_anything(monkeypatch, capsys):
    import culturesafe_ext.demo_model as demo_model

    monkeypatch.setattr(demo_model, "demo_model_dir", lambda: pytest.fail("the demo loaded its model"))
    with pytest.raises(SystemExit):
        main(["demo", "--limit", "-1"])
    assert "argument --limit: must be a whole number >= 1, got '-1'" in capsys.readouterr().err


def test_the_demo_refuses_unknown_tasks_before_loading_anything(monkeypatch, capsys):
    import culturesafe_ext.demo_model as demo_model

    monkeypatch.setattr(demo_model, "demo_model_dir", lambda: pytest.fail("the demo loaded its model"))
    assert main(["demo", "--tasks", "adaculturesafe_knowledge,mmlu"]) == 1
    err = capsys.readouterr().err
    assert "culturesafe demo: error: --tasks: 'mmlu' is not a knowledge task" in err
