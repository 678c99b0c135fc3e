"""``accelerate launch --multi_gpu --num_processes N tests/support/dp_launch.py ARGS``: ``lm_eval ARGS``,
data-parallel on a CPU-only machine (accelerate's MULTI_CPU mode, gloo; set ``ACCELERATE_USE_CPU=true``).

Why a shim: lm-eval 0.4.13's ``HFLM`` (and so ``hf-probe``, ``hf-router``, ``hf-grounded``) shards the
documents over ``accelerate launch`` processes only when torch reports more than one accelerator device
(``lm_eval/models/huggingface.py``: ``elif gpus > 1``). On a machine without one, every process runs the
whole evaluation as rank 0 of 1. This shim changes that one reading -- ``torch.cuda.device_count()``
answers the number of processes -- and nothing else: the model stays on the CPU (``torch.cuda.is_available()``
is still false), and everything from there on is lm-eval's own data-parallel code (sharding the
documents by rank, padding requests, gathering samples and metrics on rank 0), as on GPUs.
"""

from __future__ import annotations

import os
import sys

import torch


def main() -> None:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not torch.cuda.is_available():
        torch.cuda.device_count = lambda: world  # type: ignore[assignment]
    from lm_eval.__main__ import cli_evaluate

    sys.argv = ["lm_eval", *sys.argv[1:]]
    cli_evaluate()


if __name__ == "__main__":
    main()
