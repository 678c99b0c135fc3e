"""Judge settings from metadata and env vars; the API key stays out of every serialised form."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from culturesafe_ext.judge import JudgeConfig, JudgeNotConfiguredError

SENTINEL = "sk-SENTINEL-c0ffee-do-not-write-me"
OPENAI = {"backend": "openai", "model": "qwen3-max", "base_url": "http://127.0.0.1:9/v1"}


def test_from_dict_defaults() -> None:
    config = JudgeConfig.from_dict(OPENAI, env={})
    assert (config.backend, config.model, config.concurrency) == ("openai", "qwen3-max", 32)
    assert config.temperature == 0.0
    assert config.rubric_version == "v1" and not config.both_dimensions_in_one_call


def test_env_is_overlaid_by_metadata() -> None:
    env = {
        "CULTURESAFE_JUDGE_BACKEND": "openai",
        "CULTURESAFE_JUDGE_MODEL": "from-env",
        "CULTURESAFE_JUDGE_BASE_URL": "http://env/v1",
        "CULTURESAFE_JUDGE_CONCURRENCY": "256",
        "CULTURESAFE_JUDGE_TIMEOUT": "2.5",
        "CULTURESAFE_JUDGE_BOTH_DIMENSIONS_IN_ONE_CALL": "true",
        "CULTURESAFE_JUDGE_EXTRA_BODY": '{"chat_template_kwargs": {"enable_thinking": false}}',
    }
    from_env = JudgeConfig.from_dict(None, env=env)
    assert from_env.model == "from-env" and from_env.concurrency == 256 and from_env.timeout == 2.5
    assert from_env.both_dimensions_in_one_call is True
    assert from_env.extra_body == {"chat_template_kwargs": {"enable_thinking": False}}
    overlaid = JudgeConfig.from_dict({"model": "from-metadata", "concurrency": 8}, env=env)
    assert overlaid.model == "from-metadata" and overlaid.concurrency == 8 and overlaid.base_url == "http://env/v1"


def test_from_metadata_forms() -> None:
    assert JudgeConfig.from_metadata({"judge": OPENAI}, env={}).model == "qwen3-max"
    assert JudgeConfig.from_metadata({"judge": json.dumps(OPENAI)}, env={}).model == "qwen3-max"
    assert JudgeConfig.from_metadata({"judge": "none", "other_task_key": 1}, env={}).backend == "none"
    with pytest.raises(ValueError, match="must be a dict"):
        JudgeConfig.from_metadata({"judge": 3}, env={})


def test_no_judge_says_how_to_set_one() -> None:
    for metadata in (None, {}, {"judge": {}}, {"culturesafe_data": "bundled"}):
        with pytest.raises(JudgeNotConfiguredError) as err:
            JudgeConfig.from_metadata(metadata, env={})
        message = str(err.value)
        assert "--metadata" in message and '"backend": "openai"' in message
        assert "CULTURESAFE_JUDGE_BACKEND" in message and "CULTURESAFE_JUDGE_API_KEY" in message
        assert '{"judge": {"backend": "none"}}' in message


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ({"backend": "gpt"}, "not one of"),
        ({"backend": "openai", "model": "m"}, "base_url"),
        ({"backend": "hf"}, "needs a model"),
        ({"backend": "hf", "model": "m", "both_dimensions_in_one_call": True}, "openai"),
        ({**OPENAI, "concurency": 4}, "unknown judge setting"),
        ({**OPENAI, "concurrency": 0}, ">= 1"),
        ({**OPENAI, "api_key": SENTINEL}, "only from the environment"),
        ({**OPENAI, "openai_api_key": SENTINEL}, "only from the environment"),
    ],
)
def test_invalid(values: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match) as err:
        JudgeConfig.from_dict(values, env={})
    assert SENTINEL not in str(err.value)


def test_bad_env_value() -> None:
    with pytest.raises(ValueError, match="CULTURESAFE_JUDGE_CONCURRENCY"):
        JudgeConfig.from_dict(OPENAI, env={"CULTURESAFE_JUDGE_CONCURRENCY": "many"})


def test_key_only_from_env_and_never_serialised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("CULTURESAFE_JUDGE_API_KEY", raising=False)
    config = JudgeConfig.from_dict(OPENAI)
    assert config.api_key() is None
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fallback")
    assert config.api_key() == "sk-fallback"
    monkeypatch.setenv("CULTURESAFE_JUDGE_API_KEY", SENTINEL)
    assert config.api_key() == SENTINEL
    config = JudgeConfig.from_dict(OPENAI)  # built while the key is set
    for text in (repr(config), str(config), json.dumps(config.to_dict()), str(vars(config))):
        assert SENTINEL not in text


def test_cache_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CULTURESAFE_CACHE_DIR", str(tmp_path / "cache"))
    assert JudgeConfig.from_dict(OPENAI).resolved_cache_path() == tmp_path / "cache" / "judge.sqlite"
    explicit = JudgeConfig.from_dict({**OPENAI, "cache_path": str(tmp_path / "j.sqlite")})
    assert explicit.resolved_cache_path() == tmp_path / "j.sqlite"


def test_round_trip_through_a_dict() -> None:
    """A task can carry the settings to its filter as plain data (the docs) and rebuild them there."""
    config = JudgeConfig.from_dict({**OPENAI, "concurrency": 128, "extra_body": {"top_p": 1}}, env={})
    assert JudgeConfig.from_dict(json.loads(json.dumps(config.to_dict())), env={}) == config
