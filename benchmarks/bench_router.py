"""Throughput of mixed-culture batches (hf-router) vs the base model with a single adapter, side by side.

Goal: mixed >= 0.8x single. Both sides run the same requests with the same batch size in one process,
alternating, and report the median of the repeats:

1. model level: one forward pass over a [batch, tokens] batch, and ``generate`` of new tokens —
   ``PeftModel`` with one active adapter vs the same model with N adapters loaded and per-row
   ``adapter_names`` cycling over them (the base alone is shown for reference);
2. lm-eval level: ``loglikelihood`` and ``generate_until`` of identical requests through lm-eval's
   ``HFLM(peft=one adapter)`` vs ``hf-router`` (``routing=oracle``, docs of N cultures interleaved),
   which includes hf-router's routing and row matching.

Adapters are random LoRA weights (rank 8, all linear layers): throughput does not depend on training.

    python benchmarks/bench_router.py [--model DIR] [--adapters 6] [--batch 8] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

CULTURES = ["china", "india", "spain", "thailand", "ukraine", "viet_nam", "peru", "kenya"]


def make_adapters(model_dir: str, n: int, folder: Path) -> list[Path]:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    out = []
    for i, name in enumerate(CULTURES[:n]):
        torch.manual_seed(i)
        config = LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", init_lora_weights=False)
        peft_model = get_peft_model(base, config)
        peft_model.save_pretrained(folder / name)
        base = peft_model.unload()
        out.append(folder / name)
    return out


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def model_level(model_dir: str, adapters: list[Path], batch: int, tokens: int, new: int, repeats: int) -> list[str]:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    model = PeftModel.from_pretrained(base, str(adapters[0]), adapter_name=adapters[0].name)
    for path in adapters[1:]:
        model.load_adapter(str(path), adapter_name=path.name)
    model.eval()
    model.set_adapter(adapters[0].name)
    names = [adapters[i % len(adapters)].name for i in range(batch)]
    torch.manual_seed(0)
    ids = torch.randint(100, 1000, (batch, tokens))
    mask = torch.ones_like(ids)
    gen = {"max_new_tokens": new, "min_new_tokens": new, "do_sample": False, "attention_mask": mask, "pad_token_id": 0}

    with torch.no_grad():
        single_f = timed(lambda: model(ids), repeats)
        mixed_f = timed(lambda: model(ids, adapter_names=names), repeats)
        with model.disable_adapter():
            base_f = timed(lambda: model(ids), repeats)
        single_g = timed(lambda: model.generate(input_ids=ids, **gen), repeats)
        mixed_g = timed(lambda: model.generate(input_ids=ids, adapter_names=names, **gen), repeats)
    n_tok, n_new = batch * tokens, batch * new
    return [
        f"model level: batch {batch} x {tokens} tokens, {len(adapters)} adapters loaded, median of {repeats}",
        f"  forward   base alone     {n_tok / base_f:9.0f} tok/s",
        f"  forward   single adapter {n_tok / single_f:9.0f} tok/s",
        f"  forward   mixed batch    {n_tok / mixed_f:9.0f} tok/s   mixed/single = {single_f / mixed_f:.2f}x",
        f"  generate  single adapter {n_new / single_g:9.1f} new tok/s ({new} new tokens per row)",
        f"  generate  mixed batch    {n_new / mixed_g:9.1f} new tok/s   mixed/single = {single_g / mixed_g:.2f}x",
    ]


def lm_eval_level(model_dir: str, folder: Path, adapters: list[Path], batch: int, n_req: int, repeats: int):
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    from culturesafe_ext.data.loader import load_adaculturesafe
    from culturesafe_ext.models.router import HFRouterLM
    from culturesafe_ext.tasks.knowledge import doc_to_text_gen, doc_to_text_mc

    docs = list(load_adaculturesafe("knowledge", culturesafe_data="bundled")["test"])[:n_req]
    countries = sorted({d["country"] for d in docs})
    for i, doc in enumerate(docs):  # spread the docs over the benchmark's adapters
        doc["country"] = adapters[i % len(adapters)].name
    common = {"pretrained": model_dir, "device": "cpu", "dtype": "float32", "batch_size": batch}
    single = HFLM(peft=str(adapters[0]), **common)
    routed = HFRouterLM(adapters=str(folder), routing="oracle", **common)

    def ll_requests():
        return [
            Instance("loglikelihood", d, (doc_to_text_mc(d), " " + opt), i, ("bench", i, 1))
            for i, d in enumerate(docs)
            for opt in d["options"]
        ]

    def gen_requests():
        kwargs = {"until": ["\n\n"], "max_gen_toks": 8, "do_sample": False}
        return [
            Instance("generate_until", d, (doc_to_text_gen(d), kwargs), i, ("bench", i, 1)) for i, d in enumerate(docs)
        ]

    n_ll = len(ll_requests())
    s_ll = timed(lambda: single.loglikelihood(ll_requests(), disable_tqdm=True), repeats)
    m_ll = timed(lambda: routed.loglikelihood(ll_requests(), disable_tqdm=True), repeats)
    s_gen = timed(lambda: single.generate_until(gen_requests(), disable_tqdm=True), repeats)
    m_gen = timed(lambda: routed.generate_until(gen_requests(), disable_tqdm=True), repeats)
    return [
        f"lm-eval level: {len(docs)} bundled MCQs ({len(countries)} countries' texts) routed over {len(adapters)} "
        f"adapters, batch_size {batch}, median of {repeats}",
        f"  loglikelihood  HFLM(peft=single) {n_ll / s_ll:7.1f} req/s",
        f"  loglikelihood  hf-router mixed   {n_ll / m_ll:7.1f} req/s   mixed/single = {s_ll / m_ll:.2f}x",
        f"  generate_until HFLM(peft=single) {len(docs) / s_gen:7.2f} req/s (8 new tokens)",
        f"  generate_until hf-router mixed   {len(docs) / m_gen:7.2f} req/s   mixed/single = {s_gen / m_gen:.2f}x",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="base model folder (default: the demo model, SmolLM2-135M-Instruct)")
    parser.add_argument("--adapters", type=int, default=6)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=16)
    parser.add_argument("--requests", type=int, default=24, help="bundled MCQs for the lm-eval level")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.model is None:
        from culturesafe_ext.models.demo_model import demo_model_dir

        args.model = str(demo_model_dir())
    torch.set_num_threads(max(1, torch.get_num_threads()))
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        adapters = make_adapters(args.model, args.adapters, folder)
        lines = [
            f"bench_router: base {Path(args.model).name}, torch {torch.__version__}, {torch.get_num_threads()} threads"
        ]
        lines += model_level(args.model, adapters, args.batch, args.tokens, args.new_tokens, args.repeats)
        lines += lm_eval_level(args.model, folder, adapters, args.batch, args.requests, args.repeats)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
