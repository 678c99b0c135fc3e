"""The installed plugin: cheap start-up hook, tasks visible to lm-eval, lm-eval's models intact."""

from __future__ import annotations

import importlib.util
import logging
import os
import subprocess
import sys
import sysconfig
import types
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from packaging.version import Version

from culturesafe_ext import plugin


def py(code: str, **env: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, **env}, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_pth_installed_and_imports_nothing_heavy() -> None:
    pth = Path(sysconfig.get_paths()["purelib"]) / "culturesafe.pth"
    assert pth.read_text().strip() == "import culturesafe_ext._startup"
    out = py(
        "import sys; print(sorted(m for m in ('lm_eval','torch','datasets','transformers') if m in sys.modules));"
        "print([getattr(f, '__name__', type(f).__name__) for f in sys.meta_path])"
    )
    heavy, finders = out.splitlines()
    assert heavy == "[]"
    assert finders.index("'_Watcher'") < finders.index("'PathFinder'")


def test_task_index_lists_our_tasks_after_builtins() -> None:
    out = py(
        "from lm_eval.tasks import TaskManager; tm = TaskManager(); "
        "print('adaculturesafe_knowledge_viet_nam' in tm.all_subtasks, 'adaculturesafe' in tm.all_groups,"
        " 'hellaswag' in tm.all_tasks, tm.task_index['adaculturesafe_knowledge_china'].yaml_path)"
    )
    mc, group, builtin, path = out.split(" ", 3)
    assert (mc, group, builtin) == ("True", "True", "True")
    assert Path(path).is_relative_to(plugin.tasks_dir())


def test_switch_off_removes_our_tasks() -> None:
    out = py(
        "from lm_eval.tasks import TaskManager; print('adaculturesafe' in TaskManager().all_tasks)",
        CULTURESAFE_NO_PLUGIN="1",
    )
    assert out == "False"


def test_lm_eval_models_still_resolve() -> None:
    out = py("from lm_eval.api.registry import get_model; print(get_model('hf').__name__, get_model('dummy').__name__)")
    assert out == "HFLM DummyLM"


def test_include_path_fallback_still_wins(tmp_path: Path) -> None:
    (tmp_path / "mine.yaml").write_text(
        "task: adaculturesafe_knowledge_china\ndataset_path: x\noutput_type: "
        "generate_until\ndoc_to_text: q\ndoc_to_target: a\n"
    )
    out = py(
        f"from lm_eval.tasks import TaskManager; tm = TaskManager(include_path={str(tmp_path)!r}); "
        "print(tm.task_index['adaculturesafe_knowledge_china'].yaml_path)"
    )
    assert out == str(tmp_path / "mine.yaml")


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
    plugin.extend_task_index(index)
    builtin = Path(index.__file__).parent
    index.TaskIndex.build([builtin])
    assert seen == [[builtin]] if lm_eval_discovers else seen == [[builtin, plugin.tasks_dir()]]


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


def test_culturesafe_cli_help_and_version() -> None:
    done = subprocess.run([str(Path(sys.executable).parent / "culturesafe"), "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "build" in done.stdout and "demo" in done.stdout
    done = subprocess.run(
        [str(Path(sys.executable).parent / "culturesafe"), "--version"], capture_output=True, text=True
    )
    from culturesafe_ext import __version__

    assert done.stdout.strip() == f"culturesafe {__version__}"
