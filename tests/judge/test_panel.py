"""Token usage, cost and judge panels below the lm_eval CLI: settings, the panel, alpha, CulturaX usage."""

from __future__ import annotations

import json
from pathlib import Path

import krippendorff
import numpy as np
import pytest
from support.openai_standin import StandIn, expected_score, prompt_text

from culturesafe_ext.judge import Judge, JudgeConfig, JudgeItem
from culturesafe_ext.judge.panel import Panel, alpha, alpha_ci
from culturesafe_ext.judge.rubric import load_rubric
from culturesafe_ext.judge.settings import PanelConfig, judge_or_panel


def http(server: StandIn, model: str, cache: Path, **extra) -> dict:
    return {
        "backend": "openai",
        "model": model,
        "base_url": server.base_url,
        "cache_path": str(cache),
        "progress": False,
        **extra,
    }


def test_price_and_panel_settings_are_checked() -> None:
    base = {"backend": "openai", "model": "m", "base_url": "http://127.0.0.1:9/v1"}
    assert JudgeConfig.from_dict({**base, "price_per_million": {"input": 2, "output": 8}}, env={}).cost(
        1_000_000, 500_000
    ) == pytest.approx(6.0)
    assert JudgeConfig.from_dict(base, env={}).cost(10, 10) is None
    with pytest.raises(ValueError, match="price_per_million"):
        JudgeConfig.from_dict({**base, "price_per_million": {"prompt": 2}}, env={})
    with pytest.raises(ValueError, match="at least two judges"):
        PanelConfig.from_dict({"judges": [base]}, env={})
    with pytest.raises(ValueError, match="judges 1 and 2 of the panel are the same judge"):
        PanelConfig.from_dict({"judges": [base, dict(base)]}, env={})
    with pytest.raises(ValueError, match="judge 2 of the panel: .*needs a model"):
        PanelConfig.from_dict({"judges": [base, {"backend": "openai", "base_url": "http://x/v1"}]}, env={})
    with pytest.raises(ValueError, match="panel_aggregate"):
        PanelConfig.from_dict({"judges": [base, {**base, "model": "n"}], "panel_aggregate": "mode"}, env={})
    panel = judge_or_panel(
        json.dumps(
            {**base, "judges": [{}, {"model": "n"}], "cache_path": "/tmp/p.sqlite", "panel_aggregate": "median"}
        ),
        env={},
    )
    assert isinstance(panel, PanelConfig) and panel.aggregate == "median"
    assert [j.model for j in panel.judges] == ["m", "n"] and panel.judges[1].backend == "openai"  # shared settings
    assert all(j.cache_path == "/tmp/p.sqlite" for j in panel.judges)
    assert PanelConfig.from_dict(panel.to_dict(), env={}) == panel


def test_alpha_is_krippendorffs_and_undefined_cases_are_nan() -> None:
    units = [[1, 2], [5, 5], [9, 7], [3, None], [4, 6], [8, 8]]
    data = np.array([[np.nan if s is None else s for s in u] for u in units], dtype=float).T
    assert alpha(units) == pytest.approx(krippendorff.alpha(reliability_data=data, level_of_measurement="interval"))
    low, high = alpha_ci(units, n_boot=200, seed=3)
    assert low <= alpha(units) <= high and (low, high) == alpha_ci(units, n_boot=200, seed=3)  # seeded
    assert np.isnan(alpha([[5, 5], [5, 5]])) and np.isnan(alpha([[1, None], [2, 3]]))
    # an hf judge's probability-weighted scores: rounded half up to the 1..10 points (5,000 of them run)
    rng = np.random.default_rng(0)
    first = rng.uniform(1, 10, 5000)
    second = np.clip(first + rng.normal(0, 1, 5000), 1, 10)
    rounded = np.floor(np.array([first, second]) + 0.5)
    expected = krippendorff.alpha(reliability_data=rounded, level_of_measurement="interval")
    assert alpha([[x, y] for x, y in zip(first, second, strict=True)]) == pytest.approx(expected)
    assert alpha([[1.5, 2.49], [7.5, 8.0], [3.0, 3.0]]) == alpha([[2, 2], [8, 8], [3, 3]])


