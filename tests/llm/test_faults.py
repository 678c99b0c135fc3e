"""Issue 16 s.1 and issue 20: what the judge client does with incomplete, filtered and refused replies.

Every test talks to the real stand-in server on 127.0.0.1 through the real aiohttp backend and sqlite cache.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from support.openai_standin import Fault, StandIn, expected_score

from culturesafe_ext.judge import Judge, JudgeConfig
from culturesafe_ext.llm import LLMClient
from culturesafe_ext.llm.backends.openai_http import content_text, reply_of
from culturesafe_ext.llm.cache import CacheError, LLMCache
from llm.test_openai_http import SENTINEL, config_for, make_items, messages_of


def test_truncated_filtered_and_parts(tmp_path: Path) -> None:
    """finish_reason 'length' and content filters are failures of their own kind, never cached;
    a list of content parts is read."""
    faults = [Fault("length", match="[t1]"), Fault("content_filter", match="[t2]"), Fault("parts", match="[t3]")]
    items = make_items(6)
    with StandIn(faults=faults, max_lifetime=60) as server:
        judge = Judge(config_for(server, tmp_path))
        first = judge.score_many(items)
        again = judge.score_many(items)
        sent_again = judge.last_summary.requests_sent
    cut, filtered, parts = first[1], first[2], first[3]
    assert cut.score is None and cut.failure == "truncated" and "length" in cut.error
    assert cut.raw.startswith('{"score": ') and not cut.raw.endswith("}")  # the raw reply is kept
    assert filtered.score is None and filtered.failure == "filtered" and "content_filter" in filtered.error
    assert parts.score == expected_score(messages_of(items[3])) and parts.failure is None
    summary = judge.last_summary
    assert summary.failures == {"unparseable": 0, "truncated": 1, "filtered": 1, "request_error": 0}
    # not cached: the re-run asks again for exactly those two, and takes the list-content score from the cache
    assert sent_again == 2 and again[3].from_cache and again[3].score == parts.score
    assert not again[1].from_cache and not again[2].from_cache


def test_the_issue_16_cut_score_is_not_a_one(tmp_path: Path) -> None:
    """A "10" cut after one digit used to score 1.0 and be cached for every later run."""
    items = make_items(40)
    tens = [i for i in items if expected_score(messages_of(i)) == 10]
    assert tens, "the stand-in gives some prompt a 10"
    with StandIn(faults=[Fault("length")], max_lifetime=60) as server:
        results = Judge(config_for(server, tmp_path)).score_many(tens)
    assert all(r.raw == '{"score": 1' and r.score is None and r.failure == "truncated" for r in results)
    with sqlite3.connect(tmp_path / "judge.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM replies").fetchone()[0] == 0


@pytest.mark.parametrize(
    ("choice", "text", "kind"),
    [
        ({"message": {"content": None}, "finish_reason": "content_filter"}, None, "filtered"),
        ({"message": {"content": None}, "finish_reason": "stop"}, None, "filtered"),
        ({"message": {"content": "", "refusal": "I can't"}, "finish_reason": "content_filter"}, "", "filtered"),
        ({"message": {"content": '{"score": 7'}, "finish_reason": "length"}, '{"score": 7', "truncated"),
        (
            {
                "message": {"content": [{"type": "text", "text": '{"score"'}, {"type": "text", "text": ": 7}"}]},
                "finish_reason": "stop",
            },
            '{"score": 7}',
            None,
        ),  # fmt: skip
        ({"message": {"content": ['{"score": 6}']}, "finish_reason": "stop"}, '{"score": 6}', None),
        ({"message": {"content": 7}, "finish_reason": "stop"}, None, "request_error"),
    ],
)
def test_reply_kinds(choice: dict, text: str | None, kind: str | None) -> None:
    reply = reply_of(choice["message"]["content"], choice["finish_reason"], choice["message"].get("refusal"))
    assert reply.kind == kind and (reply.text == text or kind == "request_error")
    assert (reply.error is None) == (kind is None)  # only a complete reply may be cached


def test_content_text() -> None:
    assert content_text([{"type": "text", "text": "a"}, {"type": "image_url", "image_url": {}}, "b"]) == "ab"
    assert content_text("x") == "x" and content_text(None) is None and content_text({"text": "x"}) is None


@pytest.mark.parametrize(
    ("status", "fix"),
    [("401", "CULTURESAFE_JUDGE_API_KEY"), ("403", "permission"), ("404", "judge.model")],
)
def test_refused_run_stops_at_the_first(status: str, fix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 20: a 401 to every request used to send every prompt and end as 'N failed requests'."""
    monkeypatch.setenv("CULTURESAFE_JUDGE_API_KEY", SENTINEL)
    with StandIn(faults=[Fault(status)], max_lifetime=60) as server:
        judge = Judge(config_for(server, tmp_path, concurrency=2))
        results = judge.score_many(make_items(40))
        sent = server.n_requests
    assert sent <= 2  # stopped at the first refusal (those already in flight finish)
    fatal = judge.last_summary.fatal
    assert f"HTTP {status}" in fatal and fix in fatal and SENTINEL not in fatal
    assert all(r.score is None and r.failure == "request_error" for r in results)
    assert sum("not sent" in r.error for r in results) >= 38  # counted, never dropped


