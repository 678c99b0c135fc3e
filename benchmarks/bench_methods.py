"""The three methods at the speed users run them: hf-probe, hf-router and hf-grounded beside plain ``hf``.

One process, one model folder, the same requests for every method, built once by lm-eval from a dataset
folder (``adaculturesafe_knowledge``: loglikelihood; ``adaculturesafe_knowledge_gen``: generate_until),
countries interleaved. Methods (``--methods``, comma-separated, default all):

- ``hf``                    lm-eval's ``HFLM`` (the reference for every ratio)
- ``probe-prompt``, ``probe-generated``   ``hf-probe`` in each token scope (outputs must equal ``hf``)
- ``peft``                  ``HFLM(peft=<first culture's adapter>)`` (the reference for hf-router)
- ``router-oracle``, ``router-learned``   ``hf-router`` over one random LoRA adapter (r=8, all linear
                            layers) per culture of the requests; ``learned`` uses a router fitted here on
                            the requests' own prompts. Rows routed to the first culture must equal ``peft``.
- ``grounded-retrieve``, ``grounded-cad``  ``hf-grounded`` (BM25 over the requests' descriptions; CAD
                            alpha 0.5 with that knowledge); CAD is also reported per new token vs retrieve.

Each model is loaded alone (so its peak memory is its own), warmed up on a few requests, then each
request type is timed ``--repeats`` times (min and median reported). Random-weight models (``--random-size``)
are Llama shapes with the demo model's tokenizer, made in-process: right for speed, silent on quality.

    python benchmarks/bench_methods.py --device cpu                      # demo model (SmolLM2-135M)
    python benchmarks/bench_methods.py --device cuda --random-size 3b --tokenizer .gpu/tok --data .gpu/data \
        --limit 100 --batch-size 32 --max-gen-toks 64 --repeats 1 --out "$OUT"   # see ../shared/gpu/README.md
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import logging
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parent.parent
NEVER = "\u241e\u241e\u241e"  # a stop string no model writes: with min_new_tokens, fixed-length generation
TASKS = {"loglikelihood": "adaculturesafe_knowledge", "generate_until": "adaculturesafe_knowledge_gen"}
METHODS = (
    "hf",
    "probe-prompt",
    "probe-generated",
    "peft",
    "router-oracle",
    "router-learned",
    "grounded-retrieve",
    "grounded-cad",
)
# Llama shapes of the random models (the tokenizer and vocabulary are the demo model's)
SIZES = {
    "tiny": dict(
        hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2
    ),
    "1b": dict(
        hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32, num_key_value_heads=8
    ),
    "3b": dict(
        hidden_size=3072, intermediate_size=8192, num_hidden_layers=28, num_attention_heads=24, num_key_value_heads=8
    ),
    "8b": dict(
        hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8
    ),
}


# --- inputs -------------------------------------------------------------------------------------------
def random_model(size: str, dtype: torch.dtype, device: str, folder: Path, tokenizer: str | None = None) -> Path:
    """A random-weight Llama of ``size`` with the demo model's tokenizer (or ``tokenizer``), saved as a HF folder."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    if tokenizer is None:
        from culturesafe_ext.demo_model import demo_model_dir

        tokenizer = str(demo_model_dir())
    tok = AutoTokenizer.from_pretrained(tokenizer)
    config = LlamaConfig(
        vocab_size=len(tok),
        max_position_embeddings=8192,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=False,
        **SIZES[size],
    )
    torch.manual_seed(0)
    default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = LlamaForCausalLM(config)
    finally:
        torch.set_default_dtype(default)
    out = folder / f"random-llama-{size}"
    model.save_pretrained(out)
    tok.save_pretrained(out)
    del model
    return out


