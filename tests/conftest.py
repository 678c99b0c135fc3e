"""Shared fixtures. Tests run against the *installed* culturesafe (scripts/test.sh installs it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
UPSTREAM = REPO.parent / "shared" / "upstream"
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def pytest_configure(config: pytest.Config) -> None:
    import culturesafe_ext

    where = Path(culturesafe_ext.__file__).resolve()
    if "site-packages" not in where.parts:
        raise pytest.UsageError(
            f"culturesafe_ext was imported from the checkout ({where}), not the installed package: "
            "run the tests with scripts/test.sh (it installs the package and calls pytest)."
        )
    os.environ.update(OFFLINE_ENV)


@pytest.fixture(scope="session")
def upstream_adaculturesafe() -> Path:
    folder = UPSTREAM / "adaculturesafe"
    if not any(folder.glob("*.json")):
        pytest.skip(f"the AdaCultureSafe release files are not at {folder} (../shared/upstream is absent)")
    return folder


@pytest.fixture(scope="session")
def built_upstream(upstream_adaculturesafe: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from culturesafe_ext.builders import adaculturesafe

    out = tmp_path_factory.mktemp("ada") / "data"
    adaculturesafe.build(upstream_adaculturesafe, out)
    return out


@pytest.fixture(scope="session")
def demo_model() -> Path:
    from culturesafe_ext.demo_model import demo_model_dir

    return demo_model_dir()


@pytest.fixture(scope="session")
def tiny_model(demo_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer random Llama with the demo model's real tokenizer: fast, and a real HF folder."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(demo_model)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    folder = tmp_path_factory.mktemp("tiny") / "tiny-llama"
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def run_lm_eval(args: list[str], tmp_path: Path, env: dict | None = None, timeout: int = 900) -> dict:
    """Run the real ``lm_eval`` CLI of this venv in a subprocess; return the parsed results JSON."""
    out = tmp_path / "lm_eval_out"
    command = [str(Path(sys.executable).parent / "lm_eval"), "run", *args, "--output_path", str(out)]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **OFFLINE_ENV, **(env or {})},
    )
    assert done.returncode == 0, f"lm_eval failed ({done.returncode}):\n{done.stdout[-4000:]}\n{done.stderr[-6000:]}"
    results = sorted(out.rglob("results_*.json"))
    assert results, f"no results file under {out}"
    data = json.loads(results[-1].read_text())
    data["_dir"] = str(results[-1].parent)
    data["_stdout"] = done.stdout
    return data
