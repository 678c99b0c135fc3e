"""The plugin's guards in process: an unknown lm-eval shape or an untested version warns instead of crashing."""

from __future__ import annotations

import logging
import types

from culturesafe_ext import plugin


def test_unknown_lm_eval_shape_warns_instead_of_crashing(caplog) -> None:
    fake = types.ModuleType("lm_eval.tasks._index")
    fake.__file__ = "/nowhere/_index.py"
    with caplog.at_level(logging.WARNING, logger="culturesafe"):
        plugin.extend_task_index(fake)
    assert "--include_path" in caplog.text and str(plugin.tasks_dir()) in caplog.text


def test_untested_version_warns(monkeypatch, caplog) -> None:
    monkeypatch.setattr(plugin, "_lm_eval_version", lambda: (0, 9, 0))
    with caplog.at_level(logging.WARNING, logger="culturesafe"):
        plugin._warn_if_untested()
    assert "lm-eval 0.9.0 is outside the versions" in caplog.text
