"""A served model on 127.0.0.1, answering the way vLLM's OpenAI-compatible server does, for lm-eval's
``local-completions`` and ``local-chat-completions`` models.

Real numbers, not canned ones: it loads a Hugging Face causal LM (the tests' tiny model) and computes
every answer with it.

- ``POST /v1/completions``: ``prompt`` as text, a list of texts, token ids or a list of token-id lists.
  With ``echo`` + ``logprobs`` + ``max_tokens=1`` (lm-eval's loglikelihood request) it returns, per
  prompt, vLLM's ``logprobs`` object: ``tokens``, ``token_logprobs`` (``None`` for the first prompt
  token, then log p(token | prefix) for every prompt token and the generated one), ``top_logprobs``
  (the top-``logprobs`` alternatives at each position) and ``text_offset``. Otherwise it generates
  greedily, or samples when ``temperature > 0`` (seeded by the request's ``seed``; none = fresh
  randomness, as vLLM), up to ``max_tokens``, cut before the first ``stop`` string.
- ``POST /v1/chat/completions``: the messages through the tokenizer's chat template, then as above.

It records every generated text (``generations``) so a test can compare them with lm-eval's samples.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from aiohttp import web

from support.loopback import LoopbackServer


class ServedModel(LoopbackServer):
    """``with ServedModel(model_dir) as server: server.base_url`` (``http://127.0.0.1:PORT/v1``)."""

    name = "served-model-standin"
    client_max_size = 64 * 1024 * 1024

    def __init__(self, model_dir: str | Path, max_lifetime: float = 900.0) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
        self.max_lifetime = max_lifetime
        self.counts: Counter[str] = Counter()  # requests per endpoint and kind
        self.generations: list[str] = []
        self.seeds: list[Any] = []  # the ``seed`` of every generation request, as received
        self._init_server()
        self._compute = threading.Lock()  # one model call at a time (torch threads are shared)

    # -- running ---------------------------------------------------------------------------------

    def install(self, app: web.Application) -> None:
        app.router.add_post("/v1/completions", self._completions)
        app.router.add_post("/v1/chat/completions", self._chat)

    # -- handlers --------------------------------------------------------------------------------

    async def _completions(self, request: web.Request) -> web.Response:
        body = await request.json()
        prompts = _prompts(body["prompt"])
        ids = [p if isinstance(p, list) else self.tokenizer(p, add_special_tokens=False).input_ids for p in prompts]
        if body.get("echo") and body.get("logprobs") is not None:
            self.counts["completions:logprobs"] += 1
            k = max(1, int(body["logprobs"]))
            choices = [await self._call(self._echo_choice, i, tokens, k) for i, tokens in enumerate(ids)]
        else:
            self.counts["completions:generate"] += 1
            choices = []
            for i, tokens in enumerate(ids):
                text = await self._call(self._generate, tokens, body)
                choices.append({"index": i, "text": text, "logprobs": None, "finish_reason": "stop"})
        return web.json_response(
            {
                "id": "cmpl-standin",
                "object": "text_completion",
                "model": body.get("model"),
                "choices": choices,
                "usage": {},
            }
        )

    async def _chat(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.counts["chat"] += 1
        tokens = self.tokenizer.apply_chat_template(body["messages"], add_generation_prompt=True, tokenize=False)
        ids = self.tokenizer(tokens, add_special_tokens=False).input_ids
        text = await self._call(self._generate, ids, body)
        message = {"role": "assistant", "content": text}
        return web.json_response(
            {
                "id": "chatcmpl-standin",
                "object": "chat.completion",
                "model": body.get("model"),
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                "usage": {},
            }
        )

    async def _call(self, fn: Any, *args: Any) -> Any:
        def locked() -> Any:
            with self._compute:
                return fn(*args)

        return await asyncio.get_running_loop().run_in_executor(None, locked)

    # -- the model -------------------------------------------------------------------------------

    def _echo_choice(self, index: int, tokens: list[int], k: int) -> dict:
        """vLLM's echo answer: the prompt's token logprobs, then one greedy token with its logprob."""
        import torch

        with torch.no_grad():
            logits = self.model(torch.tensor([tokens])).logits[0].float()
        logp = torch.log_softmax(logits, dim=-1)
        generated = int(logp[-1].argmax())
        sequence = [*tokens, generated]
        token_logprobs: list[float | None] = [None]
        top_logprobs: list[dict | None] = [None]
        for position in range(1, len(sequence)):
            row = logp[position - 1]
            token_logprobs.append(float(row[sequence[position]]))
            values, indices = row.topk(k)
            top = {self.tokenizer.decode([int(i)]): float(v) for v, i in zip(values, indices, strict=True)}
            top_logprobs.append(top)
        pieces = [self.tokenizer.decode([t]) for t in sequence]
        offsets, at = [], 0
        for piece in pieces:
            offsets.append(at)
            at += len(piece)
        logprobs = {
            "tokens": pieces,
            "token_logprobs": token_logprobs,
            "top_logprobs": top_logprobs,
            "text_offset": offsets,
        }
        return {"index": index, "text": "".join(pieces), "logprobs": logprobs, "finish_reason": "length"}

    def _generate(self, tokens: list[int], body: dict) -> str:
        import torch

        temperature = float(body.get("temperature") or 0.0)
        sample = temperature > 0
        if sample and body.get("seed") is not None:
            torch.manual_seed(int(body["seed"]))
        elif sample:
            torch.seed()
        kwargs: dict[str, Any] = {"do_sample": sample}
        if sample:
            kwargs.update(temperature=temperature, top_p=float(body.get("top_p") or 1.0))
        with torch.no_grad():
            out = self.model.generate(
                torch.tensor([tokens]),
                attention_mask=torch.ones(1, len(tokens), dtype=torch.long),
                max_new_tokens=int(body.get("max_tokens") or 16),
                pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
                **kwargs,
            )
        text = self.tokenizer.decode(out[0, len(tokens) :], skip_special_tokens=True)
        stops = body.get("stop") or []
        for stop in [stops] if isinstance(stops, str) else stops:
            if stop and stop in text:
                text = text[: text.index(stop)]
        self.generations.append(text)
        self.seeds.append(body.get("seed", "absent"))
        return text


def _prompts(prompt: Any) -> list:
    """vLLM's accepted shapes: a text, texts, token ids, or lists of token ids."""
    if isinstance(prompt, str):
        return [prompt]
    if isinstance(prompt, list) and prompt and all(isinstance(t, int) for t in prompt):
        return [prompt]
    if isinstance(prompt, list) and prompt:
        return list(prompt)
    raise ValueError(f"unsupported prompt shape: {type(prompt).__name__}")


def judge_verdicts(messages: list[dict]) -> str:
    """A judge's reply to any culturesafe rubric (for the judge stand-in, the *second* server): every
    verdict key at once, each derived from a hash of the prompt, so the same prompt always gets the
    same verdict whichever process or rank sends it."""
    import hashlib
    import json

    text = "\n".join(str(m.get("content", "")) for m in messages)
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return json.dumps(
        {
            "score": 1 + digest[0] % 10,
            "respectfulness": 1 + digest[1] % 10,
            "awareness": 1 + digest[2] % 10,
            "winner": ("A", "B", "tie")[digest[3] % 3],
            "unsafe": bool(digest[4] % 2),
            "truthful": bool(digest[5] % 2),
            "informative": bool(digest[6] % 2),
        }
    )
