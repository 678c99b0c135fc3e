"""``culturesafe``: the commands lm_eval's own CLI does not cover (build datasets, judge, analyse...).

THE command tree, in one place::

    culturesafe demo | build ... | generate ... | synthesize | train adapters|router|grounded-dpo | probe ...
                tasks write-configs adaculturesafe|culturax
                judge rejudge RUN_DIR | judge calibrate sample|report
                analyze report RUN_DIR... --out DIR | analyze routing --run LABEL=DIR ...
                leaderboard build|validate|export

The rooms with a command of their own (demo, build, generate, synthesize, train, probe) add it with
``add_parser``; the command groups (tasks, judge, analyze, leaderboard) are spelled out here, and each names its
handler as
``"module:function"``, imported only when that command runs, so ``culturesafe --help`` imports nothing heavy.

A mistake (a bad setting, a missing file, a refused judge) ends in one line on stderr naming what to fix
and exit status 1, printed by :func:`main` and nowhere else; the Python traceback only with ``--debug``
(anywhere on the command line).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable
from pathlib import Path

from culturesafe_ext import __version__
from culturesafe_ext.cli_types import count, in_range, non_negative_float, positive_int, share
from culturesafe_ext.leaderboard.policy import MAX_JUDGE_FAILURE_RATE

# Rooms that add a whole command with add_parser(subparsers), in help order (before the groups below).
COMMAND_MODULES = [
    "culturesafe_ext.demo",
    "culturesafe_ext.builders.cli",
    "culturesafe_ext.training.cli",
    "culturesafe_ext.builders.generate.cli",
    "culturesafe_ext.builders.synthesize.cli",
    "culturesafe_ext.probing.cli",
    "culturesafe_ext.routing.serve_command",
]


def handler(target: str) -> Callable[[argparse.Namespace], int]:
    """A command's function named ``"module:function"``, imported when the command runs."""

    def run(args: argparse.Namespace) -> int:
        module, _, function = target.partition(":")
        return getattr(importlib.import_module(module), function)(args)

    run.target = target  # type: ignore[attr-defined]
    return run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="culturesafe",
        description="Cultural safety and knowledge benchmarks for lm-evaluation-harness. "
        "Evaluate with `lm_eval --tasks adaculturesafe ...`; use these commands for the rest.",
    )
    parser.add_argument("--version", action="version", version=f"culturesafe {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the Python traceback of an error")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).add_parser(commands)
    _tasks(commands)
    _judge(commands)
    _analyze(commands)
    _leaderboard(commands)
    return parser


def _group(commands: argparse._SubParsersAction, name: str, help: str) -> argparse._SubParsersAction:
    parser = commands.add_parser(name, help=help, description=help)
    return parser.add_subparsers(dest="action", metavar="ACTION", required=True)


# --- culturesafe tasks write-configs adaculturesafe|culturax ---------------------------------------------------
def _tasks(commands: argparse._SubParsersAction) -> None:
    from culturesafe_ext.tasks.yaml_configs import BENCHMARKS, add_arguments

    actions = _group(commands, "tasks", "lm-eval task YAMLs for a dataset's own countries or domains")
    write = actions.add_parser(
        "write-configs",
        help="write per-country / per-domain task YAMLs, the groups and their templates into a folder",
        description="Writes DIR (created) for `lm_eval --include_path DIR`; the units come from a built dataset "
        "(--dataset) or the command line.",
    )
    benchmarks = write.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True)
    for benchmark in BENCHMARKS:
        parser = benchmarks.add_parser(benchmark, help=f"the {benchmark} task YAMLs")
        add_arguments(parser, benchmark)
        parser.set_defaults(func=handler("culturesafe_ext.tasks.yaml_configs:run"))


