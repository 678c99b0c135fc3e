"""The plugin in process: its guards warn instead of crashing, its entry points, and its hooks standing down."""

from __future__ import annotations

import importlib.util
import logging
import sys
import types
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from packaging.version import Version

from culturesafe_ext import plugin, task_index_cache


def test_unknown_lm_eval_shape_warns_instead_of_crashing(caplog) -> None:
    fake = types.ModuleType("lm_eval.tasks._index")
    fake.__file__ = "/nowhere/_index.py"
    with caplog.at_level(logging.WARNING, logger="culturesafe"):
        plugin.extend_task_index(fake)
    assert "--include_path" in caplog.text and str(plugin.tasks_dir()) in caplog.text


def test_untested_version_warns(monkeypatch, caplog) -> None:
    monkeypatch.setattr(plugin, "_lm_eval_version", lambda: Version("0.9.0"))
    with caplog.at_level(logging.WARNING, logger="culturesafe"):
        plugin._warn_if_untested()
    assert "lm-eval 0.9.0 is outside the versions" in caplog.text


def test_task_entry_point_names_the_package_of_our_task_folder() -> None:
    """lm-eval's entry-point discovery (#4015) takes the folder of the package the entry point names."""
    [ep] = [ep for ep in entry_points(group="lm_eval.tasks") if ep.dist.name == plugin.DISTRIBUTION]
    spec = importlib.util.find_spec(ep.value.split(":")[0])
    assert [Path(p).resolve() for p in spec.submodule_search_locations] == [plugin.tasks_dir().resolve()]
    assert any(plugin.tasks_dir().glob("adaculturesafe/*.yaml")) and any(plugin.tasks_dir().glob("culturax/*.yaml"))


def test_model_registry_is_our_entry_points() -> None:
    assert plugin.model_plugins() == {
        "hf-grounded": "culturesafe_ext.models.grounded:GroundedHFLM",
        "hf-probe": "culturesafe_ext.models.probe:ProbeHFLM",
        "hf-router": "culturesafe_ext.models.router:HFRouterLM",
        "served-router": "culturesafe_ext.models.served_router:ServedRouterLM",
    }


def _fake_index(tmp_path: Path) -> tuple[types.ModuleType, list]:
    """An ``lm_eval.tasks._index`` stand-in whose ``TaskIndex.build`` records the folders it is given."""
    builtin = tmp_path / "lm_eval" / "tasks"
    builtin.mkdir(parents=True)
    seen: list = []

    class TaskIndex:
        @staticmethod
        def build(paths):
            seen.append(list(paths))
            return {}

    module = types.ModuleType("lm_eval.tasks._index")
    module.__file__ = str(builtin / "_index.py")
    module.TaskIndex = TaskIndex
    return module, seen


@pytest.mark.parametrize("lm_eval_discovers", [False, True])
def test_task_hook_stands_down_when_lm_eval_discovers_plugins(tmp_path: Path, monkeypatch, lm_eval_discovers) -> None:
    index, seen = _fake_index(tmp_path)
    manager = types.ModuleType("lm_eval.tasks.manager")
    if lm_eval_discovers:  # as #4015 adds it; lm-eval passes our folder among the plugin paths itself
        manager.discover_plugin_task_paths = lambda: [plugin.tasks_dir()]
    monkeypatch.setitem(sys.modules, "lm_eval.tasks.manager", manager)
    monkeypatch.setenv(task_index_cache.OFF_ENV, "1")  # every folder reaches build (the cache: its own tests)
    plugin.extend_task_index(index)
    builtin = Path(index.__file__).parent
    index.TaskIndex.build([builtin])
    # standing in: our folder right after lm-eval's (indexed apart, so that lm-eval's part can be cached)
    assert seen == [[builtin]] if lm_eval_discovers else seen == [[builtin], [plugin.tasks_dir()]]


@pytest.mark.parametrize("lm_eval_discovers", [False, True])
def test_model_hook_stands_down_when_lm_eval_discovers_plugins(monkeypatch, lm_eval_discovers) -> None:
    import lm_eval.api

    registered: dict[str, str] = {}
    fake = types.ModuleType("lm_eval.api.registry")  # a fresh registry holding only lm-eval's own "hf"
    fake.model_registry = _Registry({"hf": "lm_eval.models.huggingface:HFLM"}, registered)
    if lm_eval_discovers:  # as #4013 adds it: lm-eval registers the entry points itself
        fake.load_plugins = lambda group, registry: []
    monkeypatch.setattr(lm_eval.api, "registry", fake)
    plugin.register_models(types.ModuleType("lm_eval.models"))
    assert registered == ({} if lm_eval_discovers else plugin.model_plugins())


class _Registry:
    def __init__(self, existing: dict[str, str], registered: dict[str, str]) -> None:
        self.existing, self.registered = existing, registered

    def __contains__(self, name: str) -> bool:
        return name in self.existing or name in self.registered

    def register(self, name: str, target: str) -> None:
        self.registered[name] = target
