"""The judge's identity (issue 28 item 2, issue 27 item 2): one definition that caches, panels and cards
compare; extra_body cannot change the judge behind it; structured output is sent, cached and identified."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.openai_standin import StandIn, expected_score

from culturesafe_ext.analysis.calibrate import card_for
from culturesafe_ext.judge import Judge, JudgeConfig, JudgeItem
from culturesafe_ext.judge.rubric import load_rubric
from culturesafe_ext.judge.settings import IDENTITY_FIELDS, OPERATIONAL_FIELDS, PanelConfig, identity
from culturesafe_ext.llm.cache import cache_key
from culturesafe_ext.llm.settings import RESERVED_BODY_KEYS, LLMConfig, LLMSettingError

BASE = {"backend": "openai", "model": "m", "base_url": "http://127.0.0.1:9/v1"}
DIMS = ("respectfulness", "awareness")
ITEMS = [JudgeItem(f"custom {i}", "Japan", f"query {i}", f"answer {i}", DIMS[i % 2]) for i in range(4)]


@pytest.fixture
def server() -> Iterator[StandIn]:
    with StandIn(max_requests=2000, max_lifetime=120) as standin:
        yield standin


def judge_on(server: StandIn, tmp_path: Path, **extra: object) -> Judge:
    values = {**BASE, "base_url": server.base_url, "cache_path": str(tmp_path / "j.sqlite"), "progress": False}
    return Judge(JudgeConfig.from_dict({**values, **extra}, env={}))


def test_every_setting_is_either_identity_or_operational() -> None:
    """A new setting must be classified: unclassified, it would silently not be part of what the judge is."""
    fields = set(JudgeConfig.model_fields)
    assert fields == set(IDENTITY_FIELDS) | set(OPERATIONAL_FIELDS)
    assert not set(IDENTITY_FIELDS) & set(OPERATIONAL_FIELDS)


@pytest.mark.parametrize(
    ("change", "same"),
    [
        ({"temperature": 0.7}, False),
        ({"top_p": 0.9}, False),
        ({"max_tokens": 256}, False),
        ({"seed": 3}, False),
        ({"extra_body": {"top_k": 5}}, False),
        ({"structured": True}, False),
        ({"both_dimensions_in_one_call": True}, False),
        ({"rubric_version": "v2"}, False),
        ({"model": "other"}, False),
        ({"base_url": "https://judge.example.com/v1"}, True),
        ({"timeout": 5.0, "concurrency": 2, "max_retries": 0}, True),
        ({"cache_path": "/tmp/elsewhere.sqlite", "progress": False}, True),
    ],
)
def test_identity_is_what_changes_the_verdict(change: dict, same: bool) -> None:
    one = JudgeConfig.from_dict(BASE, env={}).to_dict()
    other = JudgeConfig.from_dict({**BASE, **change}, env={}).to_dict()
    assert (identity(one) == identity(other)) is same


def test_old_logged_settings_read_their_missing_fields_as_defaults() -> None:
    logged = {"backend": "openai", "model": "m", "rubric_version": "v1", "temperature": 0.0, "max_tokens": 64}
    assert identity(logged) == identity(JudgeConfig.from_dict(BASE, env={}).to_dict())


def test_a_panel_is_its_members_and_its_aggregate() -> None:
    values = {**BASE, "judges": [{"model": "a"}, {"model": "b"}]}
    mean = PanelConfig.from_dict(values, env={}).to_dict()
    median = PanelConfig.from_dict({**values, "panel_aggregate": "median"}, env={}).to_dict()
    hotter = PanelConfig.from_dict({**values, "judges": [{"model": "a"}, {"model": "b", "top_p": 0.5}]}, env={})
    assert identity(mean)["judges"][0]["model"] == "a" and identity(mean) != identity(median)
    assert identity(mean) != identity(hotter.to_dict())
    with pytest.raises(LLMSettingError, match="judges 1 and 2 of the panel are the same judge"):
        PanelConfig.from_dict({**BASE, "judges": [{"model": "a"}, {"model": "a", "timeout": 3.0}]}, env={})
    PanelConfig.from_dict({**BASE, "judges": [{"model": "a"}, {"model": "a", "structured": True}]}, env={})


def test_judge_cards_match_on_the_whole_identity() -> None:
    settings = JudgeConfig.from_dict(BASE, env={}).to_dict()
    card = {"judge": {**settings, "base_url": "https://elsewhere/v1"}}
    assert card_for(settings, [(Path("c.json"), card)]) is not None
    longer = {"judge": {**settings, "max_tokens": 512}}
    assert card_for(settings, [(Path("c.json"), longer)]) is None


@pytest.mark.parametrize("key", RESERVED_BODY_KEYS)
def test_extra_body_may_not_set_the_requests_own_fields(key: str) -> None:
    with pytest.raises(LLMSettingError, match=f"'extra_body' may not set {key!r}"):
        JudgeConfig.from_dict({**BASE, "extra_body": {key: 0.5}}, env={})
    with pytest.raises(LLMSettingError, match=f"may not set {key!r}"):
        LLMConfig.from_dict({**BASE, "extra_body": {key: 0.5}}, env={})


def test_extra_body_temperature_is_refused_and_the_real_setting_is_sent(server: StandIn, tmp_path: Path) -> None:
    with pytest.raises(LLMSettingError, match="use the judge setting 'temperature'"):
        JudgeConfig.from_dict({**BASE, "extra_body": {"temperature": 0.7}}, env={})
    judge = judge_on(server, tmp_path, temperature=0.7, top_p=0.5, seed=11, extra_body={"top_k": 4})
    results = judge.score_many(ITEMS[:1])
    assert results[0].score is not None
    [body] = server.bodies
    assert (body["temperature"], body["top_p"], body["seed"], body["top_k"], body["model"]) == (0.7, 0.5, 11, 4, "m")
    assert "response_format" not in body
    assert judge.config.to_dict()["temperature"] == 0.7  # what the samples log is what was sent
    with pytest.raises(LLMSettingError, match="may not set 'top_p'"):
        JudgeConfig.from_dict({**BASE, "top_p": 0.5, "extra_body": {"top_p": 0.9}}, env={})


def test_cache_keys_of_runs_made_before_top_p_and_seed_are_unchanged(tmp_path: Path) -> None:
    judge = Judge(JudgeConfig.from_dict({**BASE, "cache_path": str(tmp_path / "c.sqlite")}, env={}))
    item = ITEMS[0]
    rubric = load_rubric(item.dimension)
    messages = rubric.messages(item.custom, item.location, item.query, item.response)
    before = cache_key("openai", "m", rubric.id, messages, {"temperature": 0.0, "max_tokens": 64, "extra_body": {}})
    assert judge.requests_for([item])[0].key == before
    seeded = Judge(JudgeConfig.from_dict({**BASE, "seed": 1, "cache_path": str(tmp_path / "c.sqlite")}, env={}))
    assert seeded.requests_for([item])[0].key != before


@pytest.mark.parametrize("combined", [False, True])
def test_structured_sends_the_verdicts_schema_and_is_part_of_key_and_identity(
    server: StandIn, tmp_path: Path, combined: bool
) -> None:
    plain = judge_on(server, tmp_path, both_dimensions_in_one_call=combined)
    structured = judge_on(server, tmp_path, both_dimensions_in_one_call=combined, structured=True)
    assert [r.key for r in plain.requests_for(ITEMS)] != [r.key for r in structured.requests_for(ITEMS)]
    results = structured.score_many(ITEMS)
    assert all(r.score is not None for r in results)
    body = server.bodies[0]
    schema = body["response_format"]
    assert schema["type"] == "json_schema" and schema["json_schema"]["strict"] is True
    properties = schema["json_schema"]["schema"]["properties"]
    keys = ["respectfulness", "awareness"] if combined else ["score"]
    assert list(properties) == keys and schema["json_schema"]["schema"]["required"] == keys
    assert all(p == {"type": "integer", "enum": list(range(1, 11))} for p in properties.values())
    # a cached plain reply is not a structured one: the plain judge asks again
    sent = server.n_requests
    plain.score_many(ITEMS)
    assert server.n_requests > sent and all("response_format" not in b for b in server.bodies[sent:])
    assert identity(plain.config.to_dict()) != identity(structured.config.to_dict())
    assert json.loads(json.dumps(structured.config.to_dict()))["structured"] is True


def test_structured_does_not_make_a_truncated_reply_a_verdict(tmp_path: Path) -> None:
    from support.openai_standin import Fault

    with StandIn(faults=[Fault("length")], max_lifetime=60) as server:
        results = judge_on(server, tmp_path, structured=True).score_many(ITEMS[:2])
    assert [r.failure for r in results] == ["truncated", "truncated"]


def test_structured_needs_a_generating_judge() -> None:
    with pytest.raises(LLMSettingError, match="structured needs a generating judge"):
        JudgeConfig.from_dict({"backend": "hf", "model": "some/hub-id", "structured": True}, env={})


def test_the_standin_answers_what_the_judge_expects(server: StandIn, tmp_path: Path) -> None:
    item = ITEMS[0]
    result = judge_on(server, tmp_path, structured=True).score(item)
    rubric = load_rubric(item.dimension)
    assert result.score == expected_score(rubric.messages(item.custom, item.location, item.query, item.response))
