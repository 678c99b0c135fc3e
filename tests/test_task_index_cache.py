"""The cached index of lm-eval's own task folder equals lm-eval's build, and any change to a YAML rebuilds it.

lm-eval's real ``TaskIndex.build`` (unpatched) over a small folder of task YAMLs standing in for its own.
"""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import pytest

from culturesafe_ext import task_index_cache


def _task(folder: Path, name: str, body: str = "") -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(f"task: {name}\ndataset_path: x/{name}\ndoc_to_text: q\n{body}", encoding="utf-8")
    return path


@pytest.fixture
def original(monkeypatch, tmp_path: Path):
    """lm-eval's own ``TaskIndex.build``, as the plugin found it (its wrapper's ``__wrapped__``)."""
    from lm_eval.tasks import _index

    monkeypatch.setenv("CULTURESAFE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv(task_index_cache.OFF_ENV, raising=False)
    return _index.TaskIndex.build.__wrapped__


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    builtin, extra = tmp_path / "lm_eval_tasks", tmp_path / "ours"
    (builtin / "sub").mkdir(parents=True)
    extra.mkdir()
    for n in range(5):
        _task(builtin / ("sub" if n % 2 else ""), f"t{n}")
    (builtin / "group.yaml").write_text("group: g\ntask:\n  - t0\n  - t1\n", encoding="utf-8")
    _task(extra, "ours_a")
    _task(extra, "t3", "description: ours\n")  # overrides a built-in task, as an --include_path may
    return builtin, extra


def test_equals_lm_evals_build_and_the_second_build_parses_nothing(
    original, folders: tuple[Path, Path], monkeypatch, caplog
) -> None:
    from lm_eval.tasks import _index

    builtin, extra = folders
    want = original([builtin, extra])
    with caplog.at_level(logging.WARNING):
        first = task_index_cache.build_index(original, [builtin, extra], builtin.resolve())
    assert list(first.items()) == list(want.items())  # same entries, same order
    assert first["t3"].yaml_path == extra / "t3.yaml"
    assert "Task 't3' from" in caplog.text and "overrides existing task" in caplog.text

    parsed: list[Path] = []
    real_load = _index.load_yaml
    monkeypatch.setattr(_index, "load_yaml", lambda path, **kw: parsed.append(Path(path)) or real_load(path, **kw))
    again = task_index_cache.build_index(original, [builtin, extra], builtin.resolve())
    assert list(again.items()) == list(want.items())
    assert parsed and all(p.is_relative_to(extra) for p in parsed)  # the built-in folder came from the cache


def test_a_changed_yaml_or_a_damaged_file_builds_it_again(original, folders: tuple[Path, Path]) -> None:
    builtin, _ = folders
    task_index_cache.cached_index(original, builtin)
    _task(builtin, "t0", "description: changed\n")
    assert task_index_cache.cached_index(original, builtin)["t0"].cfg["description"] == "changed"
    _task(builtin, "t5")
    assert "t5" in task_index_cache.cached_index(original, builtin)
    cached = list((task_index_cache.cache_dir() / task_index_cache.FOLDER).glob("*.pickle"))
    for path in cached:
        path.write_bytes(b"not a pickle")
    assert list(task_index_cache.cached_index(original, builtin).items()) == list(original([builtin]).items())
    rewritten = [pickle.loads(p.read_bytes()) for p in cached if p.read_bytes() != b"not a pickle"]
    assert len(rewritten) == 1 and "t5" in rewritten[0]  # the current folder's file was written again


def test_switched_off_it_writes_nothing(original, folders: tuple[Path, Path], monkeypatch) -> None:
    builtin, _ = folders
    monkeypatch.setenv(task_index_cache.OFF_ENV, "1")
    assert task_index_cache.cached_index(original, builtin) == original([builtin])
    assert not (task_index_cache.cache_dir() / task_index_cache.FOLDER).exists()
