"""Shared fixtures. Tests run against the *installed* culturesafe (scripts/test.sh installs it).

Nothing here imports torch, transformers or lm-eval at collection: the fast lane (``pytest tests --ignore
tests/e2e``) stays light; the lm_eval run pool is in tests/e2e/conftest.py."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
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


HEAVY = ("torch", "transformers")  # seconds to import each: the fast lane imports them only inside the tests
_BROUGHT_IN: dict[str, str] = {}  # heavy module -> the test module whose collection imported it


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Iterator[None]:
    before = {name for name in HEAVY if name in sys.modules}
    yield
    for name in HEAVY:
        if name in sys.modules and name not in before:
            _BROUGHT_IN.setdefault(name, collector.nodeid)


def pytest_collection_finish(session: pytest.Session) -> None:
    """The fast lane (nothing under tests/e2e collected) must not import torch or transformers at collection."""
    if any(name == "e2e" or name.startswith("e2e.") for name in sys.modules):
        return
    heavy = {name: where for name, where in _BROUGHT_IN.items() if name in sys.modules}
    if heavy:
        found = "; ".join(f"{name} by {where or 'a plugin'}" for name, where in sorted(heavy.items()))
        raise pytest.UsageError(
            f"the fast lane imported {found} at collection: import it inside the test or fixture that needs it"
        )


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
