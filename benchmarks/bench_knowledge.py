"""Our loglikelihood knowledge task against an equivalent plain lm-eval YAML, same requests, one run.

The plain task reads the same parquet with lm-eval's own ``dataset_path: parquet`` loader and its
built-in multiple-choice scoring; ours goes through the culturesafe loader and ``process_results``.
Both are evaluated in this process with the same loaded model, interleaved, and must agree on acc
and acc_norm. Goal: ours / plain <= 1.05.

    python benchmarks/bench_knowledge.py [--data DIR] [--limit 300] [--repeats 3]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from pathlib import Path

PLAIN = """task: plain_knowledge_{country}
dataset_path: parquet
dataset_kwargs:
  data_files:
    test: {parquet}
test_split: test
output_type: multiple_choice
doc_to_text: "Question: {{{{question}}}}\\nAnswer:"
doc_to_choice: "{{{{options}}}}"
doc_to_target: gold_index
metric_list:
  - metric: acc
  - metric: acc_norm
"""


def evaluate(lm, task: str, task_manager, limit: int) -> tuple[float, dict]:
    """Build the task (loads its data) and evaluate it: lm-eval's own path, minus simple_evaluate's
    environment report (pip/torch/git probes), which costs seconds and is the same for both."""
    from lm_eval.evaluator import evaluate as lm_eval_evaluate
    from lm_eval.tasks import get_task_dict

    start = time.perf_counter()
    task_dict = get_task_dict([task], task_manager)
    out = lm_eval_evaluate(lm=lm, task_dict=task_dict, limit=limit, bootstrap_iters=0, log_samples=False)
    return time.perf_counter() - start, out["results"][task]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, help="a built dataset (default: the bundled sample)")
    parser.add_argument("--country", default="china")
    parser.add_argument("--limit", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    logging.getLogger("lm-eval").setLevel(logging.ERROR)

    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    from culturesafe_ext.data.loader import bundled_dataset_dir
    from culturesafe_ext.demo_model import demo_model_dir

    data = args.data or bundled_dataset_dir()
    parquet = data / f"knowledge_{args.country}" / "test.parquet"
    folder = Path(tempfile.mkdtemp(prefix="bench-plain-"))
    (folder / "plain.yaml").write_text(PLAIN.format(country=args.country, parquet=parquet))
    manager = TaskManager(include_path=str(folder), metadata={"culturesafe_data": str(data)})
    lm = HFLM(pretrained=str(demo_model_dir()), dtype="float32", batch_size=args.batch_size, device=args.device)
    ours, plain = f"adaculturesafe_knowledge_{args.country}", f"plain_knowledge_{args.country}"

    times: dict[str, list[float]] = {ours: [], plain: []}
    scores: dict[str, dict] = {}
    evaluate(lm, plain, manager, args.limit)  # warm-up: dataset caches, kernels
    for _ in range(args.repeats):
        for task in (plain, ours):
            seconds, scores[task] = evaluate(lm, task, manager, args.limit)
            times[task].append(seconds)
    n = scores[plain].get("sample_len") or args.limit
    t_plain, t_ours = statistics.median(times[plain]), statistics.median(times[ours])
    print(f"SmolLM2-135M, {data}, {args.country}, limit {args.limit}, median of {args.repeats}")
    print(f"{'task':<36} {'seconds':>8} {'acc':>7} {'acc_norm':>9}")
    for task, t in ((plain, t_plain), (ours, t_ours)):
        print(f"{task:<36} {t:>8.2f} {scores[task]['acc,none']:>7.4f} {scores[task]['acc_norm,none']:>9.4f}")
    same = all(abs(scores[ours][m] - scores[plain][m]) < 1e-9 for m in ("acc,none", "acc_norm,none"))
    print(
        f"ratio ours/plain = {t_ours / t_plain:.3f} (goal <= 1.05: {'met' if t_ours / t_plain <= 1.05 else 'NOT met'});"
        f" identical acc and acc_norm: {same}; n = {n}"
    )


if __name__ == "__main__":
    main()