def build_requests(
    data: str, limit: int | None, max_gen_toks: int, seed: int = 0, fixed_length: bool = False
) -> dict[str, list]:
    """The instances of both task groups (``limit`` documents per country), countries interleaved; with
    ``fixed_length`` every generation runs to ``max_gen_toks`` (no EOS before, a stop string never written)."""
    from lm_eval.tasks import TaskManager, get_task_dict

    def leaves(tree) -> list:
        out = []
        for value in tree.values():
            out.extend(leaves(value) if isinstance(value, dict) else [value])
        return out

    manager = TaskManager(metadata={"culturesafe_data": data})
    out: dict[str, list] = {}
    for kind, group in TASKS.items():
        instances = []
        for task in leaves(get_task_dict([group], manager)):
            task.build_all_requests(limit=limit)
            instances.extend(task.instances)
        if kind == "generate_until":
            fixed = {"until": [NEVER], "min_new_tokens": max_gen_toks} if fixed_length else {}
            for inst in instances:
                inst.arguments = (inst.arguments[0], {**inst.arguments[1], "max_gen_toks": max_gen_toks, **fixed})
        random.Random(seed).shuffle(instances)  # lm-eval hands every task's requests over at once
        out[kind] = instances
    return out


def fresh(requests: list) -> list:
    """Shallow copies: hf-router appends its route tag to a request's arguments."""
    return [dataclasses.replace(r, resps=[], filtered_resps={}) for r in requests]


def cultures_of(requests: dict[str, list]) -> list[str]:
    from culturesafe_ext.data.adaculturesafe_schema import slug

    return sorted({slug(r.doc["country"]) for reqs in requests.values() for r in reqs})


def make_adapters(model_dir: Path, cultures: list[str], dtype: torch.dtype, folder: Path) -> Path:
    """One random LoRA adapter (r=8, all linear layers) per culture in ``folder/<culture>/``."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype)
    for i, name in enumerate(cultures):
        torch.manual_seed(i)
        config = LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", init_lora_weights=False)
        model = get_peft_model(base, config)
        model.save_pretrained(folder / name)
        base = model.unload()
    del base
    return folder


def make_router(model_dir: Path, requests: list, device: str, dtype: torch.dtype, folder: Path) -> Path:
    """A culture router fitted on the requests' own prompts (speed is what is measured, not accuracy)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from culturesafe_ext.data.adaculturesafe_schema import slug
    from culturesafe_ext.routing.classifier import CultureRouter, hf_forward, mean_pooled

    prompts = {r.args[0]: slug(r.doc["country"]) for r in requests}
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).to(device).eval()
    features = mean_pooled(hf_forward(model), tok, list(prompts), 16, 512, device)
    CultureRouter.fit(features, list(prompts.values()), max_length=512, prompt_format="raw").save(folder)
    del model
    return folder


# --- models -------------------------------------------------------------------------------------------
def load(method: str, common: dict[str, Any], scratch: Path, adapters: Path, router: Path | None, first: str):
    from lm_eval.models.huggingface import HFLM

    from culturesafe_ext.models.grounded import GroundedHFLM
    from culturesafe_ext.models.probe import ProbeHFLM
    from culturesafe_ext.models.router import HFRouterLM

    if method == "hf":
        return HFLM(**common)
    if method.startswith("probe-"):
        scope = method.split("-", 1)[1]
        return ProbeHFLM(**common, probe_tokens=scope, probe_out=str(scratch / "probe" / scope))
    if method == "peft":
        return HFLM(**common, peft=str(adapters / first))
    if method.startswith("router-"):
        mode = method.split("-", 1)[1]
        extra = {"router": str(router)} if mode == "learned" else {}
        return HFRouterLM(adapters=str(adapters), routing=mode, **extra, **common)
    if method.startswith("grounded-"):
        mode = method.split("-", 1)[1]
        return GroundedHFLM(grounding=mode, grounding_log=str(scratch / f"grounding-{mode}.jsonl"), **common)
    raise ValueError(f"unknown method {method!r}; known: {', '.join(METHODS)}")


def memory_now(device: str) -> float:
    """GB: CUDA memory allocated, or this process's resident memory on CPU."""
    if device.startswith("cuda"):
        return torch.cuda.memory_allocated() / 1e9
    with open("/proc/self/status") as handle:
        rss = next(line for line in handle if line.startswith("VmRSS"))
    return int(rss.split()[1]) * 1024 / 1e9


