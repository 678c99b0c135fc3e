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
    assert config.api_key() is None  # OPENAI_API_KEY goes to OpenAI's host only (issue 20)
    assert JudgeConfig.from_dict({**OPENAI, "base_url": "https://api.openai.com/v1"}).api_key() == "sk-fallback"
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


# Issue 20, "Fail fast": settings are validated up front, one line naming the setting.
@pytest.mark.parametrize(
    ("extra", "match"),
    [
        ({"timeout": "fast"}, "'timeout' must be float"),
        ({"timeout": 0}, "'timeout' must be > 0"),
        ({"timeout": -1.5}, "'timeout' must be > 0"),
        ({"concurrency": "64"}, "'concurrency' must be int"),
        ({"concurrency": 2.5}, "'concurrency' must be int"),
        ({"max_retries": True}, "'max_retries' must be int"),
        ({"cache": "no"}, "'cache' must be bool"),
        ({"extra_body": "top_k=3"}, "'extra_body' must be a JSON object"),
        ({"model": 7}, "'model' must be str"),
        ({"max_tokens": 0}, "'max_tokens' must be > 0"),
        ({"temperature": -0.1}, "'temperature' must be >= 0"),
        ({"base_url": "localhost:8000/v1"}, "'base_url' must be an http"),
        ({"base_url": "http://127.0.0.1:port/v1"}, "'base_url' is not a URL"),
        ({"timeout": float("nan")}, "'timeout' must be a finite number, not nan"),
        ({"retry_wait_max": float("inf")}, "'retry_wait_max' must be a finite number, not inf"),
        ({"batch_max_wait": float("-inf")}, "'batch_max_wait' must be a finite number"),
        ({"price_per_million": {"input": float("nan")}}, "price_per_million must be"),
    ],
)
def test_settings_are_typed(extra: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match) as err:
        JudgeConfig.from_dict({**OPENAI, **extra}, env={})
    assert "\n" not in str(err.value)


def test_nan_from_the_environment_is_refused() -> None:
    with pytest.raises(ValueError, match="'temperature' must be a finite number"):
        JudgeConfig.from_dict(OPENAI, env={"CULTURESAFE_JUDGE_TEMPERATURE": "nan"})


def test_only_the_judge_reads_the_environment() -> None:
    """The generator's and the DPO recipe's settings (plain LLMConfig) never pick up CULTURESAFE_JUDGE_*."""
    from culturesafe_ext.llm import LLMConfig, LLMSettingError

    env = {"CULTURESAFE_JUDGE_MODEL": "judge-model", "CULTURESAFE_JUDGE_CONCURRENCY": "3"}
    writer = LLMConfig.from_dict(OPENAI, env=env)
    assert (writer.model, writer.concurrency) == ("qwen3-max", 32) and "rubric_version" not in writer.to_dict()
    assert JudgeConfig.from_dict({**OPENAI, "model": None}, env=env).concurrency == 3
    with pytest.raises(LLMSettingError, match=r"unknown LLM setting\(s\) \['rubric_version'\]"):
        LLMConfig.from_dict({**OPENAI, "rubric_version": "v2"})
    with pytest.raises(LLMSettingError, match="no LLM backend named"):
        LLMConfig.from_dict({}, env={"CULTURESAFE_JUDGE_BACKEND": "openai"})


def test_metadata_judge_json_errors_name_the_setting() -> None:
    with pytest.raises(ValueError, match="metadata .judge. is not valid JSON"):
        JudgeConfig.from_metadata({"judge": '{"backend": "openai", '}, env={})
    with pytest.raises(ValueError, match="must be a dict"):
        JudgeConfig.from_metadata({"judge": 3}, env={})


