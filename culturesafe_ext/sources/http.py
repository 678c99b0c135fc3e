"""The one HTTP layer of the sources package: an aiohttp session, tenacity retries, a size cap, masked errors.

Why like the LLM client (:mod:`culturesafe_ext.llm.backends.openai_http`): bare aiohttp kept 0.93 of the ideal
throughput at 32 requests in flight where httpx kept 0.81 (design.md). A request's first attempt is a plain call;
only a failure builds tenacity's retry state: 429 (honouring ``Retry-After``), 408, 5xx and dropped connections
are retried with full-jitter exponential backoff; 400/401/403/404 cannot succeed and raise :class:`Refused` at once
with the server's message, the key masked *then* cut to :data:`BODY_CHARS`.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt

# What this package shares with the LLM client: imported here only, so a rename there is a one-line fix.
from culturesafe_ext.llm.backends.openai_http import run_sync  # noqa: F401 - run_sync re-exported
from culturesafe_ext.llm.retry import parse_retry_after
from culturesafe_ext.sources.settings import SourcesSettings

BODY_CHARS = 300  # of a server's error body kept in a message (after masking the key)
REFUSED = (400, 401, 403, 404)  # cannot succeed on retry: stop at once


class TransientError(Exception):
    """Worth retrying (429, 408, 5xx); ``retry_after`` from the server if it sent one."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Refused(Exception):
    """An HTTP status retrying cannot fix (400/401/403/404, or another 4xx); the message is masked and cut."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class OverSizeCap(Exception):
    """The body grew past ``max_bytes``: reading stopped there."""


RETRYABLE = (TransientError, aiohttp.ClientError, asyncio.TimeoutError, TimeoutError, ConnectionError)


def mask(text: str, secret: str | None) -> str:
    """``text`` with the key replaced (some servers echo it in a 401 body): mask *then* cut, never the reverse."""
    return text.replace(secret, "[API key]") if secret else text


def cut(text: str, secret: str | None, limit: int = BODY_CHARS) -> str:
    masked = mask(text, secret)
    return masked if len(masked) <= limit else masked[:limit] + "..."


@dataclass(frozen=True)
class Response:
    status: int
    url: str
    content_type: str  # media type only, lower case ("text/html")
    charset: str | None
    body: bytes


class HttpClient:
    """One session per event loop, created on first use; ``requests`` counts every attempt sent."""

    def __init__(self, settings: SourcesSettings, headers: Mapping[str, str] | None = None, secret: str | None = None):
        self.settings = settings
        self.headers = {"User-Agent": settings.user_agent, **(headers or {})}
        self.secret = secret
        self.requests = 0
        self._session: aiohttp.ClientSession | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            limit = self.settings.concurrency
            connector = aiohttp.TCPConnector(limit=limit, limit_per_host=limit)
            timeout = aiohttp.ClientTimeout(total=self.settings.timeout)
            self._session = aiohttp.ClientSession(connector=connector, timeout=timeout, headers=self.headers)
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(
        self, method: str, url: str, *, params: Mapping[str, Any] | None = None, json_body: Any = None,
        max_bytes: int | None = None,
    ) -> Response:  # fmt: skip
        """Send with retries; a 2xx/3xx :class:`Response`, else :class:`Refused`, :class:`OverSizeCap`, or the
        last transient error once the retries run out (its message masked)."""
        tries = 0

        async def attempt() -> Response:
            nonlocal tries
            tries += 1
            return await self._once(method, url, params, json_body, max_bytes)

        try:
            try:  # fast path: most requests succeed at once and never touch the retry machinery
                return await attempt()
            except RETRYABLE as first:
                if self.settings.max_retries == 0:
                    raise
                await asyncio.sleep(self._delay(first, 1))
            retrying = AsyncRetrying(
                stop=stop_after_attempt(self.settings.max_retries),
                wait=lambda state: self._delay(state.outcome.exception() if state.outcome else None, tries),
                retry=retry_if_exception_type(RETRYABLE),
                reraise=True,
            )
            async for retry in retrying:
                with retry:
                    response = await attempt()
            return response
        except (Refused, OverSizeCap, asyncio.CancelledError):
            raise
        except RETRYABLE as err:
            text = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
            raise TransientError(cut(f"failed after {tries} attempt(s): {text}", self.secret, 2 * BODY_CHARS)) from None

    async def _once(
        self, method: str, url: str, params: Mapping[str, Any] | None, json_body: Any, max_bytes: int | None
    ) -> Response:
        self.requests += 1
        session = self._get_session()
        async with session.request(method, url, params=params, json=json_body) as response:
            status = response.status
            if status >= 400:
                raw = (await response.content.read(64 * 1024)).decode("utf-8", errors="replace")
                if status in (408, 429) or status >= 500:
                    retry_after = parse_retry_after(response.headers.get("Retry-After"))
                    raise TransientError(f"HTTP {status}: {cut(raw, self.secret)}", retry_after=retry_after)
                raise Refused(status, f"HTTP {status} from {url}: {cut(raw, self.secret)}")
            body = await _read_capped(response, max_bytes)
            return Response(
                status=status,
                url=str(response.url),
                content_type=(response.content_type or "").lower(),
                charset=response.charset,
                body=body,
            )

    def _delay(self, error: BaseException | None, failed: int) -> float:
        retry_after = getattr(error, "retry_after", None)
        cap = self.settings.retry_wait_max
        if retry_after is not None:
            return min(retry_after, cap)
        return random.uniform(0, min(cap, self.settings.retry_wait_initial * 2 ** (failed - 1)))


async def _read_capped(response: aiohttp.ClientResponse, max_bytes: int | None) -> bytes:
    """The body, or :class:`OverSizeCap` as soon as it passes ``max_bytes`` (a declared length is checked first)."""
    if max_bytes is None:
        return await response.read()
    declared = response.content_length
    if declared is not None and declared > max_bytes:
        raise OverSizeCap(f"Content-Length {declared} bytes > max_bytes {max_bytes}")
    chunks, size = [], 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > max_bytes:
            raise OverSizeCap(f"body passed max_bytes {max_bytes} (stopped reading at {size} bytes)")
        chunks.append(chunk)
    return b"".join(chunks)
