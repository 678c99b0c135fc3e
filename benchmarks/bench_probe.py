"""Evaluation time with and without the neuron probe on the demo model: same requests, interleaved.

The requests of a loglikelihood task group and a generative one are built once by lm-eval; the same list
goes to plain ``hf`` (HFLM) and to ``hf-probe`` in each scope, in rotating order, with the same model
folder, after one warm-up call each. Only the model calls are timed (task building is the same for all).
The outputs must be identical. Median and min of the repeats: on a shared machine min is the steadier.
Goal: probe / plain <= 1.2.

    python benchmarks/bench_probe.py [--limit 10] [--repeats 3] [--batch-size 8] [--max-gen-toks 32]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path

TASKS = {"loglikelihood": "adaculturesafe_knowledge", "generate_until": "adaculturesafe_knowledge_gen"}


def requests(kind: str, limit: int, max_gen_toks: int) -> list:
    """All instances of a task group's countries (``limit`` documents each), built once.

    Probe stats accumulate over the repeats, which changes nothing for timing: their size is fixed."""
    from lm_eval.tasks import TaskManager, get_task_dict

    def leaves(tree) -> list:
        out = []
        for value in tree.values():
            out.extend(leaves(value) if isinstance(value, dict) else [value])
        return out

    manager = TaskManager(metadata={"culturesafe_data": "bundled"})
    instances = []
    for task in leaves(get_task_dict([TASKS[kind]], manager)):
        task.build_all_requests(limit=limit)
        instances.extend(task.instances)
    for instance in instances:
        if kind == "generate_until":
            instance.arguments = (
                instance.arguments[0],
                {**instance.arguments[1], "max_gen_toks": max_gen_toks},
            )
    return instances


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=10, help="documents per country task")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-gen-toks", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    logging.getLogger("lm-eval").setLevel(logging.ERROR)
    logging.getLogger("lm_eval").setLevel(logging.ERROR)

    from lm_eval.models.huggingface import HFLM

    from culturesafe_ext.models.demo_model import demo_model_dir
    from culturesafe_ext.models.probe import ProbeHFLM

    model = str(demo_model_dir())
    common = {"pretrained": model, "dtype": "float32", "batch_size": args.batch_size, "device": args.device}
    out = Path(tempfile.mkdtemp(prefix="bench-probe-"))
    lms = {
        "hf": HFLM(**common),
        "hf-probe prompt": ProbeHFLM(**common, probe_tokens="prompt", probe_out=str(out / "prompt")),
        "hf-probe generated": ProbeHFLM(**common, probe_tokens="generated", probe_out=str(out / "generated")),
    }
    import torch

    load_before = os.getloadavg()[0]
    print(
        f"SmolLM2-135M ({args.device}, float32, {torch.get_num_threads()} torch threads, {os.cpu_count()} CPU cores, "
        f"load average at start {load_before:.1f}), bundled sample, {args.limit} docs per country, "
        f"batch {args.batch_size}, max_gen_toks {args.max_gen_toks}, "
        f"{args.repeats} interleaved runs after a warm-up"
    )
    print(
        f"{'request type':<15} {'n':>4} {'model':<20} {'median s':>8} {'ratio':>6} {'min s':>8} {'ratio':>6} "
        f"{'same output':>11}"
    )
    for kind in TASKS:
        reqs = requests(kind, args.limit, args.max_gen_toks)
        times: dict[str, list[float]] = {name: [] for name in lms}
        # warm-up on the real requests, every model: the first generate call of a model costs ~6x the next
        outputs = {name: getattr(lm, kind)(reqs, disable_tqdm=True) for name, lm in lms.items()}
        names = list(lms)
        for r in range(args.repeats):
            for name in names[r % len(names) :] + names[: r % len(names)]:  # rotate who goes first
                start = time.perf_counter()
                getattr(lms[name], kind)(reqs, disable_tqdm=True)
                times[name].append(time.perf_counter() - start)
        base, base_min = statistics.median(times["hf"]), min(times["hf"])
        for name in names:
            t, t_min = statistics.median(times[name]), min(times[name])
            same = outputs[name] == outputs["hf"]
            print(
                f"{kind:<15} {len(reqs):>4} {name:<20} {t:>8.2f} {t / base:>6.3f} {t_min:>8.2f} "
                f"{t_min / base_min:>6.3f} {str(same):>11}"
            )
    print(f"load average at end {os.getloadavg()[0]:.1f}; goal: probe / plain <= 1.2; stats written under {out}")


if __name__ == "__main__":
    main()
