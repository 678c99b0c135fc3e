"""The openai-batch judge backend against the Batch API stand-in on 127.0.0.1 (real HTTP, no mock)."""

from __future__ import annotations

import json
from pathlib import Path

from support.batch_standin import BatchStandIn
from support.openai_standin import expected_score

from culturesafe_ext.judge import Judge, JudgeConfig, JudgeItem
from culturesafe_ext.judge.rubric import load_rubric

ITEMS = [
    JudgeItem(f"custom {i}", "China", f"query {i}", f"response {i}", dimension)
    for i in range(6)
    for dimension in ("respectfulness", "awareness")
]


def config(server: BatchStandIn, tmp_path: Path, **extra) -> JudgeConfig:
    values = {
        "backend": "openai-batch",
        "model": "standin",
        "base_url": server.base_url,
        "cache_path": str(tmp_path / "judge.sqlite"),
        "batch_poll_initial": 0.02,
        "batch_poll_max": 0.05,
        "retry_wait_initial": 0.01,
        "progress": False,
        **extra,
    }
    return JudgeConfig.from_dict(values, env={})


def expected(item: JudgeItem) -> int:
    rubric = load_rubric(item.dimension)
    return expected_score(rubric.messages(item.custom, item.location, item.query, item.response))


def test_expired_batch_resubmits_only_what_is_missing_and_line_errors_are_failures(tmp_path: Path) -> None:
    with BatchStandIn(expire_first=1, line_error_match="custom 3") as server:
        judge = Judge(config(server, tmp_path))
        results = judge.score_many(ITEMS)
        assert len(server.batches) == 2 and server.uploads == 2
        assert [b["status"] for b in server.batches.values()] == ["expired", "completed"]
        # the second batch holds exactly the lines the expired one did not answer
        first, second = (server.files[b["input_file_id"]].decode().splitlines() for b in server.batches.values())
        assert len(first) == 12 and len(second) == 6
        assert max(server.submitted.values()) == 2 and sum(n == 2 for n in server.submitted.values()) == 6
    failed = [(item, r) for item, r in zip(ITEMS, results, strict=True) if r.score is None]
    assert [item.custom for item, _ in failed] == ["custom 3", "custom 3"]  # the line-level errors, counted
    assert all("HTTP 400" in r.error and "flagged" in r.error for _, r in failed)
    for item, result in zip(ITEMS, results, strict=True):
        if item.custom != "custom 3":
            assert result.score == expected(item) and result.usage["prompt_tokens"] > 0
    summary = judge.last_summary
    assert summary.n_failed_request == 2 and summary.n_scored == 10 and summary.requests_sent == 12
    assert not list((tmp_path / "batches").glob("*.json"))  # finished batches leave no state behind


def test_a_batch_still_running_is_resumed_not_paid_twice(tmp_path: Path) -> None:
    with BatchStandIn() as server:
        server.hold()
        first = Judge(config(server, tmp_path, batch_max_wait=0.2)).score_many(ITEMS)
        assert all(r.score is None and "still running" in r.error for r in first)
        [state] = [json.loads(p.read_text()) for p in (tmp_path / "batches").glob("*.json")]
        assert state["batch_id"] == "batch_0001" and "standin" == state["model"]
        assert "custom 0" not in json.dumps(state)  # ids and cache keys only, no prompt
        server.release()
        again = Judge(config(server, tmp_path)).score_many(ITEMS)
        assert len(server.batches) == 1 and server.uploads == 1  # polled the same batch again
        assert [r.score for r in again] == [expected(i) for i in ITEMS]
        third = Judge(config(server, tmp_path))
        third.score_many(ITEMS)
        assert third.last_summary.n_cached == len(ITEMS) and len(server.batches) == 1


def test_an_upload_without_a_batch_is_completed_not_uploaded_again(tmp_path: Path) -> None:
    """A run killed between the upload and the batch's creation: the next run creates it from that file."""
    with BatchStandIn() as server:
        judge = Judge(config(server, tmp_path))
        requests = judge.requests_for(ITEMS[:2])
        backend = judge.client.backend

        async def upload_only() -> None:
            import aiohttp

            async with aiohttp.ClientSession() as session:
                [lines] = backend._files({r.key: r for r in requests})
                await backend._submit(session, lines)

        import asyncio

        asyncio.run(upload_only())
        assert server.uploads == 1 and not server.batches
        results = Judge(config(server, tmp_path)).score_many(ITEMS[:2])
        assert server.uploads == 1 and len(server.batches) == 1
        assert [r.score for r in results] == [expected(i) for i in ITEMS[:2]]


def test_generation_goes_through_the_batch_api_too(tmp_path: Path) -> None:
    """`culturesafe generate` with openai-batch: every round of generation requests is one batch."""
    from builders.test_generate import REQUESTS_FULL_RUN, write_descriptions
    from support.scripted_generator import respond

    from culturesafe_ext.cli import main

    descriptions = write_descriptions(tmp_path)
    generator = {"backend": "openai-batch", "model": "standin", "batch_poll_initial": 0.02, "batch_poll_max": 0.05}
    with BatchStandIn(responder=respond) as server:
        args = ["generate", "adaculturesafe", "--descriptions", str(descriptions), "--out", str(tmp_path / "thai")]
        args += ["--generator", json.dumps(generator), "--base-url", server.base_url]
        args += ["--cache-path", str(tmp_path / "cache.sqlite"), "--no-progress"]
        assert main(args) == 0
        assert sum(server.submitted.values()) == REQUESTS_FULL_RUN and max(server.submitted.values()) == 1
        assert len(server.batches) == 3  # one per generation round (first attempt, two retries)
    report = json.loads((tmp_path / "thai.work" / "generation_report.json").read_text())
    assert report["generator"]["backend"] == "openai-batch"
    assert (report["stats"]["complete"], report["stats"]["incomplete"]) == (9, 1)


def test_a_large_run_is_cut_into_several_batches_polled_together(tmp_path: Path) -> None:
    with BatchStandIn(polls_until_done=2) as server:
        results = Judge(config(server, tmp_path, batch_max_lines=5)).score_many(ITEMS)
        sizes = [len(server.files[b["input_file_id"]].splitlines()) for b in server.batches.values()]
        assert sizes == [5, 5, 2] and max(server.submitted.values()) == 1
    assert [r.score for r in results] == [expected(i) for i in ITEMS]


def test_the_batch_api_is_retried_under_the_http_backends_policy(tmp_path: Path) -> None:
    """One retry policy (llm/retry.py) for both HTTP backends: a 503 poll is retried up to max_retries, then the
    requests are counted as failed with what the server said and how many attempts were made."""
    with BatchStandIn(busy_polls=2) as server:
        judge = Judge(config(server, tmp_path, max_retries=2))
        results = judge.score_many(ITEMS)
        assert server.busy_answers == 2 and all(r.score == expected(i) for i, r in zip(ITEMS, results, strict=True))
    with BatchStandIn(busy_polls=10) as server:
        judge = Judge(config(server, tmp_path / "again", max_retries=1))
        results = judge.score_many(ITEMS)
        assert server.busy_answers == 2  # the first attempt and one retry
    assert all(r.score is None and "HTTP 503" in r.error and "(after 2 attempts)" in r.error for r in results)
