"""``culturesafe leaderboard validate``: is an lm-eval output folder a complete, honest run fit for the leaderboard?

Every refusal names file and reason. The checks: structure (:mod:`.structure`: complete, no ``--limit``, a
version per task, the installed task version's metric set, lm-eval's hashes, every metric recomputed from
the logged samples with the installed task code), data coverage (:mod:`.coverage`: a recorded dataset
revision, every document exactly once and equal to the dataset's), the judge (:mod:`.judging`: identified,
every logged raw reply re-read under the verdict rules, failure rate, calibration cards) and, on request,
a spot check (:mod:`.spot_check`). What the fixed checks prove is internal consistency and coverage; that
the answers came from the named model and the scores from the named judge only a spot check shows.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from culturesafe_ext.analysis.runs import Run, read_run
from culturesafe_ext.leaderboard import coverage, judging, structure
from culturesafe_ext.leaderboard.policy import Policy
from culturesafe_ext.leaderboard.refusals import Refusal
from culturesafe_ext.leaderboard.submission import installed_tasks, leaf_tasks


def validate(
    submission: Path, groups: tuple[str, ...] = ("adaculturesafe",), allow_bundled: bool = False, **policy: Any
) -> list[Refusal]:
    """All refusals for ``submission`` (empty: accepted); ``policy`` takes :class:`Policy`'s other fields."""
    findings = check(submission, Policy(groups=tuple(groups), allow_bundled=allow_bundled, **policy))
    return [f for f in findings if f.fatal]


def check(submission: Path, policy: Policy) -> list[Refusal]:
    """Every finding for ``submission``: refusals, and flags (``fatal=False``) such as an uncalibrated judge."""
    try:
        run = read_run(Path(submission))
    except (FileNotFoundError, ValueError) as err:
        return [Refusal(str(submission), str(err))]
    groups = policy.groups
    expected = [t for g in groups for t in leaf_tasks(g)]
    refusals = structure.check_complete(Path(submission), run, groups, expected)
    present = [t for t in run.tasks if t in expected]
    installed, failed = installed_tasks(run, present)
    refusals.extend(failed)
    judges: dict[str, dict] = {}  # every judge (each member of a panel), for the judge cards
    judged_by: set[str] = set()  # per task, its judge or panel as a whole
    for task in present:
        refusals.extend(_check_task(run, task, policy, judges, installed.get(task), judged_by))
    if len(judged_by) > 1:
        refusals.append(
            Refusal(str(submission), f"the safety tasks were judged by different judges: {sorted(judged_by)}")
        )
    for rf in run.results_files:
        refusals.extend(structure.check_groups(rf.path, rf.data))
    if judges:
        cards = judging.check_cards(str(submission), list(judges.values()), policy.judge_cards, policy.min_judge_alpha)
        refusals.extend(cards)
    if policy.spot_check > 0:
        from culturesafe_ext.leaderboard.spot_check import spot_check

        refusals.extend(spot_check(run, present, policy.spot_check, policy.seed, policy.spot_check_tolerance))
    return refusals


def _check_task(
    run: Run, task: str, policy: Policy, judges: dict[str, dict], task_obj: Any, judged_by: set[str]
) -> list[Refusal]:
    rf = run.task_results[task]
    where, data, config = str(rf.path), rf.data, run.config(task)
    out = structure.check_recorded(where, task, data)
    out.extend(coverage.check_dataset(where, task, config, policy.allow_bundled))
    samples_path = run.samples_path(task)
    if samples_path is None:
        return [*out, Refusal(where, f"task {task!r}: no samples file (run with --log_samples)")]
    rows = run.samples(task)
    sp = str(samples_path)
    out.extend(structure.check_sample_count(sp, task, data, rows))
    if task_obj is not None:
        out.extend(structure.check_definition(where, task, task_obj, data, config, rows))
        out.extend(coverage.check_documents(sp, task, task_obj, rows))
    out.extend(structure.check_hashes(sp, rf, task, rows))
    if judging.is_judged(rows):
        out.extend(judging.identify(sp, rows, judges, judged_by))
        out.extend(judging.check_verdicts(sp, task, rows, policy.max_judge_failure_rate))
    out.extend(
        structure.check_metrics(rf.path, task, config, data.get("results", {}).get(task, {}), rows, sp, task_obj)
    )
    return out


def report(submission: Path, groups: tuple[str, ...], findings: list[Refusal], spot_checked: int) -> tuple[str, int]:
    """The verdict as printed (flags, then REFUSED with each refusal, or ACCEPTED) and the exit status."""
    lines = [f"FLAG: {flag}" for flag in findings if not flag.fatal]
    refusals = [f for f in findings if f.fatal]
    if refusals:
        lines.append(f"REFUSED: {submission} ({len(refusals)} problem(s))")
        lines.extend(f"  {refusal}" for refusal in refusals)
        return "\n".join(lines), 1
    checked = f"; {spot_checked} spot-checked documents agree" if spot_checked else " (no spot check)"
    lines.append(
        f"ACCEPTED: {submission} covers {', '.join(groups)} completely, its metrics recompute exactly and "
        f"every judge verdict re-reads from its raw reply{checked}"
    )
    return "\n".join(lines), 0


def run(args: argparse.Namespace) -> int:
    groups = tuple(args.group or ["adaculturesafe"])
    policy = Policy(
        groups=groups,
        allow_bundled=args.allow_bundled,
        max_judge_failure_rate=args.max_judge_failure_rate,
        judge_cards=tuple(args.judge_card),
        min_judge_alpha=args.min_judge_alpha,
        spot_check=args.spot_check,
        seed=args.seed,
        spot_check_tolerance=args.spot_check_tolerance,
    )
    text, status = report(args.submission, groups, check(args.submission, policy), args.spot_check)
    print(text)
    return status
