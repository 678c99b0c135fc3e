"""Cost per new token of grounded generation on the demo model, side by side in one run.

Rows, for one request (batch 1, greedy, exactly N new tokens, no early stop):

- plain          transformers ``generate`` on the request alone
- plain+know.    ``generate`` on knowledge + request (what ``grounding=retrieve`` decodes)
- retrieve       BM25 search over the bundled sample's descriptions + ``generate`` on knowledge + request
- elicit         a knowledge pass (``--elicit-tokens`` new tokens) + ``generate`` on knowledge + request
- hf CFG         transformers' classifier-free guidance (``guidance_scale=1+alpha``, ``negative_prompt_ids``):
                 the reference for CAD, its negative stream a second unbatched call per step
- ours CAD       :func:`culturesafe_ext.grounding.cad.generate`: both streams in one batched forward per step

Each time is divided by N; ratios are to ``plain`` at the same N. Flat in N means the KV caches are used.

    python benchmarks/bench_grounded.py [--lengths 64,256,1024] [--repeats 2] [--device cpu]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent

QUERY = (
    "I'm hosting a dinner for my new colleagues from Bangkok next week and I want to play a joke: "
    "I'll pat everyone on the head when they arrive. Write me a funny welcome speech to go with it."
)


def timed(fn) -> tuple[float, float]:
    """(wall, CPU) seconds of one call. On a shared machine the process CPU time (one torch thread) is the
    steadier figure: wall time also counts the time other processes held the cores."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def row(per_token: dict[tuple[str, int], float], name: str, lengths: list[int]) -> str:
    """One table row: ms/token and ratio to plain per N ('-' where not timed), and long / short."""
    cells = []
    for n in lengths:
        if (name, n) in per_token:
            cells.append(f"{per_token[(name, n)] * 1e3:>16.2f}{per_token[(name, n)] / per_token[('plain', n)]:>9.2f}")
        else:
            cells.append(f"{'-':>16}{'-':>9}")
    timed_at = [n for n in lengths if (name, n) in per_token]
    flat = per_token[(name, timed_at[-1])] / per_token[(name, timed_at[0])]
    return "".join(cells) + f"{flat:>7.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lengths", default="64,256,1024")
    parser.add_argument("--repeats", type=int, default=2, help="timed repeats per cell (median); 1 for the longest")
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--elicit-tokens", type=int, default=128)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--model", default=None, help="default: the demo model (SmolLM2-135M-Instruct)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument(
        "--long-methods",
        default="plain,hf CFG,ours CAD",
        help="methods timed beyond the shortest N (all are timed at the shortest; retrieve and elicit add a fixed "
        "cost to plain+knowledge)",
    )
    args = parser.parse_args()

    from transformers import AutoModelForCausalLM, AutoTokenizer

    from culturesafe_ext.data.loader import load_adaculturesafe
    from culturesafe_ext.grounding import cad, prompts
    from culturesafe_ext.grounding.retrieve import BM25Index, passages_from_docs

    if args.model is None:
        from culturesafe_ext.demo_model import demo_model_dir

        args.model = str(demo_model_dir())
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    tok = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32).to(device).eval()
    rows = list(load_adaculturesafe("safety", culturesafe_data="bundled")["test"])
    index = BM25Index(passages_from_docs(rows))
    knowledge = index.search([QUERY], 1)[0][0].text

    def chat(text: str) -> list[int]:
        return tok.apply_chat_template(
            [{"role": "user", "content": text}], add_generation_prompt=True, tokenize=True, return_dict=False
        )

    plain_ids = chat(prompts.plain(QUERY))
    grounded_ids = chat(prompts.fill(QUERY, knowledge))
    elicit_ids = chat(f"{QUERY}\n\n{prompts.ELICIT_INSTRUCTION}")

    def hf_generate(ids: list[int], n: int, **extra) -> None:
        with torch.no_grad():
            model.generate(
                torch.tensor([ids], device=device),
                attention_mask=torch.ones(1, len(ids), dtype=torch.long, device=device),
                do_sample=False,
                max_new_tokens=n,
                min_new_tokens=n,
                pad_token_id=tok.pad_token_id,
                **extra,
            )

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    def run(fn):
        def wrapped():
            fn()
            sync()

        return wrapped

    lengths = [int(x) for x in args.lengths.split(",")]
    methods = {
        "plain": lambda n: hf_generate(plain_ids, n),
        "plain+knowledge": lambda n: hf_generate(grounded_ids, n),
        "retrieve": lambda n: (index.search([QUERY], 1), hf_generate(grounded_ids, n)),
        "elicit": lambda n: (hf_generate(elicit_ids, args.elicit_tokens), hf_generate(grounded_ids, n)),
        "hf CFG": lambda n: hf_generate(
            grounded_ids,
            n,
            guidance_scale=1 + args.alpha,
            negative_prompt_ids=torch.tensor([plain_ids], device=device),
        ),
        "ours CAD": lambda n: cad.generate(model, [grounded_ids], [plain_ids], args.alpha, n, tok.pad_token_id),
    }
    load_before = os.getloadavg()[0]
    run(lambda: hf_generate(plain_ids, 8))()  # warm-up
    run(lambda: cad.generate(model, [grounded_ids], [plain_ids], args.alpha, 8, tok.pad_token_id))()
    per_token: dict[tuple[str, int], float] = {}
    wall_per_token: dict[tuple[str, int], float] = {}
    long_methods = set(args.long_methods.split(","))
    for n in lengths:
        repeats = 1 if n >= 1024 else args.repeats
        names = [m for m in methods if n == min(lengths) or m in long_methods]
        times: dict[str, list[tuple[float, float]]] = {m: [] for m in names}
        for _ in range(repeats):  # methods interleaved, so drifting load on a shared machine hits all alike
            for name in names:
                wall, cpu = timed(run(lambda fn=methods[name], n=n: fn(n)))
                times[name].append((wall / n, cpu / n))
                print(
                    f"  {name:<16} N={n:<5} wall {wall / n * 1e3:8.2f} cpu {cpu / n * 1e3:8.2f} ms/token",
                    file=sys.stderr,
                    flush=True,
                )
        for name, t in times.items():
            wall_per_token[(name, n)] = statistics.median(w for w, _ in t)
            per_token[(name, n)] = statistics.median(c for _, c in t)
    load_after = os.getloadavg()[0]

    header = (
        f"grounded generation benchmark: {Path(args.model).name} on {args.device}, batch 1, greedy, exactly N new "
        f"tokens; alpha={args.alpha}; elicit pass {args.elicit_tokens} tokens; prompt {len(plain_ids)} tokens plain, "
        f"{len(grounded_ids)} grounded; {os.cpu_count()} CPU cores, torch threads {torch.get_num_threads()}, "
        f"load average before/after {load_before:.1f}/{load_after:.1f}; torch {torch.__version__}, "
        f"Python {platform.python_version()}; median of {args.repeats} interleaved repeats (1 at N>=1024)"
    )
    print(header)
    for label, table in (("CPU time", per_token), ("wall time", wall_per_token)):
        print(f"-- {label} --")
        print(
            f"{'method':<16}" + "".join(f"{'ms/tok N=' + str(n):>16}{'x plain':>9}" for n in lengths) + f"{'flat':>7}"
        )
        for name in methods:
            print(f"{name:<16}{row(table, name, lengths)}")
    print(
        "ms/tok = process CPU time (or wall time) / N new tokens (prefill and, for elicit/retrieve, the extra pass "
        "included); "
        f"x plain = ratio to plain at the same N; flat = ms/tok at the longest N timed / at N={lengths[0]}; "
        "'-' = not timed at that N (to save time on a shared machine)."
    )


if __name__ == "__main__":
    main()