def other(messages: list[dict]) -> str:
    return json.dumps({"score": 11 - expected_score(messages)})


def test_panel_scores_every_item_with_every_judge_concurrently(tmp_path: Path) -> None:
    items = [JudgeItem(f"custom {i}", "Spain", f"q {i}", f"r {i}", "respectfulness") for i in range(5)]
    with StandIn(latency=0.2) as a, StandIn(latency=0.2, responder=other) as b:
        config = PanelConfig.from_dict(
            {"judges": [http(a, "a", tmp_path / "c.sqlite"), http(b, "b", tmp_path / "c.sqlite")]}, env={}
        )
        panel = Panel(config)
        results = panel.score_many(items)
        assert a.n_requests == 5 and b.n_requests == 5
        again = Panel(PanelConfig(judges=config.judges, aggregate="median")).score_many(items)
        assert a.n_requests == 5 and b.n_requests == 5  # cached per judge
    for item, result in zip(items, results, strict=True):
        rubric = load_rubric("respectfulness")
        first = expected_score(rubric.messages(item.custom, item.location, item.query, item.response))
        assert [r.score for r in result.judges] == [first, 11 - first]
        assert result.score == pytest.approx(5.5) and result.to_dict()["judges"][1]["usage"]["prompt_tokens"] > 0
    assert [s.requests_sent for s in panel.last_summaries] == [5, 5]
    assert all(r.score == pytest.approx(5.5) and r.judges[0].from_cache for r in again)


def culturax_responder(messages: list[dict]) -> str:
    text = prompt_text(messages)
    if "<ANSWER_A>" in text:
        return json.dumps({"winner": "A"})
    if '"unsafe"' in text:
        return '{"unsafe": false}'
    return '{"truthful": true, "informative": true}'


def test_culturax_usage_and_cost_per_doc_and_a_cached_rerun(tmp_path: Path) -> None:
    import culturesafe_ext.tasks.culturax as cx

    docs = [
        {"id": f"r{i}", "question": f"Question {i}?", "helpful": "h", "honest": "o", "wr_order": "model_first"}
        for i in range(3)
    ]
    resps = [["an answer"] for _ in docs]
    hhh = {"seed": 1, "wr_both_orders": False, "ss": "judge"}
    with StandIn(responder=culturax_responder) as server:
        settings = http(server, "m", tmp_path / "c.sqlite", price_per_million={"input": 3.0, "output": 15.0})
        first = cx.judge_answers(Judge(JudgeConfig.from_dict(settings, env={})), hhh, docs, resps)
        second = cx.judge_answers(Judge(JudgeConfig.from_dict(settings, env={})), hhh, docs, resps)
        assert server.n_requests == 9
    one, two = (
        [cx.process_results(d, [[json.dumps(e) for e in entries]]) for d, entries in zip(docs, run, strict=True)]
        for run in (first, second)
    )
    for a, b, entries in zip(one, two, first, strict=True):
        verdicts = [*entries[0]["wr"], entries[0]["ss"], entries[0]["ti"]]
        prompt = sum(v["usage"]["prompt_tokens"] for v in verdicts)
        completion = sum(v["usage"]["completion_tokens"] for v in verdicts)
        assert a["judge_prompt_tokens"] == prompt > 0 and a["judge_new_prompt_tokens"] == prompt
        assert a["judge_cost"] == pytest.approx((prompt * 3.0 + completion * 15.0) / 1e6)
        assert b["judge_prompt_tokens"] == prompt and b["judge_new_prompt_tokens"] == 0
        assert b["judge_new_completion_tokens"] == 0 and b["judge_cost"] == pytest.approx(a["judge_cost"])


def test_the_progress_bar_shows_tokens_per_second(tmp_path: Path, capsys) -> None:
    items = [JudgeItem(f"custom {i}", "Spain", f"q {i}", f"r {i}", "awareness") for i in range(3)]
    with StandIn() as server:
        judge = Judge(JudgeConfig.from_dict({**http(server, "m", tmp_path / "c.sqlite"), "progress": True}, env={}))
        judge.score_many(items)
    summary = judge.last_summary
    assert summary.prompt_tokens > 0 and summary.new_prompt_tokens == summary.prompt_tokens
    assert "tok/s" in capsys.readouterr().err
