"""A reply is on disk before its request's slot goes to the next request: what makes a killed run resume
without re-sending any reply whose successor went out (``culturesafe synthesize`` killed in its docs stage
re-sent the last answered request when the cache's writer thread had not committed it yet)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from support.openai_standin import StandIn

from culturesafe_ext.llm import LLMClient, LLMConfig
from culturesafe_ext.llm.backends.base import Reply


def test_each_reply_is_committed_before_the_next_request_is_sent(tmp_path: Path) -> None:
    cache = tmp_path / "llm.sqlite"
    on_disk_when_asked: list[int] = []

    def respond(messages: list[dict]) -> str:
        """Called as each request arrives: how many replies another process would find in the file now."""
        db = sqlite3.connect(cache)
        try:
            on_disk_when_asked.append(db.execute("SELECT COUNT(*) FROM replies").fetchone()[0])
        finally:
            db.close()
        return '{"ok": true}'

    with StandIn(responder=respond, max_lifetime=60) as server:
        config = LLMConfig.from_dict(
            {
                "backend": "openai",
                "model": "standin",
                "base_url": server.base_url,
                "concurrency": 1,
                "cache_path": str(cache),
                "progress": False,
            },
            env={},
        )
        client = LLMClient(config)
        client.check_cache()
        requests = [
            client.request([{"role": "user", "content": f"question {i}"}], "p", mode="generate", max_tokens=8)
            for i in range(12)
        ]
        done = client.complete(requests)
    assert done.sent == 12 and all(r.error is None for r in done.replies.values())
    assert on_disk_when_asked == list(range(12))  # request n went out with replies 0..n-1 committed


def test_a_stream_answers_requests_as_they_come_and_from_the_cache(tmp_path: Path) -> None:
    """``LLMClient.stream``: requests handed over one by one are sent before the block ends (a pipeline's next
    stage overlaps the one before); a repeated key is asked once; a second stream answers all from the cache."""
    import asyncio

    with StandIn(responder=lambda messages: '{"ok": true}', max_lifetime=60) as server:
        config = LLMConfig.from_dict(
            {"backend": "openai", "model": "standin", "base_url": server.base_url, "concurrency": 4,
             "cache_path": str(tmp_path / "llm.sqlite"), "progress": False},
            env={},
        )  # fmt: skip
        client = LLMClient(config)
        requests = [
            client.request([{"role": "user", "content": f"q{i}"}], "p", mode="generate", max_tokens=8) for i in range(6)
        ]

        async def run(seen_in_block: list[int]) -> object:
            async with client.stream() as stream:
                for request in [*requests, requests[0]]:
                    stream.submit(request)
                for _ in range(500):  # the block is still open: the server sees the requests meanwhile
                    if server.n_requests >= len(requests):
                        break
                    await asyncio.sleep(0.01)
                seen_in_block.append(server.n_requests)
            return stream.completion

        seen: list[int] = []
        first = asyncio.run(run(seen))
        assert seen == [6] and first.sent == 6 and not first.cached and server.n_requests == 6
        assert set(first.replies) == {r.key for r in requests} and all(r.error is None for r in first.replies.values())
        again = asyncio.run(run([]))
    assert again.sent == 0 and again.cached == {r.key for r in requests} and server.n_requests == 6


class _BatchOnly:
    """A backend that only answers whole batches (as the local ``hf`` and the Batch API backends do)."""

    name = "openai"

    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    def params(self) -> dict:
        return {}

    def complete(self, requests, on_done) -> None:
        self.batches.append([r.key for r in requests])
        for r in requests:
            on_done(r, Reply(text=f"answer to {r.messages[0]['content']}"))

    def close(self) -> None:
        pass


def test_a_stream_over_a_batch_backend_answers_everything_when_the_block_ends(tmp_path: Path) -> None:
    import asyncio

    config = LLMConfig.from_dict(
        {"backend": "openai", "model": "m", "base_url": "http://127.0.0.1:9/v1",
         "cache_path": str(tmp_path / "c.sqlite"), "progress": False},
        env={},
    )  # fmt: skip
    backend = _BatchOnly()
    client = LLMClient(config, backend=backend)
    requests = [client.request([{"role": "user", "content": f"q{i}"}], "p", mode="generate") for i in range(3)]

    async def run() -> object:
        before = len(backend.batches)
        async with client.stream() as stream:
            for request in requests:
                stream.submit(request)
            assert len(backend.batches) == before  # nothing can go before the block ends
        return stream.completion

    done = asyncio.run(run())
    assert backend.batches == [[r.key for r in requests]] and done.sent == 3
    assert [done.replies[r.key].text for r in requests] == ["answer to q0", "answer to q1", "answer to q2"]
    assert asyncio.run(run()).cached == {r.key for r in requests} and len(backend.batches) == 1
