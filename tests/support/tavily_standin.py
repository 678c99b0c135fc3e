"""A Tavily-shaped search API on 127.0.0.1: ``POST /search`` with ``Authorization: Bearer <key>``.

Answers ``{"query", "answer": null, "images": [], "results": [{"title", "url", "content", "score",
"raw_content": null}], "response_time"}`` to the expected key; any other key gets 401 with a body that echoes the
header it got (as some servers do), so tests can show the key never leaks. ``fail_status``/``fail_first_n``
answer that status to each query's first n attempts (429 with ``Retry-After``). Records every request.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter

from aiohttp import web

from support.loopback import LoopbackServer
from support.searxng_standin import page_text, slug


class TavilyStandIn(LoopbackServer):
    name = "tavily-standin"

    def __init__(
        self,
        key: str,
        latency: float = 0.0,
        fail_status: int | None = None,
        fail_first_n: int = 0,
        retry_after: float = 0.0,
        pad: int = 0,
        max_lifetime: float = 300.0,
    ) -> None:
        self.key = key
        self.pad = pad  # a 401 body: this many characters before the echoed key (to test mask-then-cut)
        self.latency = latency
        self.fail_status, self.fail_first_n, self.retry_after = fail_status, fail_first_n, retry_after
        self.max_lifetime = max_lifetime
        self.searches: Counter[str] = Counter()
        self.bodies: list[dict] = []
        self._lock = threading.Lock()
        self._init_server()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def n_requests(self) -> int:
        with self._lock:
            return sum(self.searches.values())

    def install(self, app: web.Application) -> None:
        app.router.add_post("/search", self._search)

    async def _search(self, request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.read())
            query, max_results = body["query"], int(body.get("max_results", 5))
        except (ValueError, KeyError, TypeError):
            return web.json_response({"detail": {"error": "Invalid request body"}}, status=400)
        with self._lock:
            attempt = self.searches[query]
            self.searches[query] += 1
            self.bodies.append(body)
        if self.latency:
            await asyncio.sleep(self.latency)
        authorization = request.headers.get("Authorization", "")
        if authorization != f"Bearer {self.key}":
            message = "x" * self.pad + f"Unauthorized: missing or invalid API key ({authorization})"
            return web.json_response({"detail": {"error": message}}, status=401)
        if self.fail_status is not None and attempt < self.fail_first_n:
            headers = {"Retry-After": f"{self.retry_after:g}"} if self.fail_status == 429 else {}
            return web.json_response({"detail": {"error": "stand-in fault"}}, status=self.fail_status, headers=headers)
        base = slug(query)
        results = [
            {
                "title": f"Tavily: {base}-{i}",
                "url": f"https://example.org/{base}/{i}",
                "content": page_text(f"{base}-{i}"),
                "score": round(0.9 - 0.1 * i, 3),
                "raw_content": None,
            }
            for i in range(max_results)
        ]
        return web.json_response(
            {"query": query, "answer": None, "images": [], "results": results, "response_time": 0.01}
        )
