"""The one HTTP layer of the sources package: an aiohttp session, tenacity retries, a size cap, masked errors.

Why like the LLM client (:mod:`culturesafe_ext.llm.backends.openai_http`): bare aiohttp kept 0.93 of the ideal
throughput at 32 requests in flight where httpx kept 0.81 (design.md). Retries follow the project's one
policy, :mod:`culturesafe_ext.llm.retry` (429 honouring ``Retry-After``, 408, 5xx and dropped connections, full-jitter
exponential backoff, ``max_retries``/``retry_wait_*`` from :class:`SourcesSettings`); 400/401/403/404 cannot succeed
and raise :class:`Refused` at once with the server's message, the key masked *then* cut to :data:`BODY_CHARS`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

# What this package shares with the LLM client: imported here only, so a rename there is a one-line fix.
from culturesafe_ext.llm.backends.openai_http import run_sync  # noqa: F401 - run_sync re-exported
from culturesafe_ext.llm.retry import RETRYABLE, TransientError, parse_retry_after, with_retries
from culturesafe_ext.sources.settings import SourcesSettings

BODY_CHARS = 300  # of a server's error body kept in a message (after masking the key)
REFUSED = (400, 401, 403, 404)  # cannot succeed on retry: stop at once


class Refused(Exception):
    """An HTTP status retrying cannot fix (400/401/403/404, or another 4xx); the message is masked and cut."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class OverSizeCap(Exception):
    """The body grew past ``max_bytes``: reading stopped there."""


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
            return await with_retries(self.settings, attempt)
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
