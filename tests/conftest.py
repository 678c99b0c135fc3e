"""Shared fixtures. Tests run against the *installed* culturesafe (scripts/test.sh installs it)."""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from types import ModuleType

import pytest
from support.lm_eval_run import OFFLINE_ENV, RunPool, run_lm_eval, side_by_side
from support.tiny_models import tiny_causal_lm

__all__ = ["OFFLINE_ENV", "run_lm_eval"]  # the test modules' `from conftest import ...` keeps working

REPO = Path(__file__).resolve().parent.parent
UPSTREAM = REPO.parent / "shared" / "upstream"


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


def _jobs(module: ModuleType, request: pytest.FixtureRequest) -> dict:
    """The module's ``lm_eval_jobs``, called with the fixtures its parameters name."""
    build = module.lm_eval_jobs
    return build(**{name: request.getfixturevalue(name) for name in inspect.signature(build).parameters})


@pytest.fixture(scope="session", autouse=True)
def lm_eval_pool(request: pytest.FixtureRequest) -> Iterator[dict[str, dict[str, Future]]]:
    """Start every selected module's independent lm_eval runs now, two at a time, in the order tests will read
    them: they overlap the in-process tests instead of each module waiting for its own runs in turn."""
    modules: list[ModuleType] = []
    for item in request.session.items:
        module = getattr(item, "module", None)
        if module is not None and hasattr(module, "lm_eval_jobs") and module not in modules:
            modules.append(module)
    if not modules:
        yield {}
        return
    pool = RunPool()
    started: dict[str, dict[str, Future]] = {}
    shared: dict[str, Future] = {}  # a job named "shared:..." is started once for every module that lists it
    try:
        for module in modules:
            try:
                jobs = _jobs(module, request)
            except pytest.skip.Exception:  # e.g. no upstream files: the module's own fixture skips its tests
                continue
            mine = {name: job for name, job in jobs.items() if name not in shared}
            started[module.__name__] = {**pool.submit(mine), **{n: shared[n] for n in jobs if n in shared}}
            shared |= {n: f for n, f in started[module.__name__].items() if n.startswith("shared:")}
        yield started
    finally:
        pool.close()


@pytest.fixture(scope="module")
def lm_eval_runs(lm_eval_pool: dict[str, dict[str, Future]], request: pytest.FixtureRequest) -> dict[str, Future]:
    """This module's runs (``lm_eval_jobs``): started at session start, or here if they were not."""
    started = lm_eval_pool.get(request.module.__name__)
    return started if started is not None else side_by_side(_jobs(request.module, request))
