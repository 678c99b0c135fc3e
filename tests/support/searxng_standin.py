"""A SearXNG-shaped search server with the result pages it links to, on 127.0.0.1, for tests and benchmarks.

``GET /search?q=...&format=json`` answers SearXNG's JSON shape (``query``, ``number_of_results``, ``results`` of
``url``/``title``/``content``/``engine``/``engines``/``score``/``category``, ``answers``, ``suggestions``,
``infoboxes``, ``unresponsive_engines``); without ``format=json`` it answers 403 as SearXNG does when json is not
in ``search.formats`` (``json_enabled=False`` makes every request so). Each query's results link to
``/pages/<slug>-<i>`` on the same server; the slug's first word picks the page: ``big`` (a body streamed past
any sane cap), ``plain`` (text/plain), ``missing`` (404), ``broken`` (502), anything else an HTML article with
navigation and footer boilerplate for trafilatura to strip. Runs on the project's one server loop
(:mod:`support.loopback`, aiohttp), so http.server's three settings are not needed: aiohttp speaks HTTP/1.1 with
keep-alive and sets TCP_NODELAY itself, and the loop's listen backlog is 4096.

``fail_status``/``fail_first_n`` answer that status to each query's first n attempts (429 with ``Retry-After``);
``python tests/support/searxng_standin.py --latency 0.1`` runs it in its own process and prints ``PORT <n>``.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import threading
from collections import Counter

from aiohttp import web

from support.loopback import LoopbackServer

SENTENCES = (
    "Guests remove their shoes at the entrance and step onto the raised floor in slippers.",
    "Gifts are offered with both hands and are often refused once before being accepted.",
    "Elders are served first at meals, and younger people wait until they begin eating.",
    "Bowing depth reflects the relationship, and a deeper bow shows greater respect.",
    "Pointing with a single finger is considered rude; an open hand is used instead.",
    "During festivals families visit shrines, share seasonal foods and exchange greetings.",
)


def slug(query: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", query.lower()).strip("-")[:60] or "empty"


def page_text(name: str) -> str:
    """The article text of page ``name`` (deterministic, distinct per page)."""
    start = sum(map(ord, name)) % len(SENTENCES)
    lines = [SENTENCES[(start + i) % len(SENTENCES)] for i in range(4)]
    return f"Page {name}. " + " ".join(lines)


def page_html(name: str) -> str:
    paragraphs = "".join(f"<p>{s} ({name}, paragraph {i})</p>" for i, s in enumerate(page_text(name).split(". ")))
    return (
        f"<!doctype html><html><head><title>Customs: {name}</title></head><body>"
        "<nav><a href='/'>Home</a> | <a href='/about'>About us</a> | <a href='/login'>Log in</a></nav>"
        f"<main><article><h1>Customs: {name}</h1>{paragraphs}</article></main>"
        "<footer>Copyright 2026 Example Travel Guides. All rights reserved. Cookie settings.</footer>"
        "</body></html>"
    )


class SearxngStandIn(LoopbackServer):
    name = "searxng-standin"

    def __init__(
        self,
        latency: float = 0.0,
        results_per_query: int = 3,
        json_enabled: bool = True,
        fail_status: int | None = None,
        fail_first_n: int = 0,
        retry_after: float = 0.0,
        big_bytes: int = 8 * 1024 * 1024,
        max_lifetime: float = 300.0,
    ) -> None:
        self.latency = latency
        self.results_per_query = results_per_query
        self.json_enabled = json_enabled
        self.fail_status, self.fail_first_n, self.retry_after = fail_status, fail_first_n, retry_after
        self.big_bytes = big_bytes
        self.max_lifetime = max_lifetime
        self.searches: Counter[str] = Counter()  # attempts per query
        self.pages: Counter[str] = Counter()  # requests per page name
        self.big_bytes_sent = 0
        self._lock = threading.Lock()
        self._init_server()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def n_requests(self) -> int:
        with self._lock:
            return sum(self.searches.values()) + sum(self.pages.values())

    def install(self, app: web.Application) -> None:
        app.router.add_get("/search", self._search)
        app.router.add_get("/pages/{name}", self._page)
        app.router.add_get("/stats", self._stats)

    async def _stats(self, request: web.Request) -> web.Response:
        with self._lock:
            return web.json_response({"searches": sum(self.searches.values()), "pages": sum(self.pages.values())})

    async def _search(self, request: web.Request) -> web.Response:
        query = request.query.get("q", "")
        with self._lock:
            attempt = self.searches[query]
            self.searches[query] += 1
        if self.latency:
            await asyncio.sleep(self.latency)
        if not self.json_enabled or request.query.get("format") != "json":
            return web.Response(status=403, text="403 Forbidden")  # what SearXNG answers for a disabled format
        if self.fail_status is not None and attempt < self.fail_first_n:
            headers = {"Retry-After": f"{self.retry_after:g}"} if self.fail_status == 429 else {}
            return web.Response(status=self.fail_status, text=f"stand-in fault {self.fail_status}", headers=headers)
        base = slug(query)
        results = [
            {
                "url": f"{self.base_url}/pages/{base}-{i}",
                "title": f"Customs: {base}-{i}",
                "content": page_text(f"{base}-{i}")[:120],
                "engine": ("duckduckgo", "wikipedia", "brave")[i % 3],
                "engines": [("duckduckgo", "wikipedia", "brave")[i % 3]],
                "parsed_url": ["http", f"127.0.0.1:{self.port}", f"/pages/{base}-{i}", "", "", ""],
                "template": "default.html",
                "positions": [i + 1],
                "score": 1.0 / (i + 1),
                "category": "general",
            }
            for i in range(self.results_per_query)
        ]
        return web.json_response(
            {
                "query": query,
                "number_of_results": len(results),
                "results": results,
                "answers": [],
                "corrections": [],
                "infoboxes": [],
                "suggestions": [],
                "unresponsive_engines": [],
            }
        )

    async def _page(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        with self._lock:
            self.pages[name] += 1
        if self.latency:
            await asyncio.sleep(self.latency)
        kind = name.split("-", 1)[0]
        if kind == "missing":
            return web.Response(status=404, text="Not Found")
        if kind == "broken":
            return web.Response(status=502, text="Bad Gateway")
        if kind == "plain":
            return web.Response(text=page_text(name) + " " + " ".join(SENTENCES), content_type="text/plain")
        if kind == "big":  # chunked, no Content-Length: the client must stop reading by itself
            response = web.StreamResponse(headers={"Content-Type": "text/html"})
            await response.prepare(request)
            chunk = (b"<p>" + b"x" * 65_530 + b"</p>")[:65_536]
            try:
                for _ in range(self.big_bytes // len(chunk)):
                    await response.write(chunk)
                    with self._lock:
                        self.big_bytes_sent += len(chunk)
                await response.write_eof()
            except (ConnectionResetError, asyncio.CancelledError):
                pass
            return response
        return web.Response(text=page_html(name), content_type="text/html")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--results", type=int, default=3)
    parser.add_argument("--max-lifetime", type=float, default=600.0)
    args = parser.parse_args(argv)
    server = SearxngStandIn(latency=args.latency, results_per_query=args.results, max_lifetime=args.max_lifetime)
    asyncio.run(server.serve(port=args.port, announce=True))
    sys.exit(0)


if __name__ == "__main__":
    main()
