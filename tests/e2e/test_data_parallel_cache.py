"""The wrappers under data parallelism with ``--use_cache``, and ``hf-probe probe_tokens=generated`` with lm-eval's
padding: two CPU processes (tests/support/dp_launch.py) give the one-process results and statistics.

lm-eval's ``CachingLM`` does not call the model at all on a rank whose requests are all cached, while the
wrappers end every request call in a gather across the ranks (culturesafe_ext/models/ranks.py): the patched
``CachingLM`` (lm_eval_internals.patch_caching_lm) then runs the wrapper's method with no requests, so every rank
reaches the same collectives. The scenario: a first run with ``--limit 5`` (rank 0 gets documents 0, 2, 4;
rank 1 gets 1, 3 and lm-eval pads it by sending its last request again), then ``--limit 6`` over the same
cache: rank 0's requests are all cached, rank 1 has document 5 to run.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from support.lm_eval_run import run_lm_eval

from e2e.test_data_parallel import WRAPPER_TASKS, assert_same_run, run_two_processes, wrapper_args

HANG = 300  # seconds: a run that waits in a gather longer than this hangs


def _args(model: str, model_args: str, folder: Path, limit: int) -> list[str]:
    return [*wrapper_args(model, model_args, limit=limit), "--use_cache", str(folder.parent / "cache" / "lm")]


def _one_and_two(make_args, root: Path, name: str, limit: int) -> dict:
    """The same arguments in one process and in two, side by side, each over its own cache under ``root``."""
    one_dir, two_dir = root / "one" / name, root / "two" / name
    with ThreadPoolExecutor(max_workers=2) as pool:
        one = pool.submit(run_lm_eval, make_args(one_dir, limit), one_dir, None, HANG)
        two = pool.submit(run_two_processes, make_args(two_dir, limit), two_dir, None, HANG)
        return {"one": one.result(), "two": two.result(), "one_dir": one_dir, "two_dir": two_dir}


@pytest.fixture(scope="module")
def probe_root(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple:
    def make_args(folder: Path, limit: int) -> list[str]:
        model_args = f"pretrained={tiny_model},dtype=float32,probe_tokens=generated,probe_out={folder / 'probe'}"
        return _args("hf-probe", model_args, folder, limit)

    return make_args, tmp_path_factory.mktemp("dp_probe_cache")


@pytest.fixture(scope="module")
def probe_first(probe_root: tuple) -> dict:
    """--limit 5, nothing cached yet: rank 1 is padded with a copy of its last request."""
    return _one_and_two(*probe_root, "first", 5)


@pytest.fixture(scope="module")
def probe_second(probe_root: tuple, probe_first: dict) -> dict:
    """--limit 6 over the first run's caches: rank 0's requests are all cached, rank 1 has document 5."""
    return _one_and_two(*probe_root, "second", 6)


def _assert_same_stats(one: Path, two: Path, n_docs: int) -> None:
    import numpy as np

    assert sorted(p.name for p in one.glob("*.npz")) == sorted(f"{task}.npz" for task in WRAPPER_TASKS)
    for path in one.glob("*.npz"):
        a, b = np.load(path), np.load(two / path.name)
        assert json.loads(str(a["meta"])) == json.loads(str(b["meta"])), path.name
        assert json.loads(str(a["meta"]))["n_docs"] == n_docs, path.name
        for key in ("act_sum", "topk_count", "tokens"):
            np.testing.assert_array_equal(a[key], b[key], err_msg=f"{path.name}: {key}")
    assert json.loads((two / "probe_stats.json").read_text()) == json.loads((one / "probe_stats.json").read_text())


def test_probe_generated_tokens_skip_the_request_lm_eval_repeats_to_even_out_the_ranks(probe_first: dict) -> None:
    """First run (nothing cached yet): rank 1 gets its last generation request twice; the statistics of the
    generated tokens count it once, as the one-process run does."""
    first = probe_first
    assert_same_run(first["one"], first["two"], WRAPPER_TASKS)
    _assert_same_stats(first["one_dir"] / "probe", first["two_dir"] / "probe", n_docs=5)


def test_a_rank_whose_requests_are_all_cached_still_joins_the_gather(probe_second: dict) -> None:
    """Second run: rank 0 finds every request in its cache, rank 1 runs document 5; the run finishes and its
    results and statistics (of the one uncached document) equal the one-process run's over its own cache."""
    second = probe_second
    assert "Cached requests: 0," not in second["two"]["_stderr"]  # the cache was really used
    assert "Requests remaining: 0" in second["two"]["_stderr"]  # and a rank found every request in it
    assert_same_run(second["one"], second["two"], WRAPPER_TASKS)
    _assert_same_stats(second["one_dir"] / "probe", second["two_dir"] / "probe", n_docs=1)


@pytest.fixture(scope="module")
def grounded_cached(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """hf-grounded retrieving from the run's own documents: the index is built from every rank's documents
    (a gather the fully cached rank must join, with none of its own)."""
    root = tmp_path_factory.mktemp("dp_grounded_cache")

    def make_args(folder: Path, limit: int) -> list[str]:
        model_args = (
            f"pretrained={tiny_model},dtype=float32,grounding=retrieve,knowledge_source=docs,top_k=3,"
            f"grounding_log={folder / 'grounding.jsonl'}"
        )
        return _args("hf-grounded", model_args, folder, limit)

    first = _one_and_two(make_args, root, "first", 5)
    return {"first": first, "second": _one_and_two(make_args, root, "second", 6)}


def test_hf_grounded_with_a_fully_cached_rank_equals_the_one_process_run(grounded_cached: dict) -> None:
    for name, documents in (("first", 2 * 5), ("second", 2 * 1)):  # second: only document 5 is not cached
        run = grounded_cached[name]
        assert_same_run(run["one"], run["two"], WRAPPER_TASKS)
        one, two = run["one"]["config"]["grounding"], run["two"]["config"]["grounding"]
        assert one["documents"] == documents, name
        for key in ("documents", "empty_knowledge", "retrieval_recall"):
            assert two[key] == one[key], (name, key)
        lines = [sorted(Path(g["log"]).read_text().splitlines()) for g in (one, two)]
        assert lines[0] == lines[1], name
    assert "Requests remaining: 0" in grounded_cached["second"]["two"]["_stderr"]
