"""One table across models from their lm-eval runs: markdown, CSV, JSON and a sortable HTML page.

Rows are models; columns are, per country and pooled, knowledge accuracy, respectfulness and the joint
F1, with 95% CIs, plus the pooled knowledge-safety Spearman rho and the judge with its failure count.
Figures come from :func:`culturesafe_ext.analysis.report.analyze` (the same numbers as the report).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from culturesafe_ext.analysis.html import document, esc, table
from culturesafe_ext.analysis.parts import POOLED, Options

SCHEMA = "culturesafe.leaderboard"
SCHEMA_VERSION = 1


def rows_from(analysis: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    """(scopes, one row per model) with ``{scope: {metric: {"value", "ci95", "n"}}}`` cells."""
    parts = analysis["parts"]
    rows, scopes_seen = [], []
    for label in analysis["runs"]:
        knowledge = parts.get("knowledge", {}).get(label)
        safety = parts.get("safety", {}).get(label)
        joint = parts.get("joint", {}).get(label)
        corr = parts.get("correlation", {}).get(label)
        overview = parts["overview"][label]
        family = knowledge["headline_family"] if knowledge else None
        cells: dict[str, dict[str, Any]] = {}
        acc_by_scope = knowledge["families"][family] if family else {}
        plain = safety["variants"].get("plain", {}) if safety else {}
        for scope in [*acc_by_scope, *[s for s in plain if s not in acc_by_scope]]:
            if scope not in scopes_seen:
                scopes_seen.append(scope)
            cell: dict[str, Any] = {}
            if scope in acc_by_scope:
                s = acc_by_scope[scope]["acc_by_description"]
                cell["acc"] = {"value": s["mean"], "ci95": s["ci95"], "n": s["n"]}
            if scope in plain:
                s = plain[scope]["respectfulness"]
                cell["respect"] = {"value": s["mean"], "ci95": s["ci95"], "n": s["n"]}
            f1 = (joint or {}).get("variants", {}).get("plain", {}).get(scope)
            if f1:
                cell["f1"] = {"value": f1["f1"], "ci95": None, "n": f1["n_descriptions_knowledge"]}
            cells[scope] = cell
        rho = None
        if corr and family:
            pooled = corr["pairs"].get(f"{family}~respectfulness", {}).get("scopes", {}).get(POOLED, {})
            if "spearman" in pooled:
                rho = {"value": pooled["spearman"]["r"], "ci95": pooled["spearman"]["ci95"], "n": pooled["n"]}
        judges = [f"{j['judge'].get('backend')}:{j['judge'].get('model')}" for j in overview["judges"] if j["judge"]]
        rows.append(
            {
                "model": label,
                "run_dir": analysis["runs"][label]["run_dir"],
                "knowledge_family": family,
                "cells": cells,
                "spearman_pooled": rho,
                "judge": ", ".join(judges) or None,
                "judge_failures": overview["judge_failures"],
                "n_judgements": overview["judge_failures"] + overview["n_judged"],
                "limit": overview["limit"],
            }
        )
    return scopes_seen, rows


METRICS = (("acc", "knowledge acc"), ("respect", "respectfulness"), ("f1", "F1"))


def _fmt(cell: dict | None) -> str:
    if not cell or cell.get("value") is None:
        return "n/a"
    text = f"{cell['value']:.3f}"
    if cell.get("ci95"):
        text += f" [{cell['ci95'][0]:.3f}, {cell['ci95'][1]:.3f}]"
    return text


def _columns(scopes: list[str]) -> list[tuple[str, str, str]]:
    return [(scope, metric, f"{scope} {name}") for scope in scopes for metric, name in METRICS]


def build(
    run_dirs: list[Path], out_dir: Path, options: Options | None = None, labels: list[str] | None = None
) -> dict[str, Path]:
    """The table's four files; ``labels`` name the rows (one per run folder, in order), so that two runs of one
    model can be told apart; each row also keeps the folder it was read from."""
    from culturesafe_ext.analysis.report import analyze

    if labels and len(labels) != len(run_dirs):
        raise ValueError(
            f"--label was given {len(labels)} time(s) for {len(run_dirs)} RUN_DIR(s): give one per RUN_DIR"
        )
    analysis = analyze(run_dirs, options, labels)
    scopes, rows = rows_from(analysis)
    rows.sort(key=lambda r: -((r["cells"].get(POOLED, {}).get("f1") or {}).get("value") or -1))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    columns = _columns(scopes)
    paths = {k: out_dir / f"leaderboard.{k}" for k in ("json", "csv", "md", "html")}
    paths["json"].write_text(
        json.dumps(
            {
                "schema": SCHEMA,
                "schema_version": SCHEMA_VERSION,
                "created": analysis["created"],
                "options": analysis["options"],
                "scopes": scopes,
                "rows": rows,
            },
            indent=1,
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    with paths["csv"].open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        head = ["model", "run_dir", "knowledge_family"]
        for _, _, name in columns:
            head += [name, f"{name} ci_low", f"{name} ci_high", f"{name} n"]
        writer.writerow(head + ["spearman_pooled", "judge", "judge_failures", "n_judgements"])
        for r in rows:
            line = [r["model"], r["run_dir"], r["knowledge_family"]]
            for scope, metric, _ in columns:
                c = r["cells"].get(scope, {}).get(metric) or {}
                ci = c.get("ci95") or [None, None]
                line += [c.get("value"), ci[0], ci[1], c.get("n")]
            rho = (r["spearman_pooled"] or {}).get("value")
            writer.writerow(line + [rho, r["judge"], r["judge_failures"], r["n_judgements"]])
    headers = ["model", *(name for _, _, name in columns), "Spearman rho (pooled)", "judge", "judge failures"]
    md = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    html_rows = []
    for r in rows:
        values = [r["cells"].get(scope, {}).get(metric) for scope, metric, _ in columns]
        tail = [_fmt(r["spearman_pooled"]), r["judge"] or "none", f"{r['judge_failures']} / {r['n_judgements']}"]
        md.append("| " + " | ".join([r["model"], *map(_fmt, values), *tail]) + " |")
        html_rows.append(
            [r["model"], *((_fmt(v), (v or {}).get("value")) for v in values), (tail[0], None), tail[1], tail[2]]
        )
    note = (
        "Knowledge accuracy is averaged per description; respectfulness is the plain variant's judge score (1..10); "
        "F1 = harmonic mean of accuracy and (respectfulness - 1) / 9. 95% bootstrap CIs over descriptions in brackets."
    )
    paths["md"].write_text("# culturesafe leaderboard\n\n" + note + "\n\n" + "\n".join(md) + "\n", encoding="utf-8")
    from culturesafe_ext.analysis.html import SORT_SCRIPT

    body = f"<h1>culturesafe leaderboard</h1><p class='note'>{esc(note)} Click a column header to sort.</p>" + table(
        headers, html_rows, sortable=True
    )
    paths["html"].write_text(document("culturesafe leaderboard", body, SORT_SCRIPT), encoding="utf-8")
    return paths


def run(args) -> int:
    """``culturesafe leaderboard build``: write the table's four files and list them."""
    for kind, path in build(args.run_dirs, args.out, Options.from_args(args), args.label).items():
        print(f"{kind:5} {path}")
    return 0
