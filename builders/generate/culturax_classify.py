"""AlignCultura's Stage I step 1: (re)classify questions into the UNESCO FCS subdomains, multi-label, threshold δ.

Each question goes to the LLM once (cached, so a resumed run sends nothing twice) and comes back as a probability
per subdomain it names. A reply naming a subdomain outside the 30 (or a score outside [0, 1]) is a counted rejection,
retried with the problem as feedback up to ``max_attempts``; a question with no label >= δ is listed, not dropped.
With reference labels (the release's ``class`` column, or ``subdomain_id`` in a questions file), :func:`agreement`
reports how far the chosen classifier is from the authors': top-label accuracy, per-subdomain precision and recall
and the confusion matrix (scikit-learn).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from culturesafe_ext.data.culturax_schema import SUBDOMAINS
from culturesafe_ext.llm import LLMClient

from . import engine
from .prompts import load_prompt

BY_NAME = {s.name.casefold(): s for s in SUBDOMAINS.values()}
UNKNOWN = "unknown subdomain"
QUESTIONS, REPORT, CONFUSION = "questions.jsonl", "classify_report.json", "confusion_matrix.csv"


@dataclass(frozen=True)
class Item:
    """A question to classify, with the label it already has (the reference) if any."""

    id: str
    question: str
    reference: int | None


def read_items(questions: Path | None, culturax_csv: Path | None) -> list[Item]:
    """From a questions file (``subdomain_id`` optional) or the authors' CulturaX.csv (``class`` = reference)."""
    if culturax_csv is not None:
        from ..culturax import read_csv

        rows, _ = read_csv(culturax_csv)
        return [Item(f"row{r.row}", r.question, r.subdomain_id) for r in rows]
    from .inputs import read_questions

    return [Item(q.id, q.question, int(q.subdomain_id) if q.subdomain_id else None) for q in read_questions(questions)]


def scores_in_reply(obj: dict) -> tuple[list[dict], list[str]]:
    """``{"scores": {name: p}}`` -> one item ``{subdomain_id: p}``; unknown names and bad scores are problems."""
    scores = obj.get("scores")
    if not isinstance(scores, dict) or not scores:
        return [], ["field 'scores': missing, empty or not an object"]
    out, problems = {}, []
    for name, p in scores.items():
        sub = BY_NAME.get(" ".join(str(name).split()).casefold())
        if sub is None:
            problems.append(f"{UNKNOWN}: {name!r} is not one of the 30 UNESCO subdomains")
        elif isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
            problems.append(f"scores.{name}: {p!r} is not a probability in [0, 1]")
        else:
            out[sub.id] = float(p)
    return ([{"scores": out}] if not problems else []), problems


def classify(
    items: list[Item], out: Path, writer: LLMClient, *, delta: float = 0.5, max_attempts: int = 3,
    max_tokens: int = 512, version: str = "v1", inputs: str = "",
) -> dict:  # fmt: skip
    """Classify every item; write ``questions.jsonl`` (the top label >= δ as ``subdomain_id``) and the report."""
    if not 0 < delta <= 1:
        raise ValueError(f"--delta {delta}: expected a probability in (0, 1]")
    prompt = load_prompt("culturax_classify", version)
    tasks = [
        engine.Task(it.id, prompt, {"question": it.question}, 1, scores_in_reply, lambda item: "scores") for it in items
    ]
    outcomes, stats = engine.run(writer, tasks, max_attempts=max_attempts, max_tokens=max_tokens)
    rows, unlabelled, failed = [], [], []
    unknown_replies = sum(any(p.startswith(UNKNOWN) for p in a.problems) for o in outcomes for a in o.attempts)
    for it, outcome in zip(items, outcomes, strict=True):
        scores = outcome.items[0]["scores"] if outcome.complete else {}
        ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
        labels = [sid for sid, p in ranked if p >= delta]
        top = ranked[0][0] if ranked else None
        if not outcome.complete:
            failed.append({"id": it.id, "question": it.question, "attempts": outcome.report()["attempts"]})
        elif not labels:
            unlabelled.append({"id": it.id, "question": it.question, "top": top, "top_score": ranked[0][1]})
        sub = SUBDOMAINS[labels[0]] if labels else None
        rows.append(
            {
                "id": it.id,
                "question": it.question,
                "subdomain_id": sub.id if sub else "",
                "subdomain": sub.name if sub else "",
                "domain": sub.domain if sub else "",
                "labels": labels,
                "scores": {str(k): v for k, v in ranked},
                "top_label": top,
                "reference_subdomain_id": it.reference,
            }  # fmt: skip
        )
    out.mkdir(parents=True, exist_ok=True)
    with (out / QUESTIONS).open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    report = {
        "inputs": inputs,
        "classifier": engine.generator_settings(writer),
        "prompt": prompt.id,
        "delta": delta,
        "questions": len(items),
        "labelled": sum(bool(r["labels"]) for r in rows),
        "multi_label": sum(len(r["labels"]) > 1 for r in rows),
        "no_label_at_delta": unlabelled,
        "failed": failed,
        "replies_naming_unknown_subdomains": unknown_replies,
        "stats": asdict(stats),
    }
    pairs = [(r["reference_subdomain_id"], r["top_label"]) for r in rows]
    if any(ref is not None for ref, _ in pairs):
        report["agreement"] = agreement(pairs, out / CONFUSION)
    (out / REPORT).write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    return report


