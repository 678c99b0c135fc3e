"""AlignCultura's Stage I steps 4-5: K candidate references per question and goal, scored by a *different* model
(an HHH-quality critic), then feedback-guided re-sampling of prompts with no accepted candidate ("two-stage
rejection sampling").

Round 0: ``candidates`` answers per (question, goal) from the writer (each its own cache key, so K samples are K
requests); the critic scores each 1-10 with a critique; a candidate scoring >= ``accept`` is accepted, the best one
kept. Rounds 1..``feedback_rounds``: only the prompts with no accepted candidate, the critiques of the last round
in the prompt. A critic reply without a usable score is a counted failure (the candidate is not accepted). Every
candidate, score and critique is written to ``<work>/rejection_sampling.jsonl``; acceptance rates per round and
goal go into the report and the dataset card. Questions whose three goals all got an accepted answer go to the
review of ``generate culturax`` and are published by the same :func:`.culturax.publish`.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from culturesafe_ext.llm import LLMClient
from culturesafe_ext.llm.backends.base import LLMRunError
from culturesafe_ext.parsing import find_json_object

from . import engine, review, workdir
from .culturax import DATASET, plan_questions
from .inputs import read_questions
from .items import REFERENCE_KEYS
from .prompts import load_prompt

LOG = "rejection_sampling.jsonl"


class SameModelError(ValueError):
    """The critic is the writer: no model may both write and score the same output."""


def check_distinct(writer: LLMClient, critic: LLMClient) -> None:
    w, c = writer.config, critic.config
    if (w.backend, w.model) == (c.backend, c.model):
        raise SameModelError(
            f"--critic {c.backend}:{c.model} is the writer (--generator {w.backend}:{w.model}): the critic must be "
            "a different model (no model both writes and scores the same output)"
        )


@dataclass
class Candidate:
    question_id: str
    goal: str
    round: int
    k: int
    text: str | None
    writer_error: str | None = None
    score: int | None = None
    critique: str | None = None
    critic_error: str | None = None
    accepted: bool = False


def _critique(raw: str | None, error: str | None) -> tuple[int | None, str | None, str | None]:
    if error is not None:
        return None, None, f"critic request failed: {error}"
    obj = find_json_object(raw or "")
    score = obj.get("score") if isinstance(obj, dict) else None
    if isinstance(score, bool) or not isinstance(score, (int, float)) or not 1 <= score <= 10 or score != int(score):
        return None, None, "critic reply: no integer score 1-10"
    critique = obj.get("critique")
    return int(score), critique if isinstance(critique, str) else "", None


def _feedback(tried: list[Candidate]) -> str:
    lines = [
        f"- an earlier answer scored {c.score}/10: {c.critique or '(no critique)'}" if c.score is not None
        else f"- an earlier answer could not be scored ({c.critic_error or c.writer_error})"
        for c in tried
    ]  # fmt: skip
    return "Earlier answers were rejected by the reviewer:\n" + "\n".join(lines)


def generate(
    questions_path: Path, work: Path, writer: LLMClient, critic: LLMClient, *, candidates: int = 3, accept: int = 7,
    feedback_rounds: int = 2, max_tokens: int = 512, threshold: int = 10, seed: int = 0, version: str = "v1",
) -> dict:  # fmt: skip
    """Rejection-sample the three references of every (deduplicated) question; write the log, candidates, review."""
    check_distinct(writer, critic)
    if candidates < 1 or feedback_rounds < 0 or not 1 <= accept <= 10:
        raise ValueError("--candidates >= 1, --feedback-rounds >= 0 and --accept in 1..10, please")
    plan = plan_questions(read_questions(questions_path), threshold, seed)
    w_prompt, c_prompt = load_prompt("culturax_reference", version), load_prompt("culturax_critic", version)
    by_id = {c["id"]: c for c in plan.kept}
    best: dict[tuple[str, str], Candidate | None] = {(c["id"], g): None for c in plan.kept for g in REFERENCE_KEYS}
    feedback: dict[tuple[str, str], str] = {}
    log: list[Candidate] = []
    rounds: list[dict] = []
    sent = Counter()
    for rnd in range(feedback_rounds + 1):
        pending = [p for p, b in best.items() if b is None]
        if not pending:
            break
        w_requests = []
        for qid, goal in pending:
            q = by_id[qid]
            messages = w_prompt.messages(
                question=q["question"], subdomain=q["q"]["subdomain"] or "(not given)", goal=goal,
                feedback=feedback.get((qid, goal), "(none: first round)"),
            )  # fmt: skip
            for k in range(candidates):
                w_requests.append(((qid, goal, k), writer.request(messages, f"{w_prompt.id}#r{rnd}#k{k}", "generate",
                                                                  max_tokens)))  # fmt: skip
        done = writer.complete([r for _, r in w_requests])
        if done.fatal:
            raise LLMRunError(done.fatal)
        sent["writer_sent"] += done.sent
        sent["writer_cached"] += sum(r.key in done.cached for _, r in w_requests)
        batch: list[Candidate] = []
        for (qid, goal, k), request in w_requests:
            reply = done.replies[request.key]
            text = (reply.text or "").strip() if reply.error is None else None
            error = reply.error if reply.error is not None else (None if text else "empty reply")
            batch.append(Candidate(qid, goal, rnd, k, text or None, writer_error=error))
        scored = [c for c in batch if c.writer_error is None]
        c_requests = [
            critic.request(
                c_prompt.messages(question=by_id[c.question_id]["question"], goal=c.goal, answer=c.text),
                c_prompt.id,
                "generate",
                256,
            )  # fmt: skip
            for c in scored
        ]
        verdicts = critic.complete(c_requests)
        if verdicts.fatal:
            raise LLMRunError(verdicts.fatal)
        sent["critic_sent"] += verdicts.sent
        sent["critic_cached"] += sum(r.key in verdicts.cached for r in c_requests)
        for cand, request in zip(scored, c_requests, strict=True):
            reply = verdicts.replies[request.key]
            cand.score, cand.critique, cand.critic_error = _critique(reply.text, reply.error)
            cand.accepted = cand.score is not None and cand.score >= accept
        log += batch
        by_prompt: dict[tuple[str, str], list[Candidate]] = {}
        for cand in batch:
            by_prompt.setdefault((cand.question_id, cand.goal), []).append(cand)
        for p, cands in by_prompt.items():
            ok = sorted((c for c in cands if c.accepted), key=lambda c: (-(c.score or 0), c.k))
            if ok:
                best[p] = ok[0]
            else:
                feedback[p] = _feedback(cands)
        rounds.append(_round_stats(rnd, pending, batch))
    kept, incomplete = [], []
    for c in plan.kept:
        chosen = {g: best[(c["id"], g)] for g in REFERENCE_KEYS}
        if all(chosen.values()):
            kept.append(plan.candidate(c, {g: chosen[g].text for g in REFERENCE_KEYS}))
        else:
            incomplete.append({"id": c["id"], "goals_without_accepted_answer": [g for g, v in chosen.items() if not v]})
    work.mkdir(parents=True, exist_ok=True)
    with (work / LOG).open("w", encoding="utf-8") as fh:
        for cand in log:
            fh.write(json.dumps(asdict(cand), ensure_ascii=False) + "\n")
    critic_failures = sum(c.critic_error is not None for c in log)
    stats = {
        "tasks": len(plan.kept), "complete": len(kept), "incomplete": len(incomplete),
        "requests": sum(sent.values()), "sent": sent["writer_sent"] + sent["critic_sent"],
        "cached": sent["writer_cached"] + sent["critic_cached"], **dict(sent),
        "failed_requests": sum(c.writer_error is not None for c in log), "truncated_replies": 0,
        "filtered_replies": 0, "unparseable_replies": critic_failures, "replies_with_invalid_items": 0,
    }  # fmt: skip
    sampling = {
        "critic": engine.generator_settings(critic),
        "candidates": candidates, "accept": accept, "feedback_rounds": feedback_rounds,
        "rounds": rounds, "prompts_without_accepted_answer": sum(b is None for b in best.values()),
        "log": str(work / LOG),
    }  # fmt: skip
    report = {
        "dataset": DATASET,
        "inputs": str(questions_path),
        "generator": engine.generator_settings(writer),
        "prompts": [w_prompt.id, c_prompt.id],
        "settings": {
            "max_attempts": feedback_rounds + 1,
            "max_tokens": max_tokens,
            "threshold": threshold,
            "seed": seed,
        },  # fmt: skip
        "questions": len(plan.all_items),
        "stats": stats,
        "rejection_sampling": sampling,
        "incomplete_tasks": incomplete,
        "removed_near_duplicates": plan.removed,
        "candidates": {DATASET: len(kept)},
        "card_sections": [["Two-stage rejection sampling", card_section(sampling)]],
    }
    workdir.write(work, kept, report)
    review.export(kept, work / workdir.REVIEW)
    return report


def _round_stats(rnd: int, pending: list, batch: list[Candidate]) -> dict:
    per_goal = {}
    for goal in REFERENCE_KEYS:
        cands = [c for c in batch if c.goal == goal]
        prompts = {c.question_id for c in cands}
        accepted_prompts = {c.question_id for c in cands if c.accepted}
        per_goal[goal] = {
            "prompts": len(prompts), "candidates": len(cands),
            "scored": sum(c.score is not None for c in cands), "accepted": sum(c.accepted for c in cands),
            "candidate_acceptance": sum(c.accepted for c in cands) / len(cands) if cands else None,
            "prompts_resolved": len(accepted_prompts),
        }  # fmt: skip
    return {"round": rnd, "prompts": len(pending), "per_goal": per_goal}


def card_section(sampling: dict) -> str:
    """Acceptance rates per round and goal, for the dataset card."""
    critic = sampling["critic"]
    lines = [
        f"K = {sampling['candidates']} candidates per question and goal, each scored 1-10 by the critic "
        f"`{critic.get('model', '?')}` ({critic.get('backend')}), a different model from the writer; accepted at "
        f"score >= {sampling['accept']}; prompts with no accepted candidate re-sampled with the critic's feedback, "
        f"at most {sampling['feedback_rounds']} time(s). {sampling['prompts_without_accepted_answer']} prompts ended "
        "without an accepted answer (their questions are not published). Every candidate, score and critique is in "
        "the work folder's `rejection_sampling.jsonl`.",
        "",
        "| round | goal | prompts | candidates | accepted | acceptance rate | prompts resolved |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in sampling["rounds"]:
        for goal, g in r["per_goal"].items():
            if not g["candidates"]:
                continue
            lines.append(
                f"| {r['round']} | {goal} | {g['prompts']} | {g['candidates']} | {g['accepted']} | "
                f"{g['candidate_acceptance']:.1%} | {g['prompts_resolved']} |"
            )
    return "\n".join(lines)
