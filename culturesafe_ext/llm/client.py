"""THE LLM client: every part of culturesafe that talks to an LLM (judging, pairwise verdicts, generating
benchmark items, the DPO recipe's chosen answers) sends its requests through :meth:`LLMClient.complete`.

A request carries its cache key (everything that decides the answer is in it); replies come from the on-disk
cache where they can, each distinct prompt is sent once otherwise, and every usable reply is cached as it
arrives, so a killed run resumes. A failed request comes back as a ``Reply`` with its failure kind, never as a
missing key, and a run-level error (401/403/404, a malformed setting) stops the backend at the first one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from culturesafe_ext.llm.backends import (
    REQUEST_ERROR,
    SCORE,
    TRUNCATED,
    Backend,
    LLMRequest,
    LLMRunError,
    Reply,
    ScoreScale,
    make_backend,
)
from culturesafe_ext.llm.cache import LLMCache, cache_key
from culturesafe_ext.llm.settings import HTTP_BACKENDS, LLMConfig

OnReply = Callable[[LLMRequest, Reply], None]

log = logging.getLogger("culturesafe.llm")


@dataclass
class Completion:
    """Replies by cache key, which of them came from the cache, and how many requests were sent.

    ``fatal``: the run-level error that stopped the backend (every request it left unanswered has a
    reply with that error); ``cache_problem``: replies that were used but could not be cached.
    """

    replies: dict[str, Reply]
    cached: set[str] = field(default_factory=set)
    sent: int = 0
    fatal: str | None = None
    cache_problem: str | None = None
    usage_unknown: set[str] = field(default_factory=set)  # keys of paid replies the server sent no token counts for


class LLMClient:
    """Sends requests with the configured backend through the cache (see the module docstring)."""

    def __init__(self, config: LLMConfig, backend: Backend | None = None, scale: ScoreScale | None = None) -> None:
        """``scale``: what ``score`` requests ask for (the caller's answer format, e.g. the judge's 1..10)."""
        self.config = config
        self._backend = backend
        self.scale = scale

    @property
    def backend(self) -> Backend:
        """Created on first use, so building a client to validate settings loads no model."""
        if self._backend is None:
            self._backend = make_backend(self.config, self.scale)
        return self._backend

    def request(
        self,
        messages: list[dict[str, str]],
        prompt_id: str,
        mode: str = SCORE,
        max_tokens: int | None = None,
        accept: Callable[[str], bool] | None = None,
        response_format: dict[str, Any] | None = None,
    ) -> LLMRequest:
        """A request under its cache key: everything that decides the answer is in the key.

        ``accept``: whether a reply's text is usable; an unusable one is not cached (never cache a failure).
        ``response_format``: asked of the server as it is (structured output); in the key when given."""
        params = dict(self.backend.params())
        if mode != SCORE:
            params.update(mode=mode, max_tokens=max_tokens or self.config.max_tokens)
        elif max_tokens:
            params.update(max_tokens=max_tokens)
        if response_format is not None:
            params.update(response_format=response_format)
        key = cache_key(self.config.backend, self.config.model, prompt_id, messages, params)
        return LLMRequest(
            key=key,
            messages=messages,
            prompt_id=prompt_id,
            mode=mode,
            max_tokens=max_tokens,
            response_format=response_format,
            accept=accept,
        )

    def complete(self, requests: Sequence[LLMRequest]) -> Completion:
        """Answer every request: from the cache where it can, each distinct prompt sent once otherwise.

        The one way any part of culturesafe talks to an LLM (judging, pairwise verdicts, generating
        benchmark items): every reply is cached on disk as it arrives, so a killed run resumes.
        A failed request comes back as a ``Reply`` with ``error`` set, never as a missing key.
        """
        unique = {r.key: r for r in requests}
        cache = LLMCache(self.config.resolved_cache_path()) if self.config.cache else None
        fatal = None
        try:
            cached = cache.get_many(unique) if cache is not None else {}
            replies = {key: Reply.from_cache(stored) for key, stored in cached.items()}
            to_send = [r for key, r in unique.items() if key not in cached]
            fatal = self._send(to_send, replies, cache)
        finally:
            if cache is not None:
                cache.close()
        problem = cache.problem if cache is not None else None
        if problem:
            log.warning("%s: %s", self.config.role, problem)
        unknown = self._usage_unknown(to_send, replies)
        return Completion(
            replies=replies,
            cached=set(cached),
            sent=len(to_send),
            fatal=fatal,
            cache_problem=problem,
            usage_unknown=unknown,
        )

    def _usage_unknown(self, sent: list[LLMRequest], replies: dict[str, Reply]) -> set[str]:
        """Keys of the replies paid for (complete or truncated) that came without token counts; a warning names
        the server, since their tokens and cost are unknown, not 0."""
        if self.config.backend not in HTTP_BACKENDS:
            return set()
        unknown = {r.key for r in sent if replies[r.key].usage is None and replies[r.key].kind in (None, TRUNCATED)}
        if unknown:
            log.warning(
                "%s: the server at %s (model %s) sent no token usage with %d of %d replies: their tokens and cost "
                "are unknown (judge_cost NaN), not 0",
                self.config.role,
                self.config.base_url,
                self.config.model,
                len(unknown),
                len(sent),
            )
        return unknown

    def check_cache(self) -> None:
        """Fail now, naming the file, when the cache cannot be used (before anything is generated)."""
        if self.config.cache:
            LLMCache.check(self.config.resolved_cache_path())

    def _send(self, requests: list[LLMRequest], replies: dict[str, Reply], cache: LLMCache | None) -> str | None:
        """Send ``requests``; returns the run-level error that stopped the backend, if one did."""
        if not requests:
            return None
        on_done, bar = self._recorder(replies, cache, len(requests))
        fatal = None
        try:
            self.backend.complete(requests, on_done)
        except LLMRunError as err:  # stop at the first such error; what arrived before it is kept
            fatal = str(err)
            log.error("%s: %s", self.config.role, fatal)
        finally:
            bar.close()
        _fill_missing(requests, replies, fatal)
        return fatal

    def _recorder(
        self, replies: dict[str, Reply], cache: LLMCache | None, total: int | None
    ) -> tuple[Callable[[LLMRequest, Reply], Future | None], Any]:
        """The backend's ``on_done`` (keep the reply, cache it if usable, count its tokens) and its progress bar."""
        bar = _progress(
            total=total,
            desc=f"{self.config.role} ({self.config.backend})",
            unit="req",
            disable=not self.config.progress,
            mininterval=0.5,
        )
        started, tokens = time.monotonic(), [0]

        def on_done(request: LLMRequest, reply: Reply) -> Future | None:
            replies[request.key] = reply
            usable = reply.text is None or request.accept is None or request.accept(reply.text)
            written = None
            if cache is not None and reply.error is None and usable:
                config = self.config
                written = cache.put(request.key, reply.to_cache(), config.backend, config.model, request.prompt_id)
            if reply.usage:
                tokens[0] += reply.usage["prompt_tokens"] + reply.usage["completion_tokens"]
                bar.set_postfix_str(f"{tokens[0] / max(time.monotonic() - started, 1e-3):.0f} tok/s", refresh=False)
            bar.update(1)
            return written

        return on_done, bar

    @contextlib.asynccontextmanager
    async def stream(self, on_reply: OnReply | None = None) -> AsyncIterator[ReplyStream]:
        """Requests handed over one at a time while the caller is still producing them (a pipeline's next stage
        starting before the stage before it is over); each is answered from the cache or sent at once, and
        :attr:`ReplyStream.completion` holds every reply once the block is left.

        The openai backend serves the requests as they come; the others answer them all when the block is left.
        ``on_reply(request, reply)``: called in the event loop as each reply is in (from the cache at once), so a
        caller can read replies while others are still on their way."""
        stream = ReplyStream(self, on_reply)
        await stream.start()
        try:
            yield stream
        except BaseException:
            await stream.finish(cancel=True)  # what arrived is cached; nothing more is sent
            raise
        await stream.finish()


