"""``culturesafe serve-command ADAPTERS_DIR``: the vLLM command that serves an adapters folder for ``served-router``.

The adapters come from the folder's manifest (``adapters.json``, written by ``culturesafe train adapters``;
every ``<culture>/adapter_config.json`` when there is none), each served under its culture's name
(``--lora-modules china=DIR/china ...``): the name ``served-router`` puts in a request's ``model`` field.
``--max-loras`` is the number of adapters (all may be in one batch) and ``--max-lora-rank`` the largest ``r``
of their ``adapter_config.json``, rounded up to a rank vLLM accepts. The base is ``--model``, else the
manifest's ``base_model``. It prints the command (stdout, one line, shell-quoted) and, on stderr, the
``lm_eval`` model args that match it.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from culturesafe_ext.cli_types import positive_int

VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)  # vLLM's LoRAConfig.max_lora_rank choices (0.32)
SERVER_MODULE = "vllm.entrypoints.openai.api_server"  # `vllm serve` needs the `vllm` distribution name


@dataclass(frozen=True)
class ServePlan:
    base: str
    served_name: str
    adapters: dict[str, Path]  # served name -> adapter folder
    max_lora_rank: int

    def argv(self, python: str = "python", host: str = "127.0.0.1", port: int = 8000, extra: tuple = ()) -> list[str]:
        lora = [f"{name}={folder}" for name, folder in self.adapters.items()]
        return [
            python, "-m", SERVER_MODULE, "--model", self.base, "--served-model-name", self.served_name,
            "--host", host, "--port", str(port), "--enable-lora", "--max-loras", str(len(self.adapters)),
            "--max-lora-rank", str(self.max_lora_rank), "--lora-modules", *lora, *extra,
        ]  # fmt: skip


def adapter_rank(folder: Path) -> int:
    from culturesafe_ext.routing.planner import ADAPTER_CONFIG

    path = folder / ADAPTER_CONFIG
    try:
        rank = json.loads(path.read_text(encoding="utf-8"))["r"]
    except (OSError, ValueError, KeyError) as err:
        raise ValueError(f"{path}: no readable LoRA rank, field 'r' ({err})") from err
    if not isinstance(rank, int) or rank < 1:
        raise ValueError(f"{path}: field 'r' = {rank!r}, expected a positive integer")
    return rank


def plan(adapters_dir: str | Path, model: str | None = None, served_name: str | None = None) -> ServePlan:
    """What to serve for ``adapters_dir`` (see the module docstring)."""
    from culturesafe_ext.routing.planner import ADAPTER_CONFIG, adapters_manifest, discover_adapters

    root = Path(adapters_dir).expanduser().resolve()
    found = discover_adapters(root)
    manifest = adapters_manifest(root)
    if manifest is not None and manifest.get("adapters"):
        listed = list(manifest["adapters"])
        absent = [name for name in listed if name not in found]
        if absent:
            raise ValueError(
                f"{root}/adapters.json lists {', '.join(absent)}, but {root} has no <name>/{ADAPTER_CONFIG}"
            )
        chosen = {name: found[name] for name in listed}
    else:
        chosen = found
    base = model or (manifest or {}).get("base_model")
    if not base:
        raise ValueError(f"{root}: no adapters.json naming the base model; pass --model BASE")
    rank = max(adapter_rank(folder) for folder in chosen.values())
    if rank > VLLM_LORA_RANKS[-1]:
        raise ValueError(f"{root}: LoRA rank {rank} is above the largest vLLM serves ({VLLM_LORA_RANKS[-1]})")
    max_rank = next(r for r in VLLM_LORA_RANKS if r >= rank)
    return ServePlan(str(base), served_name or Path(str(base)).name, chosen, max_rank)


def run(args: argparse.Namespace) -> int:
    serve = plan(args.adapters_dir, args.model, args.served_model_name)
    extra = tuple(shlex.split(args.vllm_args))
    print(shlex.join(serve.argv(args.python, args.host, args.port, extra)))
    url = f"http://{args.host}:{args.port}/v1/completions"
    print(
        f"# then: lm_eval --model served-router --model_args base_url={url},model={serve.served_name},"
        f"tokenizer={serve.base},adapters={Path(args.adapters_dir).expanduser().resolve()},routing=oracle",
        file=sys.stderr,
    )
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve-command",
        help="print the vLLM command that serves an adapters folder for --model served-router",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("adapters_dir", metavar="ADAPTERS_DIR", help="a folder written by `culturesafe train adapters`")
    parser.add_argument("--model", help="the base model (default: the base_model in ADAPTERS_DIR/adapters.json)")
    parser.add_argument("--served-model-name", help="the base's name on the server (default: the model's last part)")
    parser.add_argument("--python", default="python", help="the Python of the vLLM install (default: python)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=positive_int, default=8000)
    parser.add_argument(
        "--vllm-args",
        default="",
        metavar="ARGS",
        help="more vLLM arguments, e.g. --vllm-args='--dtype float32 --max-model-len 2048'",
    )
    parser.set_defaults(func=run)
