"""The installed plugin: cheap start-up hook, tasks visible to lm-eval, lm-eval's models intact."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

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


def test_culturesafe_cli_help_and_version() -> None:
    done = subprocess.run([str(Path(sys.executable).parent / "culturesafe"), "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "build" in done.stdout and "demo" in done.stdout
    done = subprocess.run(
        [str(Path(sys.executable).parent / "culturesafe"), "--version"], capture_output=True, text=True
    )
    from culturesafe_ext import __version__

    assert done.stdout.strip() == f"culturesafe {__version__}"