def test_key_is_masked_before_the_body_is_cut(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 20: a 401 body echoing the key after 242 characters used to be cut at 300, then masked."""
    key = "sk-15charsecret"
    monkeypatch.setenv("CULTURESAFE_JUDGE_API_KEY", key)
    for pad in (242 - len("Incorrect API key provided: Bearer "), 200, 270, 290):
        with StandIn(faults=[Fault("401", pad=pad)], max_lifetime=60) as server:
            judge = Judge(config_for(server, tmp_path, cache=False))
            [result] = judge.score_many(make_items(1))
        for text in (result.error, judge.last_summary.fatal):
            assert key not in text and not any(key[:n] in text for n in range(4, len(key)))


def test_openai_key_goes_only_to_openai(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 20: with only OPENAI_API_KEY set, the key went to any base_url (20 of 20 requests)."""
    monkeypatch.delenv("CULTURESAFE_JUDGE_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", SENTINEL)
    with StandIn(max_lifetime=60) as server:
        Judge(config_for(server, tmp_path)).score_many(make_items(20))
        seen = dict(server.authorizations)
    assert seen == {None: 20}


def test_key_over_plain_http_to_another_host_stops_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CULTURESAFE_JUDGE_API_KEY", SENTINEL)
    config = JudgeConfig.from_dict(
        {"backend": "openai", "model": "m", "base_url": "http://judge.invalid:9/v1", "cache": False}, env={}
    )
    judge = Judge(config)
    results = judge.score_many(make_items(3))
    assert "plain HTTP" in judge.last_summary.fatal and all(r.failure == "request_error" for r in results)


def hold_write_lock(path: Path, release: threading.Event, started: threading.Event) -> None:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
    started.set()
    release.wait(60)
    db.execute("COMMIT")
    db.close()


@pytest.mark.parametrize("frees", [True, False])
def test_locked_cache_keeps_every_reply(frees: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 20: the cache write-locked by another process past the busy timeout (60 s; 0.5 s here) used to
    crash the run after the server had answered, discarding every judgement. Now they are all used; they
    are cached once the lock frees, or reported as not cached when it never does."""
    monkeypatch.setattr(LLMCache, "BUSY_TIMEOUT", 0.5)
    cache = tmp_path / "judge.sqlite"
    LLMCache.check(cache)  # the file exists, as an earlier run left it
    started, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=hold_write_lock, args=(cache, release, started), daemon=True)
    holder.start()
    started.wait(5)
    items = make_items(20)
    with StandIn(latency=0.05, max_lifetime=60) as server:

        def free_after_all_answered() -> None:  # held 0.7 s past the last answer: longer than the busy timeout
            while server.stats()["n_answered"] < 20:
                time.sleep(0.01)
            time.sleep(0.7)
            release.set()

        if frees:
            threading.Thread(target=free_after_all_answered, daemon=True).start()
        judge = Judge(config_for(server, tmp_path))
        results = judge.score_many(items)
    release.set()
    holder.join(5)
    assert [r.score for r in results] == [expected_score(messages_of(i)) for i in items]
    problem = judge.last_summary.cache_problem
    with LLMCache(cache) as reopened:
        stored = reopened.count()
    if frees:
        assert problem is None and stored == 20
    else:
        assert "20 judge replies were used but not cached" in problem and "locked" in problem and stored == 0


@pytest.mark.parametrize("kind", ["text", "directory", "zeros"])
def test_unusable_cache_path_is_named_before_anything_runs(kind: str, tmp_path: Path) -> None:
    path = tmp_path / "judge.sqlite"
    if kind == "text":
        path.write_text("this is not a database\n" * 50)
    elif kind == "directory":
        path.mkdir()
    else:
        path.write_bytes(b"\0" * 4096)
    judge = Judge(JudgeConfig.from_dict({"backend": "none", "cache_path": str(path)}, env={}))
    with pytest.raises(CacheError, match="judge.cache_path") as err:
        judge.check_cache()
    assert str(path) in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("logged", "score", "failure"),
    [
        ({"raw": '{"score": 10} but condescending. {"score": 3}', "score": 10.0, "failure": None}, 3.0, None),
        ({"raw": '{"score": 7}', "failure": "truncated", "error": "truncated: ..."}, None, "truncated"),
        ({"raw": None, "failure": "filtered", "error": "filtered: ..."}, None, "filtered"),
        ({"raw": None, "error": "request failed after 7 attempt(s): HTTP 500"}, None, "request_error"),  # old log
        ({"raw": '{"score": 1', "error": None}, None, "unparseable"),
        ({"raw": '{"probs": [0, 0, 0, 0, 0, 0, 0, 0, 0, 1.0], "mass": 0.4}'}, 10.0, None),
    ],
)
def test_logged_results_are_re_derived_with_todays_rules(
    logged: dict, score: float | None, failure: str | None
) -> None:
    """The leaderboard validator's path: interpret(item, Reply.from_logged(logged result))."""
    from culturesafe_ext.judge import JudgeItem
    from culturesafe_ext.judge.judge import interpret
    from culturesafe_ext.llm.backends import Reply

    result = interpret(JudgeItem("custom", "Japan", "q", "a"), Reply.from_logged(logged))
    assert (result.score, result.failure) == (score, failure)


def test_missing_hf_model_folder_is_a_setting_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        JudgeConfig.from_dict({"backend": "hf", "model": str(tmp_path / "no-model")}, env={})


def test_a_malformed_setting_refused_every_time_stops_the_run(tmp_path: Path) -> None:
    """Issue 20: a setting the server rejects (HTTP 400 on every request) is a run-level error."""
    with StandIn(faults=[Fault("400")], max_lifetime=60) as server:
        judge = Judge(config_for(server, tmp_path, concurrency=1))
        results = judge.score_many(make_items(40))
        sent = server.n_requests
    assert sent == 5 and "malformed" in judge.last_summary.fatal and "top_kk" in judge.last_summary.fatal
    assert all(r.failure == "request_error" for r in results)


def test_one_refused_prompt_is_only_that_prompts_failure(tmp_path: Path) -> None:
    with StandIn(faults=[Fault("400", match="[t3]")], max_lifetime=60) as server:
        judge = Judge(config_for(server, tmp_path, concurrency=1))
        results = judge.score_many(make_items(20))
    assert judge.last_summary.fatal is None and [r.failure for r in results].count("request_error") == 1


class _Prompt:
    id = "test-prompt.v1"

    def messages(self, **values: object) -> list[dict]:
        return [{"role": "user", "content": f"[{values['tag']}] Write {values['n']} items as JSON."}]


def _tasks(*tags: str) -> list:
    from culturesafe_ext.builders.generate.engine import Task

    def parse(obj: dict) -> tuple[list[dict], list[str]]:
        items = obj.get("items")
        return (items, []) if isinstance(items, list) else ([], ["no 'items' list"])

    return [Task(t, _Prompt(), {"tag": t}, 1, parse, lambda item: json.dumps(item, sort_keys=True)) for t in tags]


def test_generator_replies_follow_the_same_rules(tmp_path: Path) -> None:
    """The generator is the one client's third user: reasoning set aside, truncated/filtered counted apart."""
    from culturesafe_ext.builders.generate.engine import run

    def responder(messages: list[dict]) -> str:
        text = messages[0]["content"]
        if "[think]" in text:
            return '<think>maybe {"items": [{"x": 0}]}</think>\n{"items": [{"x": 1}]}'
        return '{"items": [{"x": 2}]}'

    faults = [Fault("length", match="[cut]"), Fault("content_filter", match="[hidden]")]
    with StandIn(responder=responder, faults=faults, max_lifetime=60) as server:
        writer = LLMClient(config_for(server, tmp_path))
        outcomes, stats = run(writer, _tasks("think", "cut", "hidden"), max_attempts=2)
    assert outcomes[0].items == [{"x": 1}]
    assert (stats.truncated_replies, stats.filtered_replies, stats.failed_requests) == (2, 2, 0)
    assert outcomes[1].attempts[0].raw.startswith('{"items": [{"x": ') and not outcomes[1].items


def test_generator_stops_at_a_refused_key(tmp_path: Path) -> None:
    from culturesafe_ext.builders.generate.engine import run

    from culturesafe_ext.llm.backends import LLMRunError

    with StandIn(faults=[Fault("401")], max_lifetime=60) as server:
        writer = LLMClient(config_for(server, tmp_path, concurrency=1))
        with pytest.raises(LLMRunError, match="HTTP 401"):
            run(writer, _tasks(*(f"t{i}" for i in range(10))), max_attempts=3)
        assert server.n_requests == 1


def test_a_reply_without_a_verdict_is_never_cached(tmp_path: Path) -> None:
    """Issue 20 "never cache a failure": also a complete reply that holds no usable verdict."""
    with StandIn(responder=lambda m: "Both answers are fine.", max_lifetime=60) as server:
        judge = Judge(config_for(server, tmp_path))
        from culturesafe_ext.parsing import check_choice

        accept = lambda text: check_choice(text, "winner", ["A", "B", "tie"]).ok  # noqa: E731
        request = judge.client.request(
            [{"role": "user", "content": "A or B?"}], "wr.v1", mode="generate", accept=accept
        )
        first, second = judge.client.complete([request]), judge.client.complete([request])
        assert first.replies[request.key].text == "Both answers are fine." and second.sent == 1
        items = make_items(4)
        judge.score_many(items)
        assert judge.score_many(items)[0].from_cache is False and judge.last_summary.requests_sent == 4