# Issue 20, "Leak nothing": a secret is refused wherever a setting can carry one.
@pytest.mark.parametrize(
    ("extra", "where"),
    [
        ({"base_url": f"https://judge.example.com/v1?api_key={SENTINEL}"}, "query parameter 'api_key'"),
        ({"base_url": f"https://judge.example.com/v1?key={SENTINEL}"}, "query parameter 'key'"),
        ({"base_url": f"https://judge.example.com/v1?foo=1&access_token={SENTINEL}"}, "'access_token'"),
        ({"base_url": f"https://user:{SENTINEL}@judge.example.com/v1"}, "user:password@"),
        ({"extra_body": {"headers": {"Authorization": f"Bearer {SENTINEL}"}}}, "extra_body.headers.Authorization"),
        ({"extra_body": {"api_key": SENTINEL}}, "extra_body.api_key"),
        ({"extra_body": {"options": [{"hfToken": "hf_abc"}]}}, "extra_body.options[0].hfToken"),
        ({"extra_body": {"note": SENTINEL}}, "extra_body.note"),  # a key-shaped value under any name
        ({"x_api_key": SENTINEL}, "judge.x_api_key"),
    ],
)
def test_secrets_refused_at_any_depth(extra: dict, where: str) -> None:
    with pytest.raises(ValueError, match="secret-looking") as err:
        JudgeConfig.from_dict({**OPENAI, **extra}, env={})
    assert where in str(err.value) and SENTINEL not in str(err.value)


def test_harmless_names_are_not_secrets() -> None:
    body = {"max_tokens": 8, "top_k": 3, "chat_template_kwargs": {"enable_thinking": False}}
    url = "https://x.org/v1?api-version=2024"
    config = JudgeConfig.from_dict({**OPENAI, "extra_body": body, "base_url": url}, env={})
    assert config.extra_body == body


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("http://127.0.0.1:8000/v1", True),
        ("http://localhost:8000/v1", True),
        ("http://[::1]:8000/v1", True),
        ("https://judge.example.com/v1", True),
        ("http://judge.example.com/v1", False),
        ("http://10.0.0.5:8000/v1", False),
    ],
)
def test_key_never_over_plain_http_to_another_host(url: str, allowed: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CULTURESAFE_JUDGE_API_KEY", SENTINEL)
    config = JudgeConfig.from_dict({**OPENAI, "base_url": url}, env={})
    if allowed:
        assert config.api_key() == SENTINEL
    else:
        with pytest.raises(ValueError, match="plain HTTP") as err:
            config.api_key()
        assert SENTINEL not in str(err.value)
    monkeypatch.delenv("CULTURESAFE_JUDGE_API_KEY")
    assert config.api_key() is None  # no key: plain HTTP is fine


@pytest.mark.parametrize("name", ["pad_token", "pad_token_id", "eos_token", "max_tokens", "tokenizer", "session_name"])
def test_tokenizer_words_are_not_secrets(name: str) -> None:
    from culturesafe_ext.llm.settings import find_secrets

    assert find_secrets({name: "<pad>", "n": {name: 2}}, "metadata") == []


def test_url_signature_is_a_secret() -> None:
    with pytest.raises(ValueError, match="query parameter 'sig'"):
        JudgeConfig.from_dict({**OPENAI, "base_url": "https://x.blob.example/v1?sv=2024&sig=abc%2Bdef"}, env={})


def test_public_settings_is_the_one_filter_for_files() -> None:
    """Reports, manifests and cards write settings through one filter: secret names and values go, at any depth."""
    from culturesafe_ext.judge.settings import IDENTITY_KEYS
    from culturesafe_ext.llm.settings import public_settings

    settings = {
        "backend": "openai",
        "model": "m",
        "api_key": "sk-should-never-appear-1234567890",
        "extra_body": {"headers": {"X-Api-Key": "abc"}, "top_k": 5},
        "base_url": "http://127.0.0.1:8000/v1?api_key=sk-abcdefghijklmnopqrstuv",
        "note": "Bearer abcdefghijklmnop",
        "max_tokens": 16,
    }
    public = public_settings(settings)
    assert public == {"backend": "openai", "model": "m", "extra_body": {"headers": {}, "top_k": 5}, "max_tokens": 16}
    assert public_settings(settings, IDENTITY_KEYS) == {"backend": "openai", "model": "m"}
