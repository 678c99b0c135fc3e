"""The lm_eval run pool: every selected e2e module's independent ``lm_eval`` runs start at session start."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from types import ModuleType

import pytest
from support.lm_eval_run import RunPool, side_by_side
from support.vllm_server import make_adapters


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


@pytest.fixture(scope="session")
def vllm_adapters(demo_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The vLLM lane's two LoRA adapters on the demo model (here, so the session-start pool can build them)."""
    return make_adapters(demo_model, tmp_path_factory.mktemp("vllm") / "adapters")
