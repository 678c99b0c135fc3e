"""The one way tests start this venv's real ``lm_eval`` and ``culturesafe`` CLIs in subprocesses.

Why one module: every end-to-end test pays ~7 s of start-up per ``lm_eval`` process (imports, then lm-eval's
TaskManager indexing every task YAML), mostly on one core. Tests share a run where they can (one run read by
several tests, several tasks in one ``--tasks``), and independent runs go to a :class:`RunPool`: a module that
defines ``lm_eval_jobs(<fixtures>) -> {name: job}`` has its jobs started at session start (conftest), on
:func:`workers` threads, so they overlap each other and the in-process tests; its tests read the futures
(fixture ``lm_eval_runs``). Each run is still the real CLI in its own process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
BIN = Path(sys.executable).parent
T = TypeVar("T")


def lm_eval_args(
    model: Path | str,
    tasks: str | Iterable[str],
    metadata: dict | None = None,
    *,
    limit: int | None = None,
    max_gen_toks: int | None = None,
    batch_size: int | None = None,
    model_type: str = "hf",
    model_args: str = "",
    log_samples: bool = True,
    extra: Iterable[str] = (),
) -> list[str]:
    """``lm_eval run`` arguments for ``model`` on ``tasks``; ``model_args`` are appended after ``pretrained=``."""
    pretrained = f"pretrained={model}" + (f",{model_args}" if model_args else "")
    names = tasks if isinstance(tasks, str) else ",".join(tasks)
    args = ["--model", model_type, "--model_args", pretrained, "--tasks", names]
    if limit is not None:
        args += ["--limit", str(limit)]
    if metadata is not None:
        args += ["--metadata", json.dumps(metadata)]
    if batch_size is not None:
        args += ["--batch_size", str(batch_size)]
    if max_gen_toks is not None:
        args += ["--gen_kwargs", f"max_gen_toks={max_gen_toks}"]
    if log_samples:
        args.append("--log_samples")
    return [*args, *extra]


_worker = threading.local()  # a pool thread's environment: os.environ as it was when the pool started


# Several children run side by side on a 2-core machine: one torch/OpenMP thread each (unless the environment
# says otherwise). Measured, three tiny lm_eval runs at once: 23.7 s wall / 42.1 s user CPU with torch's default
# threads, 16.7 s / 28.8 s with one thread each; one run alone: 11.2 s either way.
CHILD_DEFAULTS = {"OMP_NUM_THREADS": "1"}


def child_env(env: dict | None = None, base: dict | None = None) -> dict:
    """A child process's environment: ``base`` (default: this process's, or the pool's snapshot) + offline + ``env``,
    over :data:`CHILD_DEFAULTS`."""
    if base is None:  # a pool's job must not see what a test running meanwhile sets with monkeypatch.setenv
        base = getattr(_worker, "environ", None) or os.environ
    return {**CHILD_DEFAULTS, **base, **OFFLINE_ENV, **(env or {})}


def lm_eval_raw(
    args: list[str], out: Path, env: dict | None = None, timeout: int = 900, base_env: dict | None = None
) -> subprocess.CompletedProcess:
    """``lm_eval run ARGS --output_path OUT``, whatever its exit code (for tests of failures).

    The child gets ``base_env`` (default: this process's environment) + offline settings + ``env``.
    """
    command = [str(BIN / "lm_eval"), "run", *args, "--output_path", str(out)]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=child_env(env, base_env))


def read_results(out: Path) -> dict:
    """The newest results JSON under ``out``, with ``_dir`` (its folder) added."""
    results = sorted(out.rglob("results_*.json"))
    assert results, f"no results file under {out}"
    data = json.loads(results[-1].read_text())
    data["_dir"] = str(results[-1].parent)
    return data


def run_lm_eval(args: list[str], tmp_path: Path, env: dict | None = None, timeout: int = 900) -> dict:
    """Run the real ``lm_eval`` CLI of this venv in a subprocess; return the parsed results JSON."""
    out = tmp_path / "lm_eval_out"
    done = lm_eval_raw(args, out, env, timeout)
    assert done.returncode == 0, f"lm_eval failed ({done.returncode}):\n{done.stdout[-4000:]}\n{done.stderr[-6000:]}"
    data = read_results(out)
    data["_stdout"] = done.stdout
    return data


def samples(run: dict, task: str) -> list[dict]:
    """The logged samples of ``task`` in a run's folder (exactly one samples file)."""
    [path] = Path(run["_dir"]).glob(f"samples_{task}_*.jsonl")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def culturesafe(*args: object, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """The installed ``culturesafe`` CLI in a subprocess."""
    command = [str(BIN / "culturesafe"), *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, env=child_env(env), timeout=timeout)


def workers() -> int:
    """Runs side by side: one per core, at most two (each run also wants some memory)."""
    return max(1, min(2, os.cpu_count() or 1))


def _remember(environ: dict) -> None:
    _worker.environ = environ


class RunPool:
    """Threads that start independent jobs (each one or more CLI runs); a job's failure is its future's."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(
            workers(), thread_name_prefix="lm_eval", initializer=_remember, initargs=(dict(os.environ),)
        )

    def submit(self, jobs: dict[str, Callable[[], T]]) -> dict[str, Future[T]]:
        return {name: self._pool.submit(job) for name, job in jobs.items()}

    def close(self, cancel: bool = True) -> None:
        """Wait for the running jobs (their servers and subprocesses end); ``cancel`` drops those not started."""
        self._pool.shutdown(wait=True, cancel_futures=cancel)


def side_by_side(jobs: dict[str, Callable[[], T]]) -> dict[str, Future[T]]:
    """Run jobs on a pool of their own and wait for all of them (futures, so a failure fails only its test)."""
    pool = RunPool()
    try:
        return pool.submit(jobs)
    finally:
        pool.close(cancel=False)


# --- runs shared by several modules ------------------------------------------------------------------------
CHINA_JUDGED_TASKS = (
    "adaculturesafe_knowledge_china",
    "adaculturesafe_knowledge_gen_china",
    "adaculturesafe_safety_china",
)


def china_judged_run(model: Path, tmp: Path) -> tuple[dict, object]:
    """A complete run (no --limit) of three China tasks on the bundled sample, judged by a stand-in that stays up
    (a spot check re-asks it, maybe the session's last test: it stops with the session's process, or after 90
    minutes, CI's bound for the whole job). Shared by e2e/test_analysis and
    e2e/test_validate as the job ``shared:china_judged`` (conftest starts a shared job once)."""
    from support.openai_standin import StandIn

    standin = StandIn(max_lifetime=5400).start()
    try:
        judge = {"backend": "openai", "model": "standin", "base_url": standin.base_url}
        judge |= {"cache_path": str(tmp / "judge.sqlite"), "progress": False}
        metadata = {"culturesafe_data": "bundled", "judge": judge}
        return run_lm_eval(lm_eval_args(model, CHINA_JUDGED_TASKS, metadata, max_gen_toks=4), tmp), standin
    except BaseException:
        standin.stop()
        raise
