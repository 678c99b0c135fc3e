"""Judge checks: each judged task names its judge, every logged score re-reads from its raw reply under THE
verdict function (:func:`culturesafe_ext.judge.judge.interpret`), a panel's score re-derives from its judges'
re-read verdicts, the failure rate stays under the policy's ceiling, and each judge has a calibration card
(``culturesafe judge calibrate``) with alpha high enough.

What is judged and by whom is taken from the run, not from what the docs say of themselves: a task is judged
when its task definition has the judge filter (a doc without ``judge_settings`` is then a refusal, never a
skipped check), and the judge's identity (:func:`culturesafe_ext.judge.settings.identity`) is the one the run's
logged metadata names; every doc's copy must equal it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from culturesafe_ext.analysis.calibrate import card_alphas, card_for, judge_name, read_card
from culturesafe_ext.leaderboard.recompute import near
from culturesafe_ext.leaderboard.refusals import Refusal

PROBS_TOLERANCE = 1e-4
COLUMN = "judge_settings"
JUDGE_FILTER = "judge"
DIMENSIONS = ("respectfulness", "awareness")


def is_judged(config: dict, task_obj: Any = None) -> bool:
    """The task's definition has the judge filter (the installed task's, else the logged config's)."""
    if task_obj is not None:
        filters = [f.get("name") for f in (task_obj.config.filter_list or []) if isinstance(f, dict)]
    else:
        filters = [f.get("name") for f in (config.get("filter_list") or []) if isinstance(f, dict)]
    return JUDGE_FILTER in filters


def judge_identity(settings: dict) -> dict:
    """THE judge identity of one judge, or of a panel (each member's, and how the panel aggregates)."""
    from culturesafe_ext.judge.settings import identity, is_panel

    if is_panel(settings):
        members = settings.get("judges") or []
        return {
            "judges": [identity(m) if isinstance(m, dict) else m for m in members],
            "panel_aggregate": settings.get("panel_aggregate") or "mean",
        }
    return identity(settings)


def logged_judge(config: dict) -> dict | None:
    """The judge the run's metadata names, resolved as the task resolved it (without this machine's environment);
    None when the metadata names none (a run judged through ``CULTURESAFE_JUDGE_*`` variables)."""
    from culturesafe_ext.judge.settings import judge_or_panel

    value = (config.get("metadata") or {}).get("judge")
    if value is None:
        return None
    return judge_or_panel(value, env={}).to_dict()


def check_settings(sp: str, where: str, task: str, config: dict, rows: list[dict]) -> tuple[dict | None, list[Refusal]]:
    """The judge settings of a judged task: every doc carries a copy, all copies equal, and equal in identity
    to the logged metadata's judge. Returns the settings to re-read verdicts with (None when refused)."""
    out = []
    copies: dict[str, list] = {}
    for r in rows:
        doc = r.get("doc") if isinstance(r.get("doc"), dict) else {}
        text = doc.get(COLUMN)
        if not isinstance(text, str):
            out.append(Refusal(sp, f"task {task!r}: doc_id {r.get('doc_id')}: no {COLUMN} logged in the doc"))
            continue
        copies.setdefault(text, []).append(r.get("doc_id"))
    if out:
        return None, out[:1] + ([Refusal(sp, f"task {task!r}: {len(out)} docs lack {COLUMN}")] if len(out) > 1 else [])
    if len(copies) > 1:
        ids = [ids[0] for ids in copies.values()]
        return None, [Refusal(sp, f"task {task!r}: the docs carry {len(copies)} different {COLUMN} (doc_id {ids})")]
    if not copies:
        return None, []
    [(text, ids)] = copies.items()
    try:
        settings = json.loads(text)
        if not isinstance(settings, dict):
            raise ValueError("not a JSON object")
    except ValueError as err:
        return None, [Refusal(sp, f"task {task!r}: doc_id {ids[0]}: {COLUMN} is not judge settings ({err})")]
    try:
        expected = logged_judge(config)
    except ValueError as err:
        return None, [Refusal(where, f"task {task!r}: the logged metadata's judge is not usable: {err}")]
    if expected is not None:
        logged, docs = judge_identity(expected), judge_identity(settings)
        if logged != docs:
            return None, [
                Refusal(
                    sp,
                    f"task {task!r}: doc_id {ids[0]}: {COLUMN} names the judge {docs}, the run's logged metadata "
                    f"(in {Path(where).name}) names {logged}",
                )
            ]
    return settings, []


