"""The OpenAI Batch API as an LLM backend (``backend: openai-batch``): half the price, hours not seconds.

Protocol (https://platform.openai.com/docs/api-reference/batch): every request becomes one JSONL line
``{"custom_id": <cache key>, "method": "POST", "url": "/v1/chat/completions", "body": <the same body the
openai backend sends>}``; the file is uploaded through ``POST /files`` (``purpose=batch``), a batch is
created with ``POST /batches``, polled with ``GET /batches/{id}`` (exponential back-off from
``batch_poll_initial`` to ``batch_poll_max``), and its output and error files are read through
``GET /files/{id}/content`` and matched to the requests by ``custom_id``.

Why a state file per batch in the cache folder (``<cache dir>/batches/``): a batch is paid for when it is
created, not when its results are read. The state is written right after the upload (file id) and again
after the batch is created (batch id), so a run killed at any point resumes that upload or that batch on
the next run instead of paying twice. It holds ids and cache keys only, never a prompt or the API key.

Large runs: a file holds at most ``batch_max_lines`` requests (50,000, the API's limit) and
``batch_max_bytes``; more make several batches, submitted together and polled concurrently.

Outcomes: a line with an ``error`` or a non-2xx ``status_code`` is a counted failure of that request
(not re-sent in the same run; the next run retries it, as failures are not cached). An ``expired``,
``failed`` or ``cancelled`` batch keeps the lines it did finish, and only what is missing is re-submitted,
at most ``batch_max_submissions`` batches per call.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import aiohttp

from culturesafe_ext.llm.backends.base import LLMRequest, LLMRunError, OnDone, Reply, usage_of
from culturesafe_ext.llm.backends.openai_http import chat_payload, reply_of, run_sync, sampling_params
from culturesafe_ext.llm.retry import RETRYABLE, TransientError, parse_retry_after, with_retries
from culturesafe_ext.llm.settings import LLMConfig

log = logging.getLogger("culturesafe.llm")

CHAT_ENDPOINT = "/v1/chat/completions"
TERMINAL = ("completed", "failed", "expired", "cancelled")
STATE_DIR = "batches"


class BatchAPIError(Exception):
    """A call of the files or batches API failed for good (after retries for 429 / 5xx / network)."""


class OpenAIBatchBackend:
    """The ``openai-batch`` backend."""

    name = "openai-batch"

    def __init__(self, config: LLMConfig, state_dir: Path | None = None) -> None:
        self.config = config
        self.base = (config.base_url or "").rstrip("/")
        if self.base.endswith("/chat/completions"):
            self.base = self.base[: -len("/chat/completions")]
        self.state_dir = state_dir or config.resolved_cache_path().parent / STATE_DIR
        self.batches_created = 0  # by this backend object (tests and the log read it)
        self._secret: str | None = None

    def params(self) -> dict[str, Any]:
        """The same sampling parameters as the ``openai`` backend: a batch reply is the same answer."""
        return sampling_params(self.config)

    def complete(self, requests: Sequence[LLMRequest], on_done: OnDone) -> None:
        if requests:
            run_sync(lambda: self.acomplete(requests, on_done))

    def close(self) -> None:
        pass

    # -- the protocol ----------------------------------------------------------------------------

    async def acomplete(self, requests: Sequence[LLMRequest], on_done: OnDone) -> None:
        """Resume this endpoint's open batches that hold some of ``requests``, then submit the rest."""
        remaining = {r.key: r for r in requests}
        headers = {}
        key = self.config.api_key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self._secret = key
        timeout = aiohttp.ClientTimeout(total=self.config.timeout)
        async with aiohttp.ClientSession(timeout=timeout, headers=headers) as session:
            try:
                resumed = self._open_states(remaining)
                for state in resumed:
                    log.info("batch API: resuming batch %s", state.get("batch_id") or state["input_file_id"])
                await asyncio.gather(*(self._resume(session, s, remaining, on_done) for s in resumed))
                submissions = 0
                while remaining and submissions < self.config.batch_max_submissions:
                    submissions += 1
                    states = [await self._submit(session, lines) for lines in self._files(remaining)]
                    await asyncio.gather(*(self._finish(session, s, remaining, on_done) for s in states))
            except (BatchAPIError, aiohttp.ClientError, asyncio.TimeoutError) as err:
                message = self._clean(f"batch API: {type(err).__name__}: {err}")
                log.warning("%s", message)
                for request in list(remaining.values()):
                    on_done(request, Reply(error=message))
                remaining.clear()
        for request in remaining.values():
            on_done(
                request,
                Reply(error=f"no batch result after {self.config.batch_max_submissions} submission(s)"),
            )

    def _files(self, remaining: dict[str, LLMRequest]) -> list[list[tuple[str, bytes]]]:
        """The remaining requests as JSONL lines ``(custom_id, line)``, cut into files within the API's limits."""
        files: list[list[tuple[str, bytes]]] = [[]]
        size = 0
        for request in remaining.values():
            line = json.dumps(
                {
                    "custom_id": request.key,
                    "method": "POST",
                    "url": CHAT_ENDPOINT,
                    "body": chat_payload(self.config, request),
                },
                ensure_ascii=False,
            ).encode("utf-8")
            full = len(files[-1]) >= self.config.batch_max_lines or size + len(line) + 1 > self.config.batch_max_bytes
            if files[-1] and full:
                files.append([])
                size = 0
            files[-1].append((request.key, line))
            size += len(line) + 1
        return [f for f in files if f]

    async def _resume(
        self, session: aiohttp.ClientSession, state: dict[str, Any], remaining: dict[str, LLMRequest], on_done: OnDone
    ) -> None:
        """Finish a saved batch; one the server no longer knows (404) is forgotten and its requests re-sent."""
        try:
            await self._finish(session, state, remaining, on_done)
        except LLMRunError as err:
            if "HTTP 404" not in str(err):
                raise
            log.warning("batch API: the saved batch %s is unknown to the server; its requests are sent again", state)
            self._forget(state)

    async def _submit(self, session: aiohttp.ClientSession, lines: list[tuple[str, bytes]]) -> dict[str, Any]:
        """Upload one JSONL file of ``(custom_id, line)``; the state is saved before the batch is created."""
        content = b"".join(line + b"\n" for _, line in lines)
        filename = f"culturesafe-{uuid.uuid4().hex[:12]}.jsonl"

        def form() -> dict[str, Any]:  # a FormData is consumed when sent: one per attempt
            data = aiohttp.FormData()
            data.add_field("purpose", "batch")
            data.add_field("file", content, filename=filename, content_type="application/jsonl")
            return {"data": data}

        uploaded = await self._call(session, "POST", f"{self.base}/files", build=form)
        state = {
            "base_url": self.base,
            "model": self.config.model,
            "input_file_id": uploaded["id"],
            "batch_id": None,
            "custom_ids": [key for key, _ in lines],
            "created": time.time(),
        }
        self._save(state)
        return state

    async def _finish(
        self, session: aiohttp.ClientSession, state: dict[str, Any], remaining: dict[str, LLMRequest], on_done: OnDone
    ) -> None:
        """Create the batch if the upload has none yet, poll it to the end, deliver its lines."""
        if not state.get("batch_id"):
            created = await self._call(
                session,
                "POST",
                f"{self.base}/batches",
                json={
                    "input_file_id": state["input_file_id"],
                    "endpoint": CHAT_ENDPOINT,
                    "completion_window": self.config.batch_completion_window,
                    "metadata": {"source": "culturesafe"},
                },
            )
            state["batch_id"] = created["id"]
            self.batches_created += 1
            self._save(state)
        batch = await self._poll(session, state["batch_id"])
        if batch is None:  # still running after batch_max_wait: leave it for the next run
            message = (
                f"batch {state['batch_id']} still running after {self.config.batch_max_wait:g} s: re-run to "
                "collect it (the next run resumes it, no new batch is created)"
            )
            for key in state["custom_ids"]:
                if key in remaining:
                    on_done(remaining.pop(key), Reply(error=message))
            return
        status = batch.get("status")
        delivered = 0
        for file_field in ("output_file_id", "error_file_id"):
            if batch.get(file_field):
                text = await self._call(session, "GET", f"{self.base}/files/{batch[file_field]}/content", raw=True)
                delivered += self._deliver(text, batch["id"], remaining, on_done)
        if status != "completed":
            errors = batch.get("errors") or {}
            log.warning(
                "batch API: batch %s ended %s with %d of %d lines answered%s; re-submitting what is missing",
                batch["id"],
                status,
                delivered,
                len(state["custom_ids"]),
                f" ({json.dumps(errors)[:300]})" if errors else "",
            )
        self._forget(state)

    async def _poll(self, session: aiohttp.ClientSession, batch_id: str) -> dict[str, Any] | None:
        """The batch once it reaches a terminal status; ``None`` when ``batch_max_wait`` ran out first."""
        delay, started = self.config.batch_poll_initial, time.monotonic()
        while True:
            batch = await self._call(session, "GET", f"{self.base}/batches/{batch_id}")
            if batch.get("status") in TERMINAL:
                return batch
            waited = time.monotonic() - started
            if self.config.batch_max_wait is not None and waited + delay > self.config.batch_max_wait:
                return None
            log.debug("batch API: batch %s is %s; next poll in %.1f s", batch_id, batch.get("status"), delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.config.batch_poll_max)

    def _deliver(self, text: str, batch_id: str, remaining: dict[str, LLMRequest], on_done: OnDone) -> int:
        """Hand each line of an output or error file to ``on_done``; returns how many matched a request."""
        n = 0
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                custom_id = entry["custom_id"]
            except (ValueError, KeyError, TypeError):
                log.warning("batch API: batch %s line %d is not a result line: %r", batch_id, number, line[:200])
                continue
            request = remaining.pop(custom_id, None)
            if request is None:
                continue
            n += 1
            on_done(request, self._reply(entry, batch_id))
        return n

    def _reply(self, entry: dict[str, Any], batch_id: str) -> Reply:
        """One result line as a reply: the completion's text and usage, or a counted error."""
        response = entry.get("response") or {}
        body = response.get("body") if isinstance(response, dict) else None
        status = response.get("status_code") if isinstance(response, dict) else None
        if entry.get("error") or status is None or not 200 <= int(status) < 300:
            detail = entry.get("error") or (body or {}).get("error") or body
            return Reply(error=self._clean(f"batch {batch_id} line failed (HTTP {status}): {json.dumps(detail)[:300]}"))
        try:
            choice = body["choices"][0]
            message = choice.get("message") or {}
        except (KeyError, IndexError, TypeError, AttributeError):
            return Reply(error=f"batch {batch_id}: malformed result body: {json.dumps(body)[:200]}")
        reply = reply_of(message.get("content"), choice.get("finish_reason"), message.get("refusal"))
        reply.usage = usage_of(body)  # the same rules as the openai backend: truncated, filtered, complete
        return reply

    # -- HTTP with retries for transient failures ------------------------------------------------

    async def _call(
        self,
        session: aiohttp.ClientSession,
        method: str,
        url: str,
        raw: bool = False,
        build: Callable[[], dict[str, Any]] | None = None,
        **kwargs: Any,
    ) -> Any:
        """One API call; 429, 5xx and dropped connections are retried (:mod:`culturesafe_ext.llm.retry`)."""
        attempts = 0

        async def attempt() -> Any:
            nonlocal attempts
            attempts += 1
            async with session.request(method, url, **(build() if build else kwargs)) as response:
                text = (await response.read()).decode("utf-8", errors="replace")
                status = response.status
                if status == 429 or status >= 500:
                    retry_after = parse_retry_after(response.headers.get("Retry-After"))
                    raise TransientError(f"HTTP {status} from {method} {url}: {text[:200]}", retry_after=retry_after)
                if status in (401, 403, 404):  # no request of the run can succeed: stop it
                    raise LLMRunError(self._clean(f"HTTP {status} from {method} {url}: {text[:300]}"))
                if status >= 400:
                    raise BatchAPIError(self._clean(f"HTTP {status} from {method} {url}: {text[:300]}"))
            try:
                return text if raw else json.loads(text)
            except ValueError:
                raise BatchAPIError(f"{method} {url} answered something that is not JSON") from None

        try:
            return await with_retries(self.config, attempt)
        except RETRYABLE as err:
            problem = str(err) if isinstance(err, TransientError) else f"{type(err).__name__} on {method} {url}"
            raise BatchAPIError(self._clean(f"{problem} (after {attempts} attempts)")) from None

    def _clean(self, message: str) -> str:
        return message.replace(self._secret, "[API key]") if self._secret else message

    # -- state files -----------------------------------------------------------------------------

    def _state_path(self, state: dict[str, Any]) -> Path:
        return self.state_dir / f"{state['input_file_id']}.json"

    def _save(self, state: dict[str, Any]) -> None:
        """Write the state atomically (a kill mid-write leaves the old file, never half a file)."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        path = self._state_path(state)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state), encoding="utf-8")
        tmp.replace(path)

    def _forget(self, state: dict[str, Any]) -> None:
        self._state_path(state).unlink(missing_ok=True)

    def _open_states(self, wanted: dict[str, LLMRequest]) -> list[dict[str, Any]]:
        """Saved batches of this endpoint and model that hold some of the wanted requests, oldest first."""
        if not self.state_dir.is_dir():
            return []
        states = []
        for path in sorted(self.state_dir.glob("*.json")):
            try:
                state = json.loads(path.read_text(encoding="utf-8"))
            except ValueError:
                log.warning("batch API: ignoring the unreadable batch state file %s", path)
                continue
            same = state.get("base_url") == self.base and state.get("model") == self.config.model
            if same and any(key in wanted for key in state.get("custom_ids", ())):
                states.append(state)
        return sorted(states, key=lambda s: s.get("created", 0))
