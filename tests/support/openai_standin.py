"""A real OpenAI-compatible chat-completions server on 127.0.0.1 for tests and benchmarks.

In-process (a background thread with its own event loop, aiohttp.web) or as a subprocess
(``python tests/support/openai_standin.py --latency 0.1``, which prints ``PORT <n>``). Latency is an
``asyncio.sleep``, so it never blocks other requests. Bounded: it stops itself after ``max_requests``
or ``max_lifetime`` seconds. Faults are scripted per rule (see :class:`Fault`) and decided from a hash
of (seed, prompt, attempt number), so they do not depend on the order requests arrive in.

It records every request (count per prompt hash), the successful answers, and the ``Authorization``
headers it saw. Its answer is a deterministic score derived from the prompt (:func:`expected_score`).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from support.loopback import LoopbackServer

KINDS = (
    "429",
    "500",
    "400",
    "401",
    "403",
    "404",
    "timeout",
    "drop",
    "garbage",
    "out_of_range",
    "prose",
    "length",  # HTTP 200, finish_reason "length", the answer cut after its first digit: {"score": 1
    "content_filter",  # HTTP 200, content null, finish_reason "content_filter"
    "parts",  # HTTP 200, the answer as a list of content parts [{"type": "text", "text": ...}]
)
PROSE = "The response is quite respectful and shows some awareness of the custom."


@dataclass(frozen=True)
class Fault:
    """Inject ``kind`` into requests whose prompt contains ``match`` (all if None), at ``rate``.

    ``first_n`` limits it to each prompt's first n attempts (so a retry then succeeds);
    ``retry_after`` is the ``Retry-After`` header of a 429.
    """

    kind: str
    rate: float = 1.0
    match: str | None = None
    first_n: int | None = None
    retry_after: float = 0.0
    pad: int = 0  # a 401 body: this many characters of text before the echoed key

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"fault kind {self.kind!r} is not one of {KINDS}")


def prompt_text(messages: list[dict]) -> str:
    return "\n".join(str(m.get("content", "")) for m in messages)


def prompt_hash(messages: list[dict]) -> str:
    return hashlib.sha256(prompt_text(messages).encode("utf-8")).hexdigest()[:16]


def expected_score(messages: list[dict], key: str = "score") -> int:
    """The score the stand-in gives this prompt (on ``key`` for a two-dimension prompt)."""
    digest = hashlib.sha256((key + "\0" + prompt_text(messages)).encode("utf-8")).hexdigest()
    return 1 + int(digest[:8], 16) % 10


def _combined(messages: list[dict]) -> bool:
    system = messages[0].get("content", "") if messages else ""
    return '"respectfulness":' in system and '"awareness":' in system


def _fraction(*parts: object) -> float:
    digest = hashlib.sha256("\0".join(map(str, parts)).encode()).hexdigest()
    return int(digest[:8], 16) / 0xFFFFFFFF


class StandIn(LoopbackServer):
    """The server. Use as a context manager: ``with StandIn(latency=0.1) as server: server.base_url``."""

    name = "openai-standin"

    def __init__(
        self,
        latency: float = 0.0,
        faults: tuple[Fault, ...] | list[Fault] = (),
        seed: int = 0,
        hang_seconds: float = 5.0,
        max_requests: int = 100_000,
        max_lifetime: float = 300.0,
        responder: Callable[[list[dict]], str] | None = None,
        send_usage: bool = True,
    ) -> None:
        self.latency = latency
        self.send_usage = send_usage  # False: replies carry no "usage" (some servers send none)
        self.bodies: list[dict] = []  # every chat request body as sent (the first 10,000)
        # What the model "says": default the judge-score JSON; tests of other prompts (pairwise judging,
        # generation) pass a function of the chat messages. Faults apply the same either way.
        self.responder = responder
        self.faults = tuple(faults)
        self.seed = seed
        self.hang_seconds = hang_seconds
        self.max_requests = max_requests
        self.max_lifetime = max_lifetime
        self.counts: Counter[str] = Counter()
        self.answered: Counter[str] = Counter()
        self.faults_served: Counter[str] = Counter()
        self.authorizations: Counter[str | None] = Counter()
        self._init_server()
        self._total = 0  # requests over the server's lifetime (the max_requests bound; reset() keeps it)
        self.in_flight = 0  # chat requests being answered now, and the most at once (what a concurrency limit bounds)
        self.max_in_flight = 0
        self._lock = threading.Lock()

    @property
    def n_requests(self) -> int:
        with self._lock:
            return sum(self.counts.values())

    def reset(self) -> None:
        """Forget what was recorded (keep serving)."""
        with self._lock:
            self.counts.clear()
            self.answered.clear()
            self.faults_served.clear()
            self.authorizations.clear()
            self.max_in_flight = self.in_flight

    def stats(self) -> dict:
        with self._lock:
            return {
                "n_requests": sum(self.counts.values()),
                "n_answered": sum(self.answered.values()),
                "repeated": sum(n - 1 for n in self.counts.values() if n > 1),
                "faults": dict(self.faults_served),
            }

    # -- running ---------------------------------------------------------------------------------

    def install(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/stats", self._stats)
        self.add_routes(app)

    def add_routes(self, app: web.Application) -> None:
        """More endpoints for a subclass (the batch stand-in adds the files and batches APIs)."""

    # -- handlers --------------------------------------------------------------------------------

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats())

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self._reply(request)
        finally:
            with self._lock:
                self.in_flight -= 1

    async def _reply(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        try:
            parsed = json.loads(body)
            messages = parsed["messages"]
            key = prompt_hash(messages)
        except (ValueError, KeyError, TypeError):
            return web.json_response({"error": {"message": "bad request"}}, status=400)
        with self._lock:
            attempt = self.counts[key]
            self.counts[key] += 1
            self.authorizations[request.headers.get("Authorization")] += 1
            if len(self.bodies) < 10_000:
                self.bodies.append(parsed)
            self._total += 1
            total = self._total
        if total > self.max_requests:
            self._stop.set()
            return web.json_response({"error": {"message": "stand-in request limit reached"}}, status=503)
        fault = self._fault_for(messages, key, attempt)
        if self.latency:
            await asyncio.sleep(self.latency)
        if fault is not None:
            with self._lock:
                self.faults_served[fault.kind] += 1
            response = await self._inject(request, fault)
            if response is not None:
                return response
        if self.responder is not None:
            content = self.responder(messages)
        else:
            content = self.answer(messages, out_of_range=fault is not None and fault.kind == "out_of_range")
        if fault is not None and fault.kind == "prose":
            content = PROSE
        finish, payload = "stop", content
        if fault is not None and fault.kind == "length":
            digit = content.find(next(c for c in content if c.isdigit())) if any(c.isdigit() for c in content) else 0
            finish, payload = "length", content[: digit + 1]
        elif fault is not None and fault.kind == "content_filter":
            finish, payload = "content_filter", None
        elif fault is not None and fault.kind == "parts":
            half = len(content) // 2
            payload = [{"type": "text", "text": content[:half]}, {"type": "text", "text": content[half:]}]
        with self._lock:
            self.answered[key] += 1
        completion = _completion(payload, finish, messages)
        if not self.send_usage:
            del completion["usage"]
        return web.json_response(completion)

    def _fault_for(self, messages: list[dict], key: str, attempt: int) -> Fault | None:
        text = None
        for fault in self.faults:
            if fault.first_n is not None and attempt >= fault.first_n:
                continue
            if fault.match is not None:
                text = text if text is not None else prompt_text(messages)
                if fault.match not in text:
                    continue
            if fault.rate >= 1.0 or _fraction(self.seed, fault.kind, key, attempt) < fault.rate:
                return fault
        return None

    async def _inject(self, request: web.Request, fault: Fault) -> web.StreamResponse | None:
        if fault.kind == "429":
            headers = {"Retry-After": f"{fault.retry_after:g}"}
            return web.json_response({"error": {"message": "rate limited"}}, status=429, headers=headers)
        if fault.kind == "500":
            return web.json_response({"error": {"message": "internal error"}}, status=500)
        if fault.kind == "401":  # echoes the key it got, as some servers do
            message = "x" * fault.pad + f"Incorrect API key provided: {request.headers.get('Authorization')}"
            return web.json_response({"error": {"message": message}}, status=401)
        if fault.kind == "400":
            message = "Unrecognized request argument supplied: top_kk"
            return web.json_response({"error": {"message": message, "type": "invalid_request_error"}}, status=400)
        if fault.kind == "403":
            message = "Permission denied: this key cannot use model 'standin'"
            return web.json_response({"error": {"message": message}}, status=403)
        if fault.kind == "404":
            message = "The model 'standin' does not exist or you do not have access to it."
            return web.json_response({"error": {"message": message, "code": "model_not_found"}}, status=404)
        if fault.kind == "timeout":
            await asyncio.sleep(self.hang_seconds)
            return None
        if fault.kind == "drop":
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError  # nothing is written: the client sees the connection vanish
        if fault.kind == "garbage":
            return web.Response(body=b'{"id": "chatcmpl-x", "choices": [{"mess', content_type="application/json")
        return None  # out_of_range, prose, length, content_filter and parts change only the answer

    @staticmethod
    def answer(messages: list[dict], out_of_range: bool = False) -> str:
        if _combined(messages):
            scores = {k: 42 if out_of_range else expected_score(messages, k) for k in ("respectfulness", "awareness")}
            return json.dumps(scores)
        return json.dumps({"score": 42 if out_of_range else expected_score(messages)})


def _completion(content: str | list | None, finish_reason: str = "stop", messages: list[dict] | None = None) -> dict:
    return {
        "id": "chatcmpl-standin",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": "standin",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish_reason}],
        "usage": usage(messages or [], content),
    }


def usage(messages: list[dict], content: str | list | None) -> dict[str, int]:
    """Token counts as a server reports them; here one token per whitespace-separated word."""
    text = content if isinstance(content, str) else json.dumps(content) if content else ""
    prompt, completion = len(prompt_text(messages).split()), len(text.split())
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def main(argv: list[str] | None = None) -> None:
    """Run the stand-in in this process's main thread (for benchmarks that want it in its own process)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--max-requests", type=int, default=1_000_000)
    parser.add_argument("--max-lifetime", type=float, default=600.0)
    parser.add_argument("--responder", help="MODULE:FUNCTION answering the messages (e.g. a scripted generator)")
    args = parser.parse_args(argv)
    responder = None
    if args.responder:
        import importlib

        module, _, function = args.responder.partition(":")
        responder = getattr(importlib.import_module(module), function)
    server = StandIn(
        latency=args.latency, max_requests=args.max_requests, max_lifetime=args.max_lifetime, responder=responder
    )
    asyncio.run(server.serve(port=args.port, announce=True))
    sys.exit(0)


if __name__ == "__main__":
    main()