def identify(sp: str, task: str, settings: dict, judges: dict[str, dict], judged_by: set[str]) -> list[Refusal]:
    """Record every judge of the task (each member of a panel) in ``judges``, the panel as a whole in
    ``judged_by``; settings that name no judge are a refusal."""
    members = settings["judges"] if isinstance(settings.get("judges"), list) else [settings]  # a panel
    if any(not isinstance(m, dict) or m.get("backend") in (None, "none") or not m.get("model") for m in members):
        return [Refusal(sp, f"task {task!r}: no judge identified (backend {settings.get('backend')!r})")]
    names = [f"{m['backend']}:{m['model']}:{m.get('rubric_version')}" for m in members]
    judges.update(zip(names, members, strict=True))
    judged_by.add(" + ".join(names))
    return []


def failure_of(result: Any) -> str | None:
    """Why a logged judgement counts as failed, in every form a writer could log it; None when it scored.

    Failed: not an object, no ``score``, a ``score`` that is null, NaN, infinite or not a number, or a
    ``failure`` kind or ``error`` set."""
    if not isinstance(result, dict):
        return f"logged as {type(result).__name__}, not a judgement"
    if "score" not in result:
        return "no score logged"
    score = result["score"]
    if score is None:
        return "score null"
    if isinstance(score, bool) or not isinstance(score, (int, float)):
        return f"score {score!r} is not a number"
    if not math.isfinite(score):
        return f"score {score}"
    if result.get("failure"):
        return f"failure {result['failure']!r}"
    if result.get("error"):
        return f"error {result['error']!r}"
    return None


class _Tally:
    """Judgements, failures and mismatches of one task."""

    def __init__(self) -> None:
        self.attempts = 0
        self.failures = 0
        self.mismatches: list[str] = []
        self.malformed: list[str] = []


def check_verdicts(sp: str, task: str, rows: list[dict], settings: dict, max_failure_rate: float) -> list[Refusal]:
    """Each logged score re-derived from its logged raw reply with the run's judge ``settings``, each panel
    score from its judges' re-read verdicts, and the task's judge failure rate (every failed form counted)."""
    from culturesafe_ext.judge.items import SKIPPED

    panel = isinstance(settings.get("judges"), list)
    members = settings["judges"] if panel else [settings]
    tally = _Tally()
    for r in rows:
        doc = r.get("doc") if isinstance(r.get("doc"), dict) else {}
        resps = r.get("filtered_resps")
        entries = [e for f in resps for e in (f if isinstance(f, list) else [f])] if isinstance(resps, list) else []
        if not entries:
            tally.malformed.append(f"doc_id {r.get('doc_id')}: no filtered response logged")
        for entry in entries:
            try:
                judged = json.loads(entry) if isinstance(entry, str) else entry
            except json.JSONDecodeError:
                judged = None
            if not isinstance(judged, dict):
                tally.malformed.append(f"doc_id {r.get('doc_id')}: a filtered response is not the judge's JSON")
                continue
            for dimension in DIMENSIONS:
                logged = judged.get(dimension)
                if isinstance(logged, dict) and logged.get("error") == SKIPPED:
                    tally.malformed.append(f"doc_id {r.get('doc_id')}/{dimension}: logged as not judged")
                    continue
                _reread(r.get("doc_id"), doc, judged, dimension, logged, members, settings, panel, tally)
    return _findings(sp, task, tally, max_failure_rate)


