"""A reply is on disk before its request's slot goes to the next request: what makes a killed run resume
without re-sending any reply whose successor went out (``culturesafe synthesize`` killed in its docs stage
re-sent the last answered request when the cache's writer thread had not committed it yet)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from support.openai_standin import StandIn

from culturesafe_ext.llm import LLMClient, LLMConfig


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