@dataclasses.dataclass
class Timing:
    method: str
    kind: str
    n: int
    times: list[float] = dataclasses.field(default_factory=list)  # wall seconds per timed call
    cpu: list[float] = dataclasses.field(default_factory=list)  # process CPU seconds per timed call
    outputs: list | None = None
    new_tokens: int = 0
    peak_gb: float = 0.0
    loads: list[float] = dataclasses.field(default_factory=list)
    extra: dict = dataclasses.field(default_factory=dict)

    @property
    def best(self) -> float:
        return min(self.times)

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def best_cpu(self) -> float:
        return min(self.cpu)

    @property
    def load(self) -> float:
        return statistics.mean(self.loads)


def timed_call(lm, kind: str, reqs: list, device: str, timing: Timing) -> None:
    """One timed call over fresh copies of the requests; the first call's outputs are kept."""
    batch = fresh(reqs)
    timing.loads.append(os.getloadavg()[0])
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    wall, cpu = time.perf_counter(), time.process_time()
    result = getattr(lm, kind)(batch, disable_tqdm=True)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    timing.times.append(time.perf_counter() - wall)
    timing.cpu.append(time.process_time() - cpu)
    if timing.outputs is None:
        timing.outputs = result
        if kind == "generate_until":
            timing.new_tokens = sum(len(lm.tok_encode(text)) for text in result) or 1
        if timing.method.startswith("router-"):
            from culturesafe_ext.routing import route_tags

            timing.extra["routes"] = [route_tags.tag_of(r.args)[route_tags.ROUTE_KEY] for r in batch]


# --- comparison ---------------------------------------------------------------------------------------
def compare(kind: str, a: list, b: list, rows: list[int] | None = None) -> str:
    """'same' when identical, else how far apart (loglikelihood: max |diff| and greedy flags)."""
    rows = list(range(len(a))) if rows is None else rows
    if not rows:
        return "-"
    if kind == "generate_until":
        same = sum(a[i] == b[i] for i in rows)
        return "same" if same == len(rows) else f"{same}/{len(rows)} same"
    if all(a[i] == b[i] for i in rows):
        return "same"
    diff = max(abs(a[i][0] - b[i][0]) for i in rows)
    flags = sum(a[i][1] == b[i][1] for i in rows)
    return f"max|d|={diff:.1e}, greedy {flags}/{len(rows)}"