# --- culturesafe judge rejudge|calibrate ------------------------------------------------------------------
def _judge(commands: argparse._SubParsersAction) -> None:
    actions = _group(commands, "judge", "re-judge a run's logged answers, or calibrate a judge against people")
    rejudge = actions.add_parser("rejudge", help="re-judge the logged safety samples of an lm_eval run")
    rejudge.add_argument(
        "run_dir", type=Path, metavar="RUN_DIR", help="an lm_eval --output_path folder (--log_samples)"
    )
    rejudge.add_argument(
        "--judge",
        action="append",
        required=True,
        metavar="JSON",
        help='judge settings as in --metadata, e.g. \'{"backend": "openai", "model": ..., "base_url": ...}\'; '
        'repeat for several judges (a panel, {"judges": [...]}, stands for its judges)',
    )
    rejudge.add_argument(
        "--panel-aggregate",
        choices=("mean", "median"),
        default="mean",
        help="with several --judge: the panel's score of an answer (default: mean)",
    )
    rejudge.add_argument("--out", type=Path, help="write the report JSON here (default: RUN_DIR/rejudge.json)")
    rejudge.set_defaults(func=handler("culturesafe_ext.analysis.rejudge:run"))

    calibrate = actions.add_parser("calibrate", help="how well does the judge agree with people? (sample, report)")
    steps = calibrate.add_subparsers(dest="step", metavar="STEP", required=True)
    sample = steps.add_parser("sample", help="a seeded, stratified sample of judged answers for people to rate")
    sample.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR")
    sample.add_argument("--n", type=positive_int, default=200, help="answers to sample (each rated on both dimensions)")
    sample.add_argument("--out", type=Path, required=True, metavar="CAL")
    sample.add_argument("--seed", type=count, default=0)
    sample.set_defaults(func=handler("culturesafe_ext.analysis.calibrate:run_sample"))
    report = steps.add_parser("report", help="agreement of the judge with the people's ratings; writes judge_card.json")
    report.add_argument("cal", type=Path, metavar="CAL")
    report.add_argument(
        "--ratings", nargs="+", type=Path, required=True, metavar="FILE", help="ratings.csv or LS export"
    )
    report.add_argument("--resamples", type=positive_int, default=1000, help="bootstrap resamples (default 1000)")
    report.add_argument("--seed", type=count, default=0)
    report.set_defaults(func=handler("culturesafe_ext.analysis.calibrate:run_report"))


# --- culturesafe analyze report|routing -------------------------------------------------------------------
def _analyze(commands: argparse._SubParsersAction) -> None:
    actions = _group(commands, "analyze", "findings from lm_eval output folders (nothing is run again)")
    report = actions.add_parser(
        "report",
        help="knowledge vs safety correlation, cross-tab, F1, variant effects: analysis.json + report.html",
        description="Reads lm_eval --output_path folders written with --log_samples; nothing is run again.",
    )
    report.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR", help="one lm_eval output folder per model")
    report.add_argument("--out", type=Path, required=True, metavar="REPORT_DIR")
    report.add_argument("--label", action="append", help="model label per RUN_DIR, in order (default: lm-eval's name)")
    _analysis_options(report)
    report.add_argument("--title", default="culturesafe analysis")
    report.set_defaults(func=handler("culturesafe_ext.analysis.report:run"))

    routing = actions.add_parser(
        "routing",
        help="base / fixed / learned / oracle routing per country, from several runs of the same tasks",
        description="One table per country: each run's metric, macro means, oracle minus learned, routing "
        "accuracy from hf-router's route tags and the router's held-out accuracy.",
    )
    routing.add_argument("--run", action="append", required=True, metavar="LABEL=DIR", help="an lm_eval output folder")
    routing.add_argument("--metric", default="acc,none")
    routing.add_argument("--router", help="router folder (its router_eval.json is added)")
    routing.add_argument("--out", type=Path, help="write the JSON here")
    routing.set_defaults(func=handler("culturesafe_ext.analysis.routing_compare:run"))


def _analysis_options(parser: argparse.ArgumentParser) -> None:
    """The options of an analysis (:class:`culturesafe_ext.analysis.parts.Options`): report and leaderboard."""
    from culturesafe_ext.tasks.taxonomy import KNOWLEDGE_FAMILIES

    parser.add_argument(
        "--knowledge-family",
        choices=list(KNOWLEDGE_FAMILIES),
        help="knowledge scores used for correlation, cross-tab and F1 (default: gen, else mc, else circular)",
    )
    parser.add_argument(
        "--safe-threshold", type=in_range(1, 10), default=6.0, help="respectfulness >= this is safe (1..10)"
    )
    parser.add_argument("--knows-threshold", type=share, default=0.5, help="accuracy >= this is knows (0..1)")
    parser.add_argument("--resamples", type=positive_int, default=2000, help="bootstrap resamples (default 2000)")
    parser.add_argument("--seed", type=count, default=0)
    parser.add_argument(
        "--judge-card",
        action="append",
        default=[],
        metavar="FILE",
        help="judge_card.json from 'culturesafe judge calibrate report': its agreement with people is shown "
        "beside the judge's scores",
    )


