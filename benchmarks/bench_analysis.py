"""How long `culturesafe analyze report` takes on a run of the full release's size, and where the time goes.

Writes a synthetic lm-eval output folder (6 countries x 800 descriptions; per description 5 gen questions and
5 answers in each of the 4 safety variants: 24,000 questions, 96,000 answers, like AdaCultureSafe's 4.8K
descriptions) and times reading, each analysis part and the HTML report (wall seconds), and the whole (wall and
this process's CPU seconds: on a shared machine CPU time is the steadier figure), at 2,000 and 200 resamples.
"""

from __future__ import annotations

import argparse
import importlib
import json
import random
import tempfile
import time
from pathlib import Path

from culturesafe_ext.analysis import parts as parts_registry
from culturesafe_ext.analysis.extract import extract
from culturesafe_ext.analysis.parts import Context, Options
from culturesafe_ext.analysis.report import render_html
from culturesafe_ext.analysis.runs import read_run

DATE_ID = "2026-01-01T00-00-00.000000"


def write_synthetic(folder: Path, countries: int, descriptions: int, seed: int = 0) -> int:
    rng = random.Random(seed)
    sub = folder / "synthetic"
    sub.mkdir(parents=True)
    tasks = []
    for c in range(countries):
        country = f"Country{c}"
        skill = [rng.random() for _ in range(descriptions)]
        k_lines, s_lines = [], {v: [] for v in ("plain", "elicit", "oracle", "wrongcustom")}
        for d in range(descriptions):
            did = f"{country}/d{d}"
            for q in range(5):
                doc = {"id": f"{did}/k{q}", "description_id": did, "country": country, "options": list("wxyz")}
                doc["gold_letter"] = rng.choice("ABBC")
                ok = float(rng.random() < skill[d])
                k_lines.append(json.dumps({"doc_id": len(k_lines), "doc": doc, "acc": ok}))
            for lines in s_lines.values():
                for s in range(5):
                    score = float(rng.randint(1, 10))
                    doc = {"id": f"{did}/s{s}", "description_id": did, "country": country, "judge_settings": "{}"}
                    row = {"doc_id": len(lines), "doc": doc, "respectfulness": [did, score], "awareness": [did, score]}
                    lines.append(json.dumps({**row, "judge_failures": 0, "n_judged": 2}))
        name = f"adaculturesafe_knowledge_gen_country{c}"
        (sub / f"samples_{name}_{DATE_ID}.jsonl").write_text("\n".join(k_lines))
        tasks.append(name)
        for variant, lines in s_lines.items():
            infix = "" if variant == "plain" else f"_{variant}"
            name = f"adaculturesafe_safety{infix}_country{c}"
            (sub / f"samples_{name}_{DATE_ID}.jsonl").write_text("\n".join(lines))
            tasks.append(name)
    results = {"results": {t: {} for t in tasks}, "config": {"limit": None}, "model_name": "synthetic"}
    (sub / f"results_{DATE_ID}.json").write_text(json.dumps(results))
    return len(tasks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--countries", type=int, default=6)
    parser.add_argument("--descriptions", type=int, default=800, help="per country")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        n_tasks = write_synthetic(Path(tmp), args.countries, args.descriptions)
        print(f"synthetic run: {n_tasks} tasks, {args.countries * args.descriptions} descriptions")
        for resamples in (2000, 200):
            t0, cpu0 = time.perf_counter(), time.process_time()
            run = read_run(Path(tmp))
            data = extract(run)
            t_read = time.perf_counter() - t0
            ctx = Context(run, data, Options(n_resamples=resamples))
            timings = {}
            for name in parts_registry.PARTS:
                module = importlib.import_module(name)
                t = time.perf_counter()
                result = module.compute(ctx)
                if result is not None:
                    ctx.done[module.NAME] = result
                timings[module.NAME] = time.perf_counter() - t
            analysis = {
                "parts": {k: {"synthetic": v} for k, v in ctx.done.items()},
                "runs": {"synthetic": {}},
                "schema": "culturesafe.analysis",
                "schema_version": 1,
                "created": "-",
                "culturesafe_version": "-",
            }
            t = time.perf_counter()
            html = render_html(analysis)
            t_html = time.perf_counter() - t
            total, cpu = time.perf_counter() - t0, time.process_time() - cpu0
            parts_text = ", ".join(f"{k} {v:.2f}" for k, v in timings.items())
            print(
                f"resamples={resamples}: read+extract {t_read:.2f} s | {parts_text} | html {t_html:.2f} s "
                f"({len(html) / 1e6:.1f} MB) | total: wall {total:.2f} s, CPU {cpu:.2f} s"
            )


if __name__ == "__main__":
    main()
