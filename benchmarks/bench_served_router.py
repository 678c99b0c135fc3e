"""served-router throughput: mixed cultures vs one adapter for all, on the same vLLM server; and hf-router beside it.

The same requests (lm-eval's own, built from the bundled knowledge tasks of the adapters' cultures, cultures
interleaved) go, in one process and in rotating order, through:

- ``served-oracle``  ``served-router`` routing=oracle: each request to its culture's LoRA module (mixed cultures)
- ``served-fixed``   ``served-router`` routing=fixed:<first culture>: every request to one adapter, same server
- ``hf-router``      ``hf-router`` routing=oracle in this process, on the same CPU (``--no-hf`` leaves it out)

Goal (issue 27): served-oracle at >= 0.9x served-fixed's throughput. Start the server first, with the command
``culturesafe serve-command ADAPTERS --model BASE --served-model-name demo`` prints, e.g.:

    culturesafe serve-command ADAPTERS --model "$(python -c 'from culturesafe_ext.demo_model import demo_model_dir as d;
        print(d())')" --served-model-name demo --python .venv-vllm/bin/python --port 8765 \
        --vllm-args='--dtype float32 --max-model-len 2048'    # then run what it prints, with VLLM_CPU_KVCACHE_SPACE=1
    python benchmarks/bench_served_router.py --base-url http://127.0.0.1:8765/v1 --adapters ADAPTERS
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import random
import statistics
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def build_requests(kind: str, cultures: list[str], limit: int, max_gen_toks: int, seed: int = 0) -> list:
    """lm-eval's instances of the knowledge tasks of ``cultures`` (``limit`` documents each), interleaved."""
    from lm_eval.tasks import TaskManager, get_task_dict

    family = "adaculturesafe_knowledge" if kind == "loglikelihood" else "adaculturesafe_knowledge_gen"
    manager = TaskManager(metadata={"culturesafe_data": "bundled"})
    instances = []
    for task in get_task_dict([f"{family}_{c}" for c in cultures], manager).values():
        task.build_all_requests(limit=limit)
        instances.extend(task.instances)
    if kind == "generate_until":
        for inst in instances:
            inst.arguments = (inst.arguments[0], {**inst.arguments[1], "max_gen_toks": max_gen_toks})
    random.Random(seed).shuffle(instances)  # lm-eval hands every task's requests over at once
    return instances


def fresh(requests: list) -> list:
    """Shallow copies: the routers append their route tag to a request's arguments."""
    return [dataclasses.replace(r, resps=[], filtered_resps={}) for r in requests]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-url", required=True, help="the server's /v1, e.g. http://127.0.0.1:8765/v1")
    parser.add_argument("--adapters", required=True, type=Path, help="the adapters folder the server serves")
    parser.add_argument("--served-model-name", default="demo")
    parser.add_argument("--model", help="base model folder for tokenizer and hf-router (default: the demo model)")
    parser.add_argument("--limit", type=int, default=8, help="documents per culture")
    parser.add_argument("--max-gen-toks", type=int, default=16)
    parser.add_argument("--num-concurrent", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--kinds", default="loglikelihood,generate_until")
    parser.add_argument("--hf", action=argparse.BooleanOptionalAction, default=True, help="time hf-router too")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "bench_served_router.txt")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    from culturesafe_ext.data.adaculturesafe_schema import slug
    from culturesafe_ext.demo_model import demo_model_dir
    from culturesafe_ext.models.router import HFRouterLM
    from culturesafe_ext.models.served_router import ServedRouterLM
    from culturesafe_ext.routing.planner import discover_adapters

    model = args.model or str(demo_model_dir())
    cultures = list(discover_adapters(args.adapters))
    served = {"base_url": f"{args.base_url}/completions", "model": args.served_model_name, "tokenizer": model}
    served |= {
        "tokenizer_backend": "huggingface",
        "num_concurrent": args.num_concurrent,
        "adapters": str(args.adapters),
    }
    lms = {
        "served-oracle": ServedRouterLM(routing="oracle", **served),
        "served-fixed": ServedRouterLM(routing=f"fixed:{cultures[0]}", **served),
    }
    if args.hf:
        lms["hf-router"] = HFRouterLM(
            pretrained=model, dtype="float32", device="cpu", batch_size=8, adapters=str(args.adapters), routing="oracle"
        )
    lines = [
        f"# bench_served_router.py  {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  {platform.node()}",
        f"# cpu cores {os.cpu_count()}, server {args.base_url}, adapters {', '.join(cultures)}, model {model}",
        f"# {args.limit} docs per culture, num_concurrent {args.num_concurrent}, max_gen_toks {args.max_gen_toks}, "
        f"repeats {args.repeats} in rotating order; wall seconds, requests/s from the median",
        f"{'kind':<15} {'method':<14} {'n':>4} {'min s':>7} {'median s':>8} {'req/s':>7} {'x fixed':>8}  check",
    ]
    for kind in args.kinds.split(","):
        requests = build_requests(kind, cultures, args.limit, args.max_gen_toks)
        print(f"{kind}: {len(requests)} requests over {', '.join(cultures)}", flush=True)
        for lm in lms.values():  # warm-up (tokenizers, the server's LoRA slots, torch kernels)
            getattr(lm, kind)(fresh(requests[:2]), disable_tqdm=True)
        times: dict[str, list[float]] = {name: [] for name in lms}
        outputs: dict[str, list] = {}
        names = list(lms)
        for r in range(args.repeats):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                batch = fresh(requests)
                began = time.perf_counter()
                result = getattr(lms[name], kind)(batch, disable_tqdm=True)
                times[name].append(time.perf_counter() - began)
                outputs.setdefault(name, result)
        fixed = statistics.median(times["served-fixed"])
        mixed_cultures = sorted({slug(r.doc["country"]) for r in requests})
        for name in names:
            median = statistics.median(times[name])
            check = f"cultures {'+'.join(mixed_cultures)}" if name == "served-oracle" else f"all to {cultures[0]}"
            if name == "hf-router":
                ref = outputs["served-oracle"]
                if kind == "loglikelihood":
                    diff = max(abs(float(a[0]) - float(b[0])) for a, b in zip(outputs[name], ref, strict=True))
                    check = f"max|d| vs served-oracle {diff:.1e}"
                else:
                    check = f"{sum(a == b for a, b in zip(outputs[name], ref, strict=True))}/{len(ref)} same as served"
            lines.append(
                f"{kind:<15} {name:<14} {len(requests):>4} {min(times[name]):>7.2f} {median:>8.2f} "
                f"{len(requests) / median:>7.2f} {fixed / median:>8.2f}  {check}"
            )
        print("\n".join(lines[-len(names) :]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