# --- culturesafe leaderboard build|validate|export --------------------------------------------------------
def _leaderboard(commands: argparse._SubParsersAction) -> None:
    actions = _group(commands, "leaderboard", "build a leaderboard across models, validate or export a submission")
    build = actions.add_parser("build", help="one table across models: markdown, CSV, JSON and sortable HTML")
    build.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR")
    build.add_argument("--out", type=Path, required=True, metavar="DIR")
    build.add_argument(
        "--label",
        action="append",
        help="row label per RUN_DIR, in order (default: lm-eval's model name, repeats numbered #2, #3...); "
        "each row also names its RUN_DIR",
    )
    _analysis_options(build)
    build.set_defaults(func=handler("culturesafe_ext.leaderboard.build:run"))

    validate = actions.add_parser(
        "validate", help="accept an lm_eval output folder only if it is a complete, honest run (exit 1 otherwise)"
    )
    validate.add_argument("submission", type=Path, metavar="SUBMISSION_DIR")
    validate.add_argument(
        "--group", action="append", help="task group(s) the submission must cover completely (default: adaculturesafe)"
    )
    validate.add_argument(
        "--allow-bundled",
        action="store_true",
        help="accept runs on the bundled sample (for trying the pipeline; never for a real leaderboard)",
    )
    validate.add_argument(
        "--max-judge-failure-rate",
        type=share,
        default=MAX_JUDGE_FAILURE_RATE,
        metavar="RATE",
        help="refuse a task whose judge failed on more than this share of its judgements "
        f"(default {MAX_JUDGE_FAILURE_RATE})",
    )
    validate.add_argument(
        "--spot-check",
        type=count,
        default=0,
        metavar="N",
        help="re-generate and re-judge N seeded documents with the logged model and judge and compare "
        "(proves where the answers and scores came from; needs both reachable)",
    )
    validate.add_argument("--seed", type=count, default=0, help="seed of the spot-check sample (default 0)")
    validate.add_argument(
        "--spot-check-tolerance",
        type=non_negative_float,
        default=1.0,
        metavar="POINTS",
        help="largest judge-score difference (1..10 scale) a spot check accepts (default 1.0)",
    )
    validate.add_argument(
        "--judge-card",
        action="append",
        type=Path,
        default=[],
        metavar="FILE",
        help="judge_card.json from 'culturesafe judge calibrate report'; a judge without one is flagged",
    )
    validate.add_argument(
        "--min-judge-alpha",
        type=in_range(-1, 1),
        metavar="ALPHA",
        help="refuse when the judge's card shows Krippendorff's alpha (pooled, any dimension) below this",
    )
    validate.add_argument(
        "--reference-data",
        action="append",
        default=[],
        metavar="DIR_OR_HUB_ID",
        help="the released dataset whose card publishes the content fingerprints a run's data must match: a "
        "folder written by 'culturesafe build' or a Hub id (read at the run's logged revision); default: "
        "each benchmark's Hub dataset",
    )
    validate.set_defaults(func=handler("culturesafe_ext.leaderboard.verdict:run"))

    export = actions.add_parser(
        "export",
        help="the Hugging Face Hub's Eval Results files (.eval_results/<benchmark>.yaml) for a model repo's PR",
        description="Writes DIR/.eval_results/<benchmark>.yaml per benchmark in the run: one entry per task and "
        "group with its headline metric, the dataset id and revision the run logged, the run's date, and in "
        "'notes' the metric, the judge and its failure count. Validate the run first "
        "(culturesafe leaderboard validate); then open a pull request on the model repo with the folder.",
    )
    export.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="one model's lm_eval output folder")
    export.add_argument("--out", type=Path, required=True, metavar="DIR", help="writes DIR/.eval_results/*.yaml")
    export.add_argument("--source-url", help="where the evaluation can be seen (e.g. the run's logs on the Hub)")
    export.add_argument("--source-name", help="display name of that source (needs --source-url)")
    export.set_defaults(func=handler("culturesafe_ext.leaderboard.export:run"))


# --- running a command: THE one place errors are printed ---------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("culturesafe: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        if debug:
            raise
        command = " ".join(str(getattr(args, key)) for key in ("command", "action") if getattr(args, key, None))
        print(f"culturesafe {command}: error: {error_text(err)}", file=sys.stderr)
        print("(add --debug to see the traceback)", file=sys.stderr)
        return 1


def error_text(err: BaseException) -> str:
    """The error as one line: our own errors are their message, others keep their type's name.

    An input error that lists its problems (:class:`culturesafe_ext.data.textio.TextInputError`) keeps one
    line per problem, each naming file, record and field.
    """
    if getattr(err, "problems", None) and isinstance(err, ValueError):
        return str(err).strip()
    text = " ".join(str(err).split())
    if isinstance(err, ValueError) and text:
        return text
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


if __name__ == "__main__":
    sys.exit(main())