def _reread(
    doc_id: Any,
    doc: dict,
    judged: dict,
    dimension: str,
    logged: Any,
    members: list[dict],
    settings: dict,
    panel: bool,
    tally: _Tally,
) -> None:
    """Re-read one dimension's verdict (each member's of a panel, then the panel's aggregate) into ``tally``."""
    from culturesafe_ext.judge import JudgeItem
    from culturesafe_ext.judge.judge import interpret
    from culturesafe_ext.judge.panel import AGGREGATES
    from culturesafe_ext.llm.backends import Reply

    item = JudgeItem(
        doc.get("judge_custom", ""),
        doc.get("location", ""),
        doc.get("query", ""),
        judged.get("response") or "",
        dimension,
    )
    results = logged.get("judges") if panel and isinstance(logged, dict) else [logged]
    if not isinstance(results, list) or len(results) != len(members):
        count = len(results) if isinstance(results, list) else 0
        tally.attempts += len(members)
        tally.failures += len(members)
        tally.malformed.append(
            f"doc_id {doc_id}/{dimension}: {count} judge result(s) logged, the judge has {len(members)}"
        )
        return
    again_scores = []
    for k, (result, own) in enumerate(zip(results, members, strict=True)):
        tally.attempts += 1
        if failure_of(result) is not None:
            tally.failures += 1
        if not isinstance(result, dict):
            again_scores.append(None)
            continue
        reply = Reply.from_logged(result)  # the judge's own reading of what it logged
        combined = bool(own.get("both_dimensions_in_one_call", settings.get("both_dimensions_in_one_call")))
        again = interpret(item, reply, combined)
        again_scores.append(again.score)
        # the hf judge logs its probabilities rounded to 6 decimals: re-derived to 1e-4
        tolerance = PROBS_TOLERANCE if reply.probs is not None else 0.0
        if not near(again.score, result.get("score"), tolerance):
            who = f" (judge {k + 1} of the panel)" if panel else ""
            tally.mismatches.append(
                f"{doc_id}/{dimension}{who}: logged {result.get('score')}, its raw reply {result.get('raw')!r} "
                f"gives {again.score}"
            )
    if panel:
        scored = [s for s in again_scores if s is not None]
        aggregate = str(settings.get("panel_aggregate") or "mean")
        derived = float(AGGREGATES[aggregate](scored)) if scored and aggregate in AGGREGATES else None
        score = logged.get("score") if isinstance(logged, dict) else None
        if not near(derived, score, PROBS_TOLERANCE):
            tally.mismatches.append(
                f"{doc_id}/{dimension} (the panel): logged {score}, the {aggregate} of its judges' re-read "
                f"verdicts {again_scores} is {derived}"
            )


def _findings(sp: str, task: str, tally: _Tally, max_failure_rate: float) -> list[Refusal]:
    out = []
    if tally.malformed:
        out.append(
            Refusal(
                sp,
                f"task {task!r}: {len(tally.malformed)} judged response(s) cannot be re-read, e.g. "
                f"{'; '.join(tally.malformed[:3])}",
            )
        )
    if tally.mismatches:
        out.append(
            Refusal(
                sp,
                f"task {task!r}: {len(tally.mismatches)} judge score(s) differ from what the logged raw reply says "
                f"under the verdict rules, e.g. doc_id {'; '.join(tally.mismatches[:3])}",
            )
        )
    attempts, failures = tally.attempts, tally.failures
    if attempts and failures / attempts > max_failure_rate:
        out.append(
            Refusal(
                sp,
                f"task {task!r}: the judge failed on {failures} of {attempts} judgements "
                f"({failures / attempts:.1%}), above --max-judge-failure-rate {max_failure_rate:g}",
            )
        )
    return out


def check_cards(
    where: str, judges: list[dict], card_paths: tuple[Path, ...] | list[Path], min_alpha: float | None
) -> list[Refusal]:
    """Findings for a submission's judges: flag one without a card; refuse alpha below ``min_alpha``.

    With ``min_alpha`` set, a judge without a card is refused too: nothing shows its alpha is high enough.
    """
    out, cards = [], []
    for path in card_paths:
        try:
            cards.append((path, read_card(path)))
        except ValueError as err:
            out.append(Refusal(str(path), str(err)))
    for settings in judges:
        found = card_for(settings, cards)
        if found is None:
            out.append(
                Refusal(
                    where,
                    f"judge not calibrated: no judge card for {judge_name(settings)} "
                    "(make one with 'culturesafe judge calibrate sample|report', pass it with --judge-card)",
                    fatal=min_alpha is not None,
                )
            )
            continue
        path, card = found
        if min_alpha is None:
            continue
        for dimension, figure in card_alphas(card).items():
            alpha = figure.get("value")
            if alpha is None or not alpha >= min_alpha:
                out.append(
                    Refusal(
                        str(path),
                        f"judge {judge_name(settings)}: krippendorff_alpha (judge vs people) for {dimension}, "
                        f"pooled, n={figure.get('n')}, is {alpha}, below --min-judge-alpha {min_alpha:g}",
                    )
                )
    return out