class ReplyStream:
    """See :meth:`LLMClient.stream`: the same cache, recording and failure handling as :meth:`LLMClient.complete`."""

    def __init__(self, client: LLMClient, on_reply: OnReply | None = None) -> None:
        self.client = client
        self.on_reply = on_reply
        self.completion: Completion | None = None
        self._replies: dict[str, Reply] = {}
        self._cached: set[str] = set()
        self._to_send: list[LLMRequest] = []
        self._sent_keys: set[str] = set()
        self._cache: LLMCache | None = None
        self._serving: asyncio.Future | None = None
        self._bar: Any = None

    async def start(self) -> None:
        config = self.client.config
        self._cache = LLMCache(config.resolved_cache_path()) if config.cache else None
        self._queue: asyncio.Queue[LLMRequest | None] = asyncio.Queue()
        serve = getattr(self.client.backend, "aserve", None)
        if serve is not None:
            record, self._bar = self.client._recorder(self._replies, self._cache, None)

            def on_done(request: LLMRequest, reply: Reply) -> Future | None:
                written = record(request, reply)
                if self.on_reply is not None:
                    self.on_reply(request, reply)
                return written

            self._serving = asyncio.ensure_future(serve(self._queue, on_done))

    def submit(self, request: LLMRequest) -> None:
        """Answer ``request`` (a key already handed over is not asked again)."""
        if request.key in self._cached or request.key in self._sent_keys:
            return
        stored = self._cache.get_many([request.key]) if self._cache is not None else {}
        if stored:
            reply = self._replies[request.key] = Reply.from_cache(stored[request.key])
            self._cached.add(request.key)
            if self.on_reply is not None:
                self.on_reply(request, reply)
            return
        self._to_send.append(request)
        self._sent_keys.add(request.key)
        if self._serving is not None:
            self._queue.put_nowait(request)

    async def finish(self, cancel: bool = False) -> None:
        client, fatal = self.client, None
        try:
            if self._serving is not None:
                for _ in range(client.config.concurrency):
                    self._queue.put_nowait(None)
                if cancel:
                    self._serving.cancel()
                try:
                    await self._serving
                except asyncio.CancelledError:
                    if not cancel:
                        raise
                except LLMRunError as err:
                    fatal = str(err)
                    log.error("%s: %s", client.config.role, fatal)
                finally:
                    self._bar.close()
                _fill_missing(self._to_send, self._replies, fatal)
            elif not cancel:
                fatal = await asyncio.to_thread(client._send, self._to_send, self._replies, self._cache)
        finally:
            if self._cache is not None:
                self._cache.close()
        problem = self._cache.problem if self._cache is not None else None
        if problem:
            log.warning("%s: %s", client.config.role, problem)
        self.completion = Completion(
            replies=self._replies,
            cached=set(self._cached),
            sent=len(self._to_send),
            fatal=fatal,
            cache_problem=problem,
            usage_unknown=client._usage_unknown(self._to_send, self._replies),
        )


def _fill_missing(requests: Sequence[LLMRequest], replies: dict[str, Reply], fatal: str | None) -> None:
    """A backend that skipped a request must not lose it silently: it gets a failed reply."""
    missing = f"not sent: {fatal}" if fatal else "no reply from the backend"
    for request in requests:
        replies.setdefault(request.key, Reply(error=missing, failure=REQUEST_ERROR))


def _progress(**kwargs: object) -> Any:
    """A tqdm bar, or a no-op when disabled (tqdm's import is not free)."""
    if kwargs.get("disable"):
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(**kwargs)


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        pass

    def close(self) -> None:
        pass