def agreement(pairs: list[tuple[int | None, int | None]], confusion_csv: Path) -> dict:
    """Top label against the reference over the questions that have both (scikit-learn's metrics)."""
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

    both = [(ref, top) for ref, top in pairs if ref is not None and top is not None]
    compared = len(both)
    if not compared:
        return {"compared": 0, "not_compared": len(pairs)}
    refs, tops = [r for r, _ in both], [t for _, t in both]
    labels = sorted(set(refs) | set(tops))
    precision, recall, _, support = precision_recall_fscore_support(refs, tops, labels=labels, zero_division=0)
    matrix = confusion_matrix(refs, tops, labels=labels)
    with confusion_csv.open("w", encoding="utf-8") as fh:
        fh.write("reference \\ predicted," + ",".join(str(x) for x in labels) + "\n")
        for lab, row in zip(labels, matrix, strict=True):
            fh.write(f"{lab}," + ",".join(str(int(v)) for v in row) + "\n")
    return {
        "compared": compared,
        "not_compared": len(pairs) - compared,
        "top_label_accuracy": float(accuracy_score(refs, tops)),
        "per_subdomain": {
            str(lab): {
                "name": SUBDOMAINS[lab].name if lab in SUBDOMAINS else "?",
                "precision": float(p),
                "recall": float(r),
                "support": int(s),
                "predicted": int(matrix[:, i].sum()),
            }  # fmt: skip
            for i, (lab, p, r, s) in enumerate(zip(labels, precision, recall, support, strict=True))
        },
        "labels": labels,
        "confusion_matrix": matrix.tolist(),
        "confusion_matrix_csv": str(confusion_csv),
    }


def agreement_table(agree: dict) -> str:
    """The agreement as text: accuracy, then one line per subdomain (precision, recall, support)."""
    if not agree.get("compared"):
        return "agreement: no question has both a reference label and a prediction"
    lines = [
        f"agreement with the reference labels over {agree['compared']} questions "
        f"({agree['not_compared']} not compared): top-label accuracy {agree['top_label_accuracy']:.3f}",
        f"{'id':>3}  {'subdomain':<36} {'precision':>9} {'recall':>7} {'support':>7} {'predicted':>9}",
    ]
    for lab, m in agree["per_subdomain"].items():
        lines.append(
            f"{lab:>3}  {m['name'][:36]:<36} {m['precision']:>9.3f} {m['recall']:>7.3f} {m['support']:>7} "
            f"{m['predicted']:>9}"
        )
    labels = agree["labels"]
    lines.append(f"confusion matrix (rows: reference, columns: predicted; also {agree['confusion_matrix_csv']}):")
    lines.append("     " + "".join(f"{lab:>4}" for lab in labels))
    for lab, row in zip(labels, agree["confusion_matrix"], strict=True):
        lines.append(f"{lab:>4} " + "".join(f"{v:>4}" for v in row))
    return "\n".join(lines)