def report(timings: dict[tuple[str, str], Timing], first: str, header: list[str]) -> list[str]:
    lines = list(header)
    lines.append(
        f"{'call':<15} {'method':<18} {'n':>5} {'min s':>8} {'median s':>8} {'x hf':>6} {'x ref':>6} {'cpu s':>8} "
        f"{'x hf':>6} {'x ref':>6} {'ref':<18} {'GB':>6} {'load':>5}  output check"
    )
    refs = {
        "router-oracle": "peft",
        "router-learned": "router-oracle",
        "grounded-cad": "grounded-retrieve",
        "probe-prompt": "hf",
        "probe-generated": "hf",
    }
    for kind in TASKS:
        base = timings.get(("hf", kind))
        for method in METHODS:
            t = timings.get((method, kind))
            if t is None:
                continue
            ref_name = refs.get(method, "")
            ref = timings.get((ref_name, kind))
            x_hf = f"{t.best / base.best:6.2f}" if base else "     -"
            x_ref = f"{t.best / ref.best:6.2f}" if ref else "     -"
            c_hf = f"{t.best_cpu / base.best_cpu:6.2f}" if base else "     -"
            c_ref = f"{t.best_cpu / ref.best_cpu:6.2f}" if ref else "     -"
            check = ""
            if method.startswith("probe-") and base:
                check = "vs hf: " + compare(kind, t.outputs, base.outputs)
            elif method == "router-oracle" and (peft := timings.get(("peft", kind))):
                rows = [i for i, r in enumerate(t.extra["routes"]) if r == first]
                check = f"rows routed to {first} vs peft: " + compare(kind, t.outputs, peft.outputs, rows)
            elif method == "router-learned" and (oracle := timings.get(("router-oracle", kind))):
                agree = sum(a == b for a, b in zip(t.extra["routes"], oracle.extra["routes"], strict=True))
                check = f"routes equal to oracle: {agree}/{t.n}"
            if kind == "generate_until":
                check += f"; {t.new_tokens} new tokens, {t.best / t.new_tokens * 1e3:.2f} ms/token"
                if ref and method == "grounded-cad":
                    check += f" ({t.best / t.new_tokens / (ref.best / ref.new_tokens):.2f}x retrieve per token)"
            extra = f"; {t.extra['stats_write_s']:.2f} s stats write" if "stats_write_s" in t.extra else ""
            t.extra["check"] = check.strip("; ")
            lines.append(
                f"{kind:<15} {method:<18} {t.n:>5} {t.best:>8.2f} {t.median:>8.2f} {x_hf} {x_ref} {t.best_cpu:>8.2f} "
                f"{c_hf} {c_ref} {ref_name:<18} {t.peak_gb:>6.2f} {t.load:>5.1f}  {check.strip('; ')}{extra}"
            )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--model", help="model folder (default: the demo model, SmolLM2-135M-Instruct)")
    which.add_argument("--random-size", choices=sorted(SIZES), help="a random-weight Llama made in-process")
    parser.add_argument(
        "--tokenizer", help="tokenizer folder for --random-size (default: the demo model's; on the GPU: .gpu/tok)"
    )
    parser.add_argument("--dtype", default="auto", help="auto: bfloat16 on cuda, float32 on cpu")
    parser.add_argument("--data", default="bundled", help="dataset folder (culturesafe build) or 'bundled'")
    parser.add_argument("--limit", type=int, default=2, help="documents per country task")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-gen-toks", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results"), help="folder for the results")
    parser.add_argument("--tag", default="", help="added to the results file name")
    parser.add_argument(
        "--interleave",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="load every model at once and time them in rotating order (default on cpu: a shared machine's load "
        "drifts); --no-interleave loads one model at a time, so its peak memory is its own (default on cuda)",
    )
    parser.add_argument(
        "--fixed-length",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="generate exactly --max-gen-toks tokens per request (min_new_tokens, a stop string never written), so "
        "methods whose answers differ (adapters, CAD) generate the same number of tokens",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch threads (0: torch's default). On a shared CPU, 1 avoids OpenMP spinning when the cores are busy",
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    for name in ("lm-eval", "lm_eval", "culturesafe", "transformers", "peft"):
        logging.getLogger(name).setLevel(logging.ERROR)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        parser.error(f"unknown method(s) {unknown}; known: {', '.join(METHODS)}")
    device = args.device
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype_name = args.dtype if args.dtype != "auto" else ("bfloat16" if device.startswith("cuda") else "float32")
    dtype = getattr(torch, dtype_name)
    started = time.perf_counter()
    load_start = os.getloadavg()[0]

    with tempfile.TemporaryDirectory(prefix="bench-methods-") as tmp:
        scratch = Path(tmp)
        if args.random_size:
            model_dir = random_model(args.random_size, dtype, device, scratch, args.tokenizer)
            model_name = f"random Llama {args.random_size}"
        else:
            from culturesafe_ext.demo_model import demo_model_dir

            model_dir = Path(args.model) if args.model else demo_model_dir()
            model_name = model_dir.name
        t0 = time.perf_counter()
        requests = build_requests(args.data, args.limit, args.max_gen_toks, fixed_length=args.fixed_length)
        built_s = time.perf_counter() - t0
        cultures = cultures_of(requests)
        first = cultures[0]
        adapters = scratch / "adapters"
        if any(m == "peft" or m.startswith("router-") for m in methods):
            make_adapters(model_dir, cultures, dtype, adapters)
        router = None
        if "router-learned" in methods:
            every = requests["loglikelihood"] + requests["generate_until"]
            router = make_router(model_dir, every, device, dtype, scratch / "router")
        common = {"pretrained": str(model_dir), "dtype": dtype_name, "batch_size": args.batch_size, "device": device}
        warmup = min(args.batch_size, 8)
        timings = {(m, kind): Timing(m, kind, len(reqs)) for m in methods for kind, reqs in requests.items()}
        cuda = device.startswith("cuda")
        interleave = args.interleave if args.interleave is not None else not cuda

        def finish(method: str, lm) -> None:
            if method.startswith("probe-"):
                start = time.perf_counter()
                lm.write_stats()
                for kind in TASKS:
                    timings[(method, kind)].extra["stats_write_s"] = time.perf_counter() - start
            print(f"  {method}: done ({time.perf_counter() - started:.0f} s so far)", file=sys.stderr, flush=True)

        def loaded(method: str):
            gc.collect()
            if cuda:
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
            before = memory_now(device)
            lm = load(method, common, scratch, adapters, router, first)
            for kind, reqs in requests.items():  # warm-up: first calls pay for kernels, caches, the router
                getattr(lm, kind)(fresh(reqs[:warmup]), disable_tqdm=True)
                timings[(method, kind)].peak_gb = memory_now(device) - (0 if cuda else before)
            return lm

        if interleave:  # every model loaded; each round times them all, in rotating order
            lms = {m: loaded(m) for m in methods}
            for kind, reqs in requests.items():
                for r in range(args.repeats):
                    for m in methods[r % len(methods) :] + methods[: r % len(methods)]:
                        timed_call(lms[m], kind, reqs, device, timings[(m, kind)])
            for m, lm in lms.items():
                finish(m, lm)
            del lms
        else:  # one model at a time: its peak memory is its own
            for m in methods:
                lm = loaded(m)
                for kind, reqs in requests.items():
                    for _ in range(args.repeats):
                        timed_call(lm, kind, reqs, device, timings[(m, kind)])
                    if cuda:
                        timings[(m, kind)].peak_gb = torch.cuda.max_memory_allocated() / 1e9
                finish(m, lm)
                del lm
        gc.collect()

    counts = {kind: len(reqs) for kind, reqs in requests.items()}
    gpu_name = ""
    if torch.cuda.is_available():
        gpu_name = f"GPU {torch.cuda.get_device_name()}, peak GB = max CUDA memory allocated"
    header = [
        f"bench_methods: {model_name} on {device} ({dtype_name}), batch {args.batch_size}, data {args.data}, "
        f"limit {args.limit} docs per country, {len(cultures)} cultures interleaved ({', '.join(cultures)}), "
        f"{counts['loglikelihood']} loglikelihood + {counts['generate_until']} generate_until requests "
        f"(max_gen_toks {args.max_gen_toks}), requests built once in {built_s:.1f} s",
        f"torch {torch.__version__}, Python {platform.python_version()}, {torch.get_num_threads()} torch threads, "
        f"{os.cpu_count()} CPU cores, load average {load_start:.1f} at start / {os.getloadavg()[0]:.1f} at end; "
        f"{'models interleaved (rotating order)' if interleave else 'each model alone'}, warm-up on {warmup} requests, "
        f"min and median of {args.repeats} timed calls; cpu s = process CPU time (steadier on a shared CPU)"
        f"{'; generation fixed-length' if args.fixed_length else ''}",
        f"{gpu_name if device.startswith('cuda') else 'GB = RSS growth at load and warm-up'}; "
        f"x hf / x ref = min-time ratios; adapters: random LoRA r=8 all-linear, peft = adapter {first!r}",
    ]
    lines = report(timings, first, header)
    lines.append(f"total wall time {time.perf_counter() - started:.0f} s")
    text = "\n".join(lines)
    print(text)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    size = args.random_size or model_name
    name = f"bench_methods-{device.split(':')[0]}-{size}{'-' + args.tag if args.tag else ''}-{stamp}"
    (out / f"{name}.txt").write_text(text + "\n")
    summary = [
        {
            "method": t.method,
            "kind": t.kind,
            "n": t.n,
            "times": t.times,
            "cpu_times": t.cpu,
            "peak_gb": t.peak_gb,
            "loads": t.loads,
            "new_tokens": t.new_tokens,
            **{k: v for k, v in t.extra.items() if k != "routes"},
        }
        for t in timings.values()
    ]
    (out / f"{name}.json").write_text(json.dumps({"header": header, "rows": summary}, indent=2) + "\n")
    print(f"written: {out / name}.txt and .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
