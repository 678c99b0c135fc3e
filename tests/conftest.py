"""Shared fixtures. Tests run against the *installed* culturesafe (scripts/test.sh installs it).

Nothing here imports torch, transformers or lm-eval at collection: the fast lane (``pytest tests --ignore
tests/e2e``) stays light; the lm_eval run pool is in tests/e2e/conftest.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support.lm_eval_run import OFFLINE_ENV
from support.paths import UPSTREAM
from support.tiny_models import tiny_causal_lm


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
    from transformers import AutoTokenizer

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(demo_model)
    folder = tmp_path_factory.mktemp("tiny") / "tiny-llama"
    tiny_causal_lm(tokenizer).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
