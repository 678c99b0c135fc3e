"""The one module holding lm-eval's private internals: one version check that names every fallback."""

from __future__ import annotations

import pytest
from packaging.version import Version

from culturesafe_ext import plugin


@pytest.fixture
def fresh_check(monkeypatch: pytest.MonkeyPatch):
    from culturesafe_ext import lm_eval_internals as internals

    monkeypatch.setattr(internals, "_checked", False)
    return monkeypatch


def test_untested_version_warns_once_naming_each_internal_and_fallback(fresh_check, caplog) -> None:
    from culturesafe_ext import lm_eval_internals as internals

    fresh_check.setattr(plugin, "_lm_eval_version", lambda: Version("0.6.1"))
    with caplog.at_level("WARNING", logger="culturesafe"):
        assert internals.check_version() is False
        assert internals.check_version() is True  # once per process
    [record] = [r for r in caplog.records if "outside the versions" in r.getMessage()]
    message = record.getMessage()
    assert "lm-eval 0.6.1" in message and "0.4.13 to before 0.5.0" in message
    for name, fallback in internals.INTERNALS.items():
        assert f"{name}: {fallback}" in message
    assert "hf-router refuses --use_cache" in message and "./probe_stats" in message


def test_tested_version_is_silent(fresh_check, caplog) -> None:
    from culturesafe_ext import lm_eval_internals as internals

    fresh_check.setattr(plugin, "_lm_eval_version", lambda: Version("0.4.13"))
    with caplog.at_level("WARNING", logger="culturesafe"):
        assert internals.check_version() is True
    assert not caplog.records


def test_hflm_row_and_padding_are_what_hflm_feeds_the_model(tiny_model) -> None:
    """The row formula and the right padding, checked on HFLM itself (what hf-probe relies on)."""
    import torch
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    from culturesafe_ext import lm_eval_internals as internals

    lm = HFLM(pretrained=str(tiny_model), device="cpu", dtype="float32", batch_size=4, max_length=12)
    seen: list[list[int]] = []
    original = lm._model_call

    def spy(inps: torch.Tensor, attn_mask=None, labels=None) -> torch.Tensor:
        seen.extend(inps.tolist())
        return original(inps, attn_mask=attn_mask, labels=labels)

    lm._model_call = spy
    texts = [("a short one", " yes"), ("a much longer context that will be cut to the window", " no it is not")]
    lm.loglikelihood([Instance("loglikelihood", {}, t, i, ("t", i, 1)) for i, t in enumerate(texts)])
    expected = {
        internals.hflm_row(*lm._encode_pair(context, continuation), lm.max_length) for context, continuation in texts
    }
    assert {tuple(row[: internals.unpadded_length(row)]) for row in seen} == expected
    assert any(len(row) > internals.unpadded_length(row) for row in seen)  # the shorter row was padded with 0
