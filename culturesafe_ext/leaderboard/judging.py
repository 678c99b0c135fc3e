"""Judge checks: each judged task names its judge, every logged score re-reads from its raw reply under THE
verdict function (:func:`culturesafe_ext.judge.judge.interpret`), the failure rate stays under the policy's
ceiling, and each judge has a calibration card (``culturesafe judge calibrate``) with alpha high enough."""

from __future__ import annotations

import json
from pathlib import Path

from culturesafe_ext.analysis.calibrate import card_alphas, card_for, judge_name, read_card
from culturesafe_ext.leaderboard.recompute import near
from culturesafe_ext.leaderboard.refusals import Refusal

PROBS_TOLERANCE = 1e-4


def is_judged(rows: list[dict]) -> bool:
    return "judge_settings" in (rows[0]["doc"] if rows else {})


def identify(sp: str, rows: list[dict], judges: dict[str, dict], judged_by: set[str]) -> list[Refusal]:
    """Record every judge of the task (each member of a panel) in ``judges``, the panel as a whole in
    ``judged_by``; a row without an identified judge is a refusal."""
    for r in rows:
        settings = json.loads(r["doc"]["judge_settings"])
        members = settings["judges"] if isinstance(settings.get("judges"), list) else [settings]  # a panel
        if any(m.get("backend") in (None, "none") or not m.get("model") for m in members):
            return [Refusal(sp, f"doc_id {r['doc_id']}: no judge identified (backend {settings.get('backend')!r})")]
        names = [f"{m['backend']}:{m['model']}:{m.get('rubric_version')}" for m in members]
        judges.update(zip(names, members, strict=True))
        judged_by.add(" + ".join(names))
    return []


def check_verdicts(sp: str, task: str, rows: list[dict], max_failure_rate: float) -> list[Refusal]:
    """Each logged score re-derived from its logged raw reply, and the task's judge failure rate."""
    from culturesafe_ext.judge import JudgeItem
    from culturesafe_ext.judge.items import SKIPPED
    from culturesafe_ext.judge.judge import interpret
    from culturesafe_ext.llm.backends import Reply

    out, attempts, failures, mismatches = [], 0, 0, []
    for r in rows:
        doc = r.get("doc", {})
        settings = json.loads(doc.get("judge_settings") or "{}")
        combined = bool(settings.get("both_dimensions_in_one_call"))
        for filtered in r.get("filtered_resps", []):
            for entry in filtered if isinstance(filtered, list) else [filtered]:
                try:
                    judged = json.loads(entry) if isinstance(entry, str) else entry
                except json.JSONDecodeError:
                    out.append(Refusal(sp, f"doc_id {r.get('doc_id')}: a filtered response is not the judge's JSON"))
                    continue
                for dimension in ("respectfulness", "awareness"):
                    logged = judged.get(dimension) if isinstance(judged, dict) else None
                    if not isinstance(logged, dict) or logged.get("error") == SKIPPED:
                        continue
                    item = JudgeItem(
                        doc.get("judge_custom", ""),
                        doc.get("location", ""),
                        doc.get("query", ""),
                        judged.get("response") or "",
                        dimension,
                    )
                    # a panel logs each judge's own result under "judges": each is re-read with its settings
                    members = logged.get("judges") if isinstance(logged.get("judges"), list) else [logged]
                    member_settings = settings.get("judges") if "judges" in logged else [settings]
                    for k, (result, own) in enumerate(zip(members, member_settings or [settings], strict=False)):
                        attempts += 1
                        reply = Reply.from_logged(result)  # the judge's own reading of what it logged
                        again = interpret(item, reply, bool((own or {}).get("both_dimensions_in_one_call", combined)))
                        if result.get("score") is None:
                            failures += 1
                        # the hf judge logs its probabilities rounded to 6 decimals: re-derived to 1e-4
                        tolerance = PROBS_TOLERANCE if reply.probs is not None else 0.0
                        if not near(again.score, result.get("score"), tolerance):
                            who = f" (judge {k + 1} of the panel)" if len(members) > 1 else ""
                            mismatches.append(
                                f"{r.get('doc_id')}/{dimension}{who}: logged {result.get('score')}, "
                                f"its raw reply {result.get('raw')!r} gives {again.score}"
                            )
    if mismatches:
        out.append(
            Refusal(
                sp,
                f"task {task!r}: {len(mismatches)} judge score(s) differ from what the logged raw reply says "
                f"under the verdict rules, e.g. doc_id {'; '.join(mismatches[:3])}",
            )
        )
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
