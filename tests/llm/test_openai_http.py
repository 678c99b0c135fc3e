"""The openai backend against the real stand-in server: scores, faults, cache, resume, secrets."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.openai_standin import Fault, StandIn, expected_score

from culturesafe_ext.judge import Judge, JudgeConfig, JudgeItem
from culturesafe_ext.judge.rubric import load_rubric

SENTINEL = "sk-SENTINEL-5ec2e7-never-on-disk"


def make_items(n: int, tag: str = "t") -> list[JudgeItem]:
    return [
        JudgeItem(
            custom=f"Custom {i % 7}: guests remove their shoes.",
            location="Japan",
            query=f"[{tag}{i}] Why is taking off shoes silly?",
            response=f"Answer {i}: it keeps the floor clean.",
            dimension=("respectfulness", "awareness")[i % 2],
        )
        for i in range(n)
    ]


def messages_of(item: JudgeItem, rubric: str | None = None) -> list[dict]:
    return load_rubric(rubric or item.dimension).messages(item.custom, item.location, item.query, item.response)


def config_for(server: StandIn, tmp_path: Path, **overrides: object) -> JudgeConfig:
    values = {
        "backend": "openai",
        "model": "standin",
        "base_url": server.base_url,
        "concurrency": 16,
        "timeout": 0.5,
        "max_retries": 3,
        "retry_wait_initial": 0.01,
        "retry_wait_max": 2.0,
        "cache_path": str(tmp_path / "judge.sqlite"),
        "progress": False,
        **overrides,
    }
    return JudgeConfig.from_dict(values, env={})


@pytest.fixture
def server() -> Iterator[StandIn]:
    with StandIn(latency=0.01, max_requests=5000, max_lifetime=120) as standin:
        yield standin


def test_scores_in_input_order(server: StandIn, tmp_path: Path) -> None:
    items = make_items(40)
    judge = Judge(config_for(server, tmp_path))
    results = judge.score_many(items)
    assert [r.score for r in results] == [expected_score(messages_of(i)) for i in items]
    assert [r.dimension for r in results] == [i.dimension for i in items]
    assert all(r.parse_ok and r.error is None and not r.from_cache for r in results)
    summary = judge.last_summary
    assert (summary.n, summary.n_scored, summary.requests_sent, summary.n_cached) == (40, 40, 40, 0)
    assert server.n_requests == 40


def test_faults_lose_nothing_and_count_everything(tmp_path: Path) -> None:
    faults = [
        Fault("429", match="[t0]", first_n=2),  # transient: retried, then scored
        Fault("500", match="[t1]", first_n=1),
        Fault("drop", match="[t2]", first_n=1),
        Fault("timeout", match="[t3]", first_n=1),
        Fault("garbage", match="[t4]", first_n=2),
        Fault("500", match="[t5]"),  # permanent: retries run out -> failed request
        Fault("garbage", match="[t6]"),
        Fault("drop", match="[t7]"),
        Fault("out_of_range", match="[t8]"),  # the judge answered badly -> parse failure, raw kept
        Fault("prose", match="[t9]"),
        Fault("500", rate=0.2, first_n=1),  # and a fifth of all first attempts fail at random
    ]
    items = make_items(60)
    with StandIn(latency=0.01, faults=faults, hang_seconds=1.5, max_lifetime=120) as server:
        judge = Judge(config_for(server, tmp_path))
        results = judge.score_many(items)
        served = dict(server.faults_served)
    assert len(results) == len(items)
    by_tag = {item.query.split("]")[0] + "]": r for item, r in zip(items, results, strict=True)}
    for tag in ("[t0]", "[t1]", "[t2]", "[t3]", "[t4]"):
        item = items[int(tag[2:-1])]
        assert by_tag[tag].score == expected_score(messages_of(item)), by_tag[tag]
    for tag in ("[t5]", "[t6]", "[t7]"):
        assert by_tag[tag].failed_request and by_tag[tag].score is None
        assert "after 4 attempt(s)" in by_tag[tag].error
    assert "HTTP 500" in by_tag["[t5]"].error and "malformed" in by_tag["[t6]"].error
    assert by_tag["[t8]"].failed_parse and by_tag["[t8]"].raw == '{"score": 42}'
    assert by_tag["[t9]"].failed_parse and "respectful" in by_tag["[t9]"].raw
    summary = judge.last_summary
    assert (summary.n, summary.n_failed_request, summary.n_failed_parse, summary.n_scored) == (60, 3, 2, 55)
    assert summary.n_scored + summary.n_failed_request + summary.n_failed_parse == summary.n
    for i, (item, result) in enumerate(zip(items, results, strict=True)):
        if i >= 10:
            assert result.score == expected_score(messages_of(item))
    assert served.get("500", 0) > 4  # the random faults did fire
    # failures are never cached (issue 20): a re-run retries exactly the three failed requests and the two
    # unparseable replies, the rest come from the cache
    with StandIn(latency=0.01, max_lifetime=60) as healthy:
        again = Judge(config_for(healthy, tmp_path)).score_many(items)
        assert healthy.n_requests == 5
    assert sum(r.from_cache for r in again) == 55
    assert all(r.score is not None for r in again)


def test_retry_after_is_honoured(tmp_path: Path) -> None:
    with StandIn(faults=[Fault("429", first_n=1, retry_after=1)], max_lifetime=60) as server:
        started = time.monotonic()
        result = Judge(config_for(server, tmp_path, timeout=5)).score(make_items(1)[0])
        elapsed = time.monotonic() - started
    assert result.score is not None and server.n_requests == 2
    assert elapsed >= 1.0


def test_cache_rerun_sends_nothing(server: StandIn, tmp_path: Path) -> None:
    items = make_items(30)
    first = Judge(config_for(server, tmp_path)).score_many(items)
    server.reset()
    judge = Judge(config_for(server, tmp_path))
    second = judge.score_many(items)
    assert server.n_requests == 0 and judge.last_summary.requests_sent == 0
    assert all(r.from_cache for r in second) and judge.last_summary.n_cached == 30
    assert [r.score for r in second] == [r.score for r in first]
    # a different judge model, rubric version or sampling parameter is a different cache entry
    changed = Judge(config_for(server, tmp_path, temperature=0.7)).score_many(items[:5])
    assert server.n_requests == 5 and not any(r.from_cache for r in changed)


def test_identical_prompts_are_sent_once(server: StandIn, tmp_path: Path) -> None:
    item = make_items(1)[0]
    results = Judge(config_for(server, tmp_path, cache=False)).score_many([item] * 5)
    assert server.n_requests == 1 and len({r.score for r in results}) == 1 and len(results) == 5


def test_both_dimensions_in_one_call(server: StandIn, tmp_path: Path) -> None:
    base = make_items(10)
    items = [
        JudgeItem(i.custom, i.location, i.query, i.response, d) for i in base for d in ("awareness", "respectfulness")
    ]
    judge = Judge(config_for(server, tmp_path, both_dimensions_in_one_call=True))
    results = judge.score_many(items)
    assert server.n_requests == 10
    for item, result in zip(items, results, strict=True):
        assert result.score == expected_score(messages_of(item, "both"), item.dimension)


@pytest.mark.parametrize("concurrency", [3, 10])
def test_concurrency_limit_is_kept(concurrency: int, tmp_path: Path) -> None:
    """The server sees exactly ``concurrency`` requests at once at the peak: the limit is used and never exceeded."""
    with StandIn(latency=0.3, max_lifetime=60) as server:
        results = Judge(config_for(server, tmp_path, concurrency=concurrency, timeout=5)).score_many(make_items(24))
        assert server.max_in_flight == concurrency and server.in_flight == 0
    assert len(results) == 24 and all(r.error is None for r in results)


def test_works_inside_a_running_event_loop(server: StandIn, tmp_path: Path) -> None:
    async def in_a_notebook() -> list:
        return Judge(config_for(server, tmp_path)).score_many(make_items(3))

    assert all(r.score is not None for r in asyncio.run(in_a_notebook()))


def test_backend_none_judges_nothing(tmp_path: Path) -> None:
    judge = Judge(JudgeConfig.from_dict({"backend": "none"}, env={}))
    results = judge.score_many(make_items(4))
    assert all(r.score is None and r.skipped and not r.failed_request for r in results)
    assert judge.last_summary.n_skipped == 4 and judge.last_summary.n_failed_request == 0


def test_api_key_is_sent_but_never_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CULTURESAFE_JUDGE_API_KEY", SENTINEL)
    log_file = tmp_path / "judge.log"
    handler = logging.FileHandler(log_file)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        faults = [
            Fault("500", match="[t1]"),
            Fault("prose", match="[t2]"),
            Fault("401", match="[t3]"),  # its body echoes the key
            Fault("429", rate=0.3, first_n=1),
        ]
        with StandIn(latency=0.01, faults=faults, max_lifetime=60) as server:
            judge = Judge(config_for(server, tmp_path, progress=True))
            results = judge.score_many(make_items(20))
            seen = dict(server.authorizations)
        printed = capfd.readouterr()
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        handler.close()
    assert seen == {f"Bearer {SENTINEL}": sum(seen.values())}  # sent with every request
    assert "HTTP 401" in results[3].error and "[API key]" in results[3].error
    assert "after 1 attempt(s)" in results[3].error  # a 401 is not retried ...
    fatal = judge.last_summary.fatal  # ... it stops the run, saying how to fix it
    assert "HTTP 401" in fatal and "CULTURESAFE_JUDGE_API_KEY" in fatal and SENTINEL not in fatal
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.suffix == ".sqlite" for p in written) and log_file.stat().st_size > 0
    for path in written:
        assert SENTINEL.encode() not in path.read_bytes(), path
    serialised = json.dumps([r.to_dict() for r in results]) + json.dumps(judge.last_summary.to_dict())
    assert SENTINEL not in serialised + repr(judge.config) + json.dumps(judge.config.to_dict())
    assert "judge (openai)" in printed.err and SENTINEL not in printed.out + printed.err  # the progress bar


def _rows(path: Path) -> int:
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1) as db:
            return db.execute("SELECT COUNT(*) FROM replies").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet
        return 0


def test_generate_mode_returns_text_and_caches_it(tmp_path: Path) -> None:
    """Free-text requests (pairwise verdicts, generated items) use the same client and cache."""

    def responder(messages: list[dict]) -> str:
        return "echo: " + messages[-1]["content"][::-1]

    with StandIn(latency=0.0, responder=responder, max_lifetime=60) as standin:
        judge = Judge(config_for(standin, tmp_path))
        prompts = [[{"role": "user", "content": f"write item {i}"}] for i in range(5)]
        requests = [judge.client.request(m, "gen-test.v1", mode="generate", max_tokens=300) for m in prompts]
        done = judge.client.complete(requests + requests[:2])
        assert done.sent == 5 and standin.n_requests == 5
        assert [done.replies[r.key].text for r in requests] == [f"echo: {i} meti etirw" for i in range(5)]
        again = judge.client.complete(requests)
        assert again.sent == 0 and again.cached == {r.key for r in requests}
        assert standin.n_requests == 5
        # the answer length is part of the key: another length is another request
        assert judge.client.request(prompts[0], "gen-test.v1", mode="generate", max_tokens=10).key != requests[0].key
