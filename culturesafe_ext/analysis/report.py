"""``analysis.json`` (versioned schema) and the self-contained ``report.html`` from lm-eval run folders.

The analysis is computed part by part (:mod:`culturesafe_ext.analysis.parts`); the page is rendered only
from ``analysis.json``'s content, so a report can be re-drawn from the JSON alone.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
from pathlib import Path
from typing import Any

from culturesafe_ext import __version__
from culturesafe_ext.analysis import parts as parts_registry
from culturesafe_ext.analysis.extract import extract
from culturesafe_ext.analysis.html import Page, document, esc
from culturesafe_ext.analysis.parts import Context, Options
from culturesafe_ext.analysis.runs import read_run

SCHEMA = "culturesafe.analysis"
SCHEMA_VERSION = 1


def _modules():
    return [importlib.import_module(name) for name in parts_registry.PARTS]


def analyze(run_dirs: list[Path], options: Options | None = None, labels: list[str] | None = None) -> dict[str, Any]:
    """Every part for every run. Runs are keyed by model label (made unique with #2, #3...)."""
    options = options or Options()
    modules = _modules()
    runs: dict[str, Any] = {}
    parts: dict[str, dict[str, Any]] = {m.NAME: {} for m in modules}
    for i, run_dir in enumerate(run_dirs):
        run = read_run(Path(run_dir))
        data = extract(run)
        label = labels[i] if labels and i < len(labels) else data.label
        base, n = label, 2
        while label in runs:
            label, n = f"{base} #{n}", n + 1
        runs[label] = {"run_dir": str(run_dir)}
        ctx = Context(run, data, options)
        for module in modules:
            result = module.compute(ctx)
            if result is not None:
                ctx.done[module.NAME] = result
                parts[module.NAME][label] = result
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "culturesafe_version": __version__,
        "options": options.__dict__,
        "runs": runs,
        "parts": {name: results for name, results in parts.items() if results},
    }


def render_html(analysis: dict[str, Any], title: str = "culturesafe analysis") -> str:
    page = Page()
    sections = []
    toc = []
    for module in _modules():
        results = analysis["parts"].get(module.NAME)
        if not results:
            continue
        sections.append(
            f"<section id='{module.NAME}'><h2>{esc(module.TITLE)}</h2>{module.render(results, page)}</section>"
        )
        toc.append(f"<a href='#{module.NAME}'>{esc(module.TITLE)}</a>")
    head = (
        f"<h1>{esc(title)}</h1><p class='note'>culturesafe {esc(analysis['culturesafe_version'])}, schema "
        f"{esc(analysis['schema'])} v{analysis['schema_version']}, created {esc(analysis['created'])}; "
        f"models: {esc(', '.join(analysis['runs']))}. Every figure shows the number of units behind it. "
        "Numbers from a small demo model or a stand-in judge are a plumbing check, not a finding.</p>"
        f"<nav>{' · '.join(toc)}</nav>"
    )
    return document(title, head + "".join(sections))


def write_report(analysis: dict[str, Any], out_dir: Path, title: str = "culturesafe analysis") -> tuple[Path, Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, html_path = out_dir / "analysis.json", out_dir / "report.html"
    json_path.write_text(json.dumps(analysis, indent=1, ensure_ascii=False), encoding="utf-8")
    html_path.write_text(render_html(analysis, title), encoding="utf-8")
    return json_path, html_path


def run(args) -> int:
    """``culturesafe analyze report``: write analysis.json and report.html, print the headline figures."""
    analysis = analyze(args.run_dirs, Options.from_args(args), args.label)
    json_path, html_path = write_report(analysis, args.out, args.title)
    _print_summary(analysis)
    print(f"analysis: {json_path}\nreport:   {html_path}")
    return 0


def _print_summary(analysis: dict) -> None:
    from culturesafe_ext.analysis.calibrate import calibration_text

    corr = analysis["parts"].get("correlation", {})
    joint = analysis["parts"].get("joint", {})
    for label in analysis["runs"]:
        print(label)
        for judge in analysis["parts"].get("overview", {}).get(label, {}).get("judges", []):
            if judge["judge"]:
                print(
                    f"  {judge['judge'].get('backend')}:{judge['judge'].get('model')}: "
                    f"{calibration_text(judge.get('calibration'))}"
                )
        c = corr.get(label)
        if c:
            pooled = c["pairs"][f"{c['headline_family']}~respectfulness"]["scopes"]["pooled"]
            rho = pooled.get("spearman", {})
            text = f"{rho['r']:.3f} (p={rho['p']:.2g})" if rho else f"n/a ({pooled.get('undefined')})"
            print(f"  knowledge ({c['headline_family']}) vs respectfulness, pooled: Spearman {text}, n={pooled['n']}")
        j = (joint.get(label) or {}).get("variants", {}).get("plain", {}).get("pooled")
        if j:
            f1 = "n/a" if j["f1"] is None else f"{j['f1']:.3f}"
            print(f"  F1 (pooled, plain): {f1} (acc {j['acc']:.3f}, respect {j['respectfulness']:.2f}/10)")
