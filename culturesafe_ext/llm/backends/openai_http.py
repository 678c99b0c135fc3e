"""Any OpenAI-compatible ``/chat/completions`` endpoint, called concurrently with plain aiohttp.

Why aiohttp and not the ``openai`` SDK: measured here (1,000 requests, 100 ms stand-in, 2 cores), the
SDK's httpx transport keeps 0.81 / 0.39 / 0.23 of the ideal throughput at 32 / 64 / 128 concurrent
requests, bare aiohttp 0.93 / 0.90 / 0.86 (design.md). One ``ClientSession`` whose connector allows
exactly ``concurrency`` connections is shared by ``concurrency`` workers that pull requests from one
queue, so at most that many are in flight and no task is created per request. Each request is retried
under the one policy of :mod:`culturesafe_ext.llm.retry` (429 with ``Retry-After``, 5xx, malformed bodies,
timeouts, dropped connections; full-jitter exponential backoff). A request whose retries run out becomes a
failed :class:`Reply`, never an exception that loses the other results.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import aiohttp

from culturesafe_ext.llm.backends.base import (
    FILTERED,
    TRUNCATED,
    LLMRequest,
    LLMRunError,
    OnDone,
    Reply,
    usage_of,
)
from culturesafe_ext.llm.retry import TransientError, parse_retry_after, with_retries
from culturesafe_ext.llm.secrets import mask
from culturesafe_ext.llm.settings import LLMConfig

log = logging.getLogger("culturesafe.llm")


class FatalError(Exception):
    """A failure of this request that retrying cannot fix (400, 413, 422, ...)."""


class RunLevelError(FatalError):
    """401, 403, 404: no request of the run can succeed; the run stops (see :class:`LLMRunError`)."""


RUN_LEVEL = {
    401: "the server rejected the API key: set a valid key in CULTURESAFE_JUDGE_API_KEY "
    "(OPENAI_API_KEY is sent only to api.openai.com)",
    403: "the key has no permission for this model or endpoint: check the key's access, or judge.model",
    404: "no such model or endpoint: check judge.model and judge.base_url (it should end in /v1)",
}
BODY_CHARS = 300  # of a server's error body kept in a message (after masking the key)
REFUSED_BEFORE_ANY_SUCCESS = 5  # this many 4xx refusals and not one success: a malformed setting, stop the run


def endpoint(base_url: str) -> str:
    """``.../v1`` -> ``.../v1/chat/completions``; a full completions URL is kept as given."""
    url = base_url.rstrip("/")
    return url if url.endswith("/chat/completions") else url + "/chat/completions"


def sampling_params(config: LLMConfig) -> dict[str, Any]:
    """What decides an OpenAI-compatible reply besides the messages (part of every cache key)."""
    return config.sampling()


def run_sync(make_coroutine: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run a backend's coroutine from plain code, or from inside a running event loop (notebooks)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(make_coroutine())
        return
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(lambda: asyncio.run(make_coroutine())).result()


class OpenAIBackend:
    """The ``openai`` backend."""

    name = "openai"

    def __init__(self, config: LLMConfig) -> None:
        self.config = config
        self.url = endpoint(config.base_url or "")
        self.attempts = 0
        self._secret: str | None = None
        self._fatal: RunLevelError | None = None

    def params(self) -> dict[str, Any]:
        return sampling_params(self.config)

    def complete(self, requests: Sequence[LLMRequest], on_done: OnDone) -> None:
        """Run all requests; usable from plain code and from inside a running event loop (notebooks)."""
        if requests:
            run_sync(lambda: self.acomplete(requests, on_done))

    async def acomplete(self, requests: Sequence[LLMRequest], on_done: OnDone) -> None:
        """Answer ``requests`` with at most ``concurrency`` in flight, calling ``on_done`` as each ends."""
        if not requests:
            return
        source: asyncio.Queue[LLMRequest | None] = asyncio.Queue()
        for request in requests:
            source.put_nowait(request)
        workers = min(self.config.concurrency, len(requests))
        for _ in range(workers):
            source.put_nowait(None)
        await self.aserve(source, on_done, workers)

    async def aserve(
        self, source: asyncio.Queue[LLMRequest | None], on_done: OnDone, workers: int | None = None
    ) -> None:
        """Answer the requests put on ``source`` as they come (a pipeline's next stage starting before the stage
        before it is over), with ``workers`` (default ``concurrency``) in flight; each worker stops at a ``None``."""
        limit = self.config.concurrency
        headers = {"Content-Type": "application/json"}
        try:
            key = self.config.api_key()  # refuses a key over plain HTTP to another machine
        except ValueError as err:
            raise LLMRunError(str(err)) from None
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self._secret = key
        self._fatal = None
        self._succeeded, self._refused = 0, 0
        connector = aiohttp.TCPConnector(limit=limit, limit_per_host=limit)
        timeout = aiohttp.ClientTimeout(total=self.config.timeout)

        async with aiohttp.ClientSession(connector=connector, timeout=timeout, headers=headers) as session:

            async def worker() -> None:
                while (request := await source.get()) is not None:
                    if self._fatal is not None:  # stop at the first run-level error: send nothing more
                        return
                    try:
                        reply = await self._one(session, request)
                    except RunLevelError as err:
                        self._fatal = self._fatal or err
                        on_done(request, Reply(error=str(err)))
                        return
                    self._count(reply)
                    written = on_done(request, reply)
                    if written is not None:  # the slot goes to the next request once this reply is on disk
                        await asyncio.wrap_future(written)

            await asyncio.gather(*(worker() for _ in range(workers or limit)))
        if self._fatal is not None:
            raise LLMRunError(f"the {self.config.role} at {self.url} refused the run: {self._fatal}")

    async def _one(self, session: aiohttp.ClientSession, request: LLMRequest) -> Reply:
        body = json.dumps(chat_payload(self.config, request), ensure_ascii=False).encode("utf-8")
        tries = 0

        async def attempt() -> Reply:
            nonlocal tries
            tries += 1
            self.attempts += 1
            return await self._post(session, body)

        try:
            return await with_retries(self.config, attempt)
        except asyncio.CancelledError:
            raise
        except RunLevelError as err:
            raise RunLevelError(self.mask(f"request failed after {tries} attempt(s): {err}")) from None
        except Exception as err:  # every failure becomes a counted result
            message = self.mask(f"request failed after {tries} attempt(s): {_describe(err)}")
            log.debug("%s %s", self.config.role, message)
            return Reply(error=message)

    def _count(self, reply: Reply) -> None:
        """Refusals (HTTP 4xx) before any success: the same bad setting is sent with every request."""
        if reply.error is None or reply.failure is not None:
            self._succeeded += 1
        elif reply.error.startswith("request failed after 1 attempt(s): FatalError: HTTP 4"):
            self._refused += 1
            if not self._succeeded and self._refused >= REFUSED_BEFORE_ANY_SUCCESS and self._fatal is None:
                self._fatal = RunLevelError(
                    f"the first {self._refused} requests were all refused and none succeeded; the last: "
                    f"{reply.error} -- a setting sent with every request is probably malformed (judge.extra_body, "
                    "max_tokens, temperature, model)"
                )

    def mask(self, text: str) -> str:
        """The text with the API key replaced (some servers echo it in a 401 body)."""
        return mask(text, self._secret)

    def _body(self, raw: str) -> str:
        return mask(raw, self._secret, BODY_CHARS)

    async def _post(self, session: aiohttp.ClientSession, body: bytes) -> Reply:
        async with session.post(self.url, data=body) as response:
            raw = (await response.read()).decode("utf-8", errors="replace")  # JSON is UTF-8: no sniffing
            status = response.status
            if status == 429 or status >= 500 or status == 408:
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                raise TransientError(f"HTTP {status}: {self._body(raw)}", retry_after=retry_after)
            if status in RUN_LEVEL:
                raise RunLevelError(f"HTTP {status}: {self._body(raw)} -- {RUN_LEVEL[status]}")
            if status >= 400:
                raise FatalError(f"HTTP {status}: {self._body(raw)}")
        try:
            parsed = json.loads(raw)
            choice = parsed["choices"][0]
            message = choice.get("message") or {}
            content, finish = message.get("content"), choice.get("finish_reason")
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            raise TransientError(f"malformed response body: {self._body(raw)!r}") from None
        reply = masked(reply_of(content, finish, message.get("refusal")), self._secret)
        reply.usage = usage_of(parsed)  # a truncated reply was paid for too
        return reply

    def close(self) -> None:
        pass


def chat_payload(config: LLMConfig, request: LLMRequest) -> dict[str, Any]:
    """The ``/chat/completions`` body of one request (the batch backend sends the same body per line).

    ``extra_body`` comes first and cannot set the request's own fields (the settings refuse them up front;
    and whatever it held, the fields below are written over it)."""
    sampling = {k: v for k, v in config.sampling().items() if k != "extra_body"}
    body = {
        **config.extra_body,
        **sampling,
        "model": config.model,
        "messages": request.messages,
        "max_tokens": request.max_tokens or config.max_tokens,
    }
    if request.response_format is not None:
        body["response_format"] = request.response_format
    return body


def masked(reply: Reply, secret: str | None) -> Reply:
    """The reply with the key masked in its text and error (a server that echoes it must not put it in the samples)."""
    if secret:
        reply.text = None if reply.text is None else mask(reply.text, secret)
        reply.error = None if reply.error is None else mask(reply.error, secret)
    return reply


def content_text(content: object) -> str | None:
    """``content`` as text: a string, or the text parts of a list of parts (some servers send those)."""
    if isinstance(content, str) or content is None:
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                texts.append(part["text"])
        return "".join(texts) if texts or not content else None
    return None


def reply_of(content: object, finish_reason: object, refusal: object = None) -> Reply:
    """A completion choice as a :class:`Reply`: complete, truncated (``length``) or filtered.

    Why: a reply cut by the token limit (``{"score": 1`` of a "10") is not a verdict, and a content
    filter's empty answer is a failed request, not an unparseable one; neither may be cached.
    """
    text = content_text(content)
    if finish_reason == "content_filter" or content is None:
        why = f": {refusal}" if isinstance(refusal, str) and refusal else ""
        return Reply(
            text=text,
            error=f"filtered: no answer (content {'null' if content is None else 'withheld'}, "
            f"finish_reason {finish_reason!r}){why}",
            failure=FILTERED,
        )
    if text is None:
        return Reply(error=f"unreadable content of type {type(content).__name__}")
    if finish_reason == "length":
        return Reply(
            text=text, error="truncated: the reply hit the token limit (finish_reason 'length')", failure=TRUNCATED
        )
    return Reply(text=text)


def _describe(err: BaseException) -> str:
    text = str(err)
    return f"{type(err).__name__}: {text}" if text else type(err).__name__
