"""The OpenAI Batch API on 127.0.0.1: the files and batches endpoints' request and response shapes.

Implements ``POST /v1/files`` (multipart, ``purpose=batch``), ``POST /v1/batches``, ``GET /v1/batches/{id}``
and ``GET /v1/files/{id}/content``, on top of the chat stand-in (same answers, same usage counts), so the
``openai-batch`` backend is tested against real HTTP and never against a mock of our own client.

Scripted outcomes:
- ``polls_until_done``: a batch answers ``in_progress`` to that many polls, then finishes;
- ``expire_first``: the first n batches end ``expired`` with only the first half of their lines answered
  (OpenAI keeps the finished lines of an expired batch in its output file);
- ``line_error_match``: lines whose prompt contains this text fail (status 400 in the error file);
- ``busy_polls``: the first n polls (of any batch) are answered 503 with ``Retry-After: 0``;
- ``hold()`` / ``release()``: keep every batch ``in_progress`` (a test kills the client meanwhile).

It records uploads, created batches, polls and how often each ``custom_id`` was submitted.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from typing import Any

from aiohttp import web

from support.openai_standin import StandIn, usage

ENDPOINT = "/v1/chat/completions"


class BatchStandIn(StandIn):
    """``with BatchStandIn(expire_first=1) as server: server.base_url``."""

    def __init__(
        self,
        polls_until_done: int = 1,
        expire_first: int = 0,
        line_error_match: str | None = None,
        busy_polls: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.polls_until_done = polls_until_done
        self.expire_first = expire_first
        self.line_error_match = line_error_match
        self.busy_polls = busy_polls
        self.busy_answers = 0
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.uploads = 0
        self.polls: Counter[str] = Counter()
        self.submitted: Counter[str] = Counter()  # custom_id -> lines submitted in created batches
        self.batch_auth: Counter[str | None] = Counter()
        self._held = threading.Event()

    def hold(self) -> None:
        self._held.set()

    def release(self) -> None:
        self._held.clear()

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/files", self._upload)
        app.router.add_get("/v1/files/{file_id}/content", self._content)
        app.router.add_post("/v1/batches", self._create)
        app.router.add_get("/v1/batches/{batch_id}", self._retrieve)

    # -- files -----------------------------------------------------------------------------------

    async def _upload(self, request: web.Request) -> web.Response:
        self.batch_auth[request.headers.get("Authorization")] += 1
        form = await request.post()
        upload = form.get("file")
        if form.get("purpose") != "batch" or upload is None or not hasattr(upload, "file"):
            return _error(400, "a batch upload needs purpose=batch and a file")
        content = upload.file.read()
        for number, line in enumerate(content.decode("utf-8").splitlines(), start=1):
            try:
                entry = json.loads(line)
                assert entry["method"] == "POST" and entry["url"] == ENDPOINT and entry["body"]["messages"]
                assert isinstance(entry["custom_id"], str)
            except (ValueError, KeyError, AssertionError, TypeError):
                return _error(400, f"line {number} of the batch file is not a chat-completions request")
        with self._lock:
            self.uploads += 1
            file_id = f"file-{len(self.files) + 1:04d}"
            self.files[file_id] = content
        return web.json_response(_file_object(file_id, content, upload.filename, "batch"))

    async def _content(self, request: web.Request) -> web.Response:
        content = self.files.get(request.match_info["file_id"])
        if content is None:
            return _error(404, "no such file")
        return web.Response(body=content, content_type="application/octet-stream")

    # -- batches ---------------------------------------------------------------------------------

    async def _create(self, request: web.Request) -> web.Response:
        self.batch_auth[request.headers.get("Authorization")] += 1
        body = await request.json()
        file_id = body.get("input_file_id")
        if file_id not in self.files or body.get("endpoint") != ENDPOINT or not body.get("completion_window"):
            return _error(400, "input_file_id, endpoint /v1/chat/completions and completion_window are required")
        lines = [json.loads(x) for x in self.files[file_id].decode("utf-8").splitlines() if x.strip()]
        with self._lock:
            batch_id = f"batch_{len(self.batches) + 1:04d}"
            self.submitted.update(x["custom_id"] for x in lines)
            self.batches[batch_id] = {
                "id": batch_id,
                "object": "batch",
                "endpoint": ENDPOINT,
                "errors": None,
                "input_file_id": file_id,
                "completion_window": body["completion_window"],
                "status": "validating",
                "output_file_id": None,
                "error_file_id": None,
                "created_at": int(time.time()),
                "request_counts": {"total": len(lines), "completed": 0, "failed": 0},
                "metadata": body.get("metadata"),
            }
        return web.json_response(self.batches[batch_id])

    async def _retrieve(self, request: web.Request) -> web.Response:
        batch = self.batches.get(request.match_info["batch_id"])
        if batch is None:
            return _error(404, "no such batch")
        with self._lock:
            busy = self.busy_answers < self.busy_polls
            self.busy_answers += busy
        if busy:
            response = _error(503, "overloaded, try again")
            response.headers["Retry-After"] = "0"
            return response
        with self._lock:
            self.polls[batch["id"]] += 1
            polls = self.polls[batch["id"]]
        if batch["status"] in ("validating", "in_progress"):
            if self._held.is_set() or polls <= self.polls_until_done:
                batch["status"] = "in_progress"
            else:
                self._finish(batch)
        return web.json_response(batch)

    def _finish(self, batch: dict[str, Any]) -> None:
        """Answer the batch's lines (half of them when it expires), writing its output and error files."""
        lines = [json.loads(x) for x in self.files[batch["input_file_id"]].decode("utf-8").splitlines() if x.strip()]
        expire = int(batch["id"].split("_")[1]) <= self.expire_first
        answered = lines[: len(lines) // 2] if expire else lines
        output, errors = [], []
        for n, line in enumerate(answered):
            messages = line["body"]["messages"]
            result = {"id": f"batch_req_{batch['id']}_{n}", "custom_id": line["custom_id"], "error": None}
            text = "\n".join(str(m.get("content", "")) for m in messages)
            if self.line_error_match and self.line_error_match in text:
                body = {"error": {"message": "the prompt was flagged", "type": "invalid_request_error"}}
                result["response"] = {"status_code": 400, "request_id": f"req_{n}", "body": body}
                errors.append(result)
                continue
            content = self.responder(messages) if self.responder else self.answer(messages)
            choice = {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
            body = {
                "id": f"chatcmpl-{batch['id']}-{n}",
                "object": "chat.completion",
                "model": line["body"].get("model"),
                "choices": [choice],
                "usage": usage(messages, content),
            }
            result["response"] = {"status_code": 200, "request_id": f"req_{n}", "body": body}
            output.append(result)
        with self._lock:
            for name, rows in (("output_file_id", output), ("error_file_id", errors)):
                if rows:
                    file_id = f"file-{len(self.files) + 1:04d}"
                    self.files[file_id] = "".join(json.dumps(r) + "\n" for r in rows).encode("utf-8")
                    batch[name] = file_id
        batch["status"] = "expired" if expire else "completed"
        batch["request_counts"] = {"total": len(lines), "completed": len(output), "failed": len(errors)}


def _file_object(file_id: str, content: bytes, filename: str, purpose: str) -> dict[str, Any]:
    return {
        "id": file_id,
        "object": "file",
        "bytes": len(content),
        "created_at": int(time.time()),
        "filename": filename,
        "purpose": purpose,
    }


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": {"message": message, "type": "invalid_request_error"}}, status=status)
