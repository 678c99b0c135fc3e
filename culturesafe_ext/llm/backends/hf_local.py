"""A local transformers causal LM: free text by ``generate``, and ``score`` requests read from one forward pass.

A score request's prompt is the messages in the tokenizer's chat template (if it has one) followed by the start
of the answer, the :class:`ScoreScale`'s ``prefix`` (the judge's is ``{"score":``). The next-token
probabilities of the scale's labels (the judge's are "1".."10") are renormalised over the labels and handed
back in order; the caller makes its score of them (``mass`` is the probability the model put on a label at all).

The last label: when the tokenizer has a single token for it, it is read like the others. When it is the first
label's token followed by one more (the judge's "10" is "1" then "0" in digit-splitting tokenizers such as
Llama 3, Qwen, SmolLM), a second, cached one-token step reads P("0" | "1"): P(10) = P("1")·P("0"|"1") and
P(1) = P("1")·(1 - P("0"|"1")), i.e. whatever follows a "1" other than "0" is read as the first label. Tokens
that all labels share (a leading space token) are appended to the prompt first. Rows are left-padded, with
explicit position ids, so a batch gives the same scores as one-by-one calls.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from culturesafe_ext.llm.backends.base import GENERATE, TRUNCATED, LLMRequest, OnDone, Reply, ScoreScale
from culturesafe_ext.llm.settings import LLMConfig

log = logging.getLogger("culturesafe.llm")


@dataclass(frozen=True)
class ScoreTokens:
    """Where a scale's labels sit in the vocabulary after its prefix."""

    shared: tuple[int, ...]
    first: tuple[int, ...]
    ten_second: int | None

    @property
    def two_step(self) -> bool:
        return self.ten_second is not None


def find_score_tokens(tokenizer: Any, scale: ScoreScale) -> ScoreTokens:
    """Work out the label tokens from how the tokenizer encodes ``prefix + " 7"`` (or ``"7"``)."""
    prefix, labels = scale.prefix, scale.labels
    n = len(labels) - 1  # labels before the last
    base = tokenizer.encode(prefix, add_special_tokens=False)
    for space in (" ", ""):
        conts = []
        for label in labels:
            full = tokenizer.encode(prefix + space + label, add_special_tokens=False)
            conts.append(full[len(base) :] if full[: len(base)] == base else None)
        if any(c is None for c in conts):
            continue
        n_shared = 0
        while (
            all(len(c) > n_shared + 1 for c in conts[:n])
            and len(conts[n]) > n_shared + 1
            and len({c[n_shared] for c in conts}) == 1
        ):
            n_shared += 1
        rest = [tuple(c[n_shared:]) for c in conts]
        singles = [r[0] for r in rest[:n] if len(r) == 1]
        if len(set(singles)) != n:
            continue
        ten = rest[n]
        if len(ten) == 1 and ten[0] not in singles:
            return ScoreTokens(tuple(conts[0][:n_shared]), (*singles, ten[0]), None)
        if len(ten) == 2 and ten[0] == singles[0]:
            return ScoreTokens(tuple(conts[0][:n_shared]), (*singles, ten[0]), ten[1])
    raise ValueError(
        f"cannot find single tokens for the labels {labels[0]}..{labels[n - 1]} after {prefix!r} in this tokenizer"
    )


class HFBackend:
    """The ``hf`` backend (batched, left padding); ``scale``: what ``score`` requests read (None: none are asked)."""

    name = "hf"

    def __init__(
        self, config: LLMConfig, model: Any = None, tokenizer: Any = None, scale: ScoreScale | None = None
    ) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.config = config
        self.device = config.device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer = tokenizer or AutoTokenizer.from_pretrained(config.model)
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        if model is None:
            model = AutoModelForCausalLM.from_pretrained(config.model, dtype="auto").to(self.device)
        self.model = model.eval()
        self.scale = scale
        self.tokens = find_score_tokens(self.tokenizer, scale) if scale is not None else None
        self.attempts = 0
        self._last_logits_only = True

    def params(self) -> dict[str, Any]:
        """What besides the model name decides the answers: the method, the chat template, the scale's tokens."""
        template = getattr(self.tokenizer, "chat_template", None) or ""
        params: dict[str, Any] = {
            "method": "score-token-probabilities",
            "chat_template": hashlib.sha256(template.encode("utf-8")).hexdigest()[:16],
            "render": "untrusted-text-never-special",  # prompts are tokenised so (see render)
        }
        if self.scale is not None and self.tokens is not None:
            params["prefix"] = self.scale.prefix
            params["score_tokens"] = [list(self.tokens.shared), list(self.tokens.first), self.tokens.ten_second]
        return params

    def render(self, messages: list[dict[str, str]], answer_prefix: bool = True) -> list[int]:
        """Token ids of the prompt, ending where the scale's label goes (or, without ``answer_prefix``, where
        the assistant's free answer starts).

        The messages carry untrusted text (the judged answer, the user's query): it is tokenised with
        ``split_special_tokens=True``, so an answer containing ``<|im_end|><|im_start|>assistant`` stays
        plain text and never becomes real turn tokens. Only the chat template's own markup is parsed for
        special tokens: each message's content is swapped for a sentinel, the template rendered, and the
        pieces tokenised apart.
        """
        tokenizer = self.tokenizer
        if answer_prefix and (self.scale is None or self.tokens is None):
            raise ValueError("a score request needs the backend's ScoreScale (what the answer starts with)")
        shared = list(self.tokens.shared) if answer_prefix and self.tokens is not None else []
        tail = self.scale.prefix if answer_prefix and self.scale is not None else ""
        if not getattr(tokenizer, "chat_template", None):
            text = "\n\n".join(m["content"] for m in messages) + "\n\n" + tail
            ids = tokenizer.encode(text, add_special_tokens=True, split_special_tokens=True)
            return [*ids, *shared]
        nonce = secrets.token_hex(6)
        marks = [f"\ue000{nonce}{i}\ue001" for i in range(len(messages))]
        masked = [{**m, "content": mark} for m, mark in zip(messages, marks, strict=True)]
        try:
            text = tokenizer.apply_chat_template(masked, tokenize=False, add_generation_prompt=True)
            contents = [m["content"] for m in messages]
        except Exception:  # templates without a system role: fold it into the user turn
            merged = "\n\n".join(m["content"] for m in messages)
            text = tokenizer.apply_chat_template(
                [{"role": "user", "content": marks[0]}], tokenize=False, add_generation_prompt=True
            )
            contents, marks = [merged], marks[:1]
        pieces = re.split("(" + "|".join(map(re.escape, marks)) + ")", text + tail)
        if sorted(p for p in pieces if p in marks) != sorted(marks):
            raise ValueError("the chat template does not place each message's content verbatim: cannot keep it plain")
        ids: list[int] = []
        for piece in pieces:
            if piece in marks:
                content = contents[marks.index(piece)]
                ids += tokenizer.encode(content, add_special_tokens=False, split_special_tokens=True)
            elif piece:
                ids += tokenizer.encode(piece, add_special_tokens=False)
        return [*ids, *shared]

    def complete(self, requests: Sequence[LLMRequest], on_done: OnDone) -> None:
        scored = [r for r in requests if r.mode != GENERATE]
        generated = [r for r in requests if r.mode == GENERATE]
        if scored:
            self._complete_scores(scored, on_done)
        if generated:
            self._complete_texts(generated, on_done)

    def _complete_texts(self, requests: Sequence[LLMRequest], on_done: OnDone) -> None:
        """Free-text answers: batched greedy (or sampled, per ``temperature``) ``generate``."""
        prompts = [self.render(r.messages, answer_prefix=False) for r in requests]
        order = sorted(range(len(requests)), key=lambda i: len(prompts[i]))
        size = self.config.batch_size
        for start in range(0, len(order), size):
            batch = order[start : start + size]
            self.attempts += len(batch)
            limit = max(requests[i].max_tokens or self.config.max_tokens for i in batch)
            try:
                texts, cut, lengths = self.generate_ids([prompts[i] for i in batch], limit, return_cut=True)
            except Exception as err:
                log.warning("hf generation batch failed: %s", err)
                for i in batch:
                    on_done(requests[i], Reply(error=f"hf generation failed: {type(err).__name__}: {err}"))
                continue
            for row, i in enumerate(batch):
                usage = {"prompt_tokens": len(prompts[i]), "completion_tokens": lengths[row]}
                if cut[row]:  # the same rule as finish_reason "length": not a complete reply
                    error = f"truncated: the reply hit the token limit ({limit} new tokens, no end token)"
                    on_done(requests[i], Reply(text=texts[row], error=error, failure=TRUNCATED, usage=usage))
                else:
                    on_done(requests[i], Reply(text=texts[row], usage=usage))

    def generate_ids(self, rows: list[list[int]], max_new_tokens: int, return_cut: bool = False) -> Any:
        """Decode a continuation of each left-padded prompt (and, with ``return_cut``, which rows ran
        out of tokens before an end-of-sequence token, and how many tokens each generated, its end token
        included: the ``completion_tokens`` a server would report)."""
        import torch

        ids, mask = self._left_pad(rows)
        sample = self.config.temperature > 0
        kwargs: dict[str, Any] = {"do_sample": sample, "max_new_tokens": max_new_tokens}
        if sample:
            kwargs["temperature"] = self.config.temperature
        with torch.inference_mode():
            out = self.model.generate(
                input_ids=ids, attention_mask=mask, pad_token_id=self.tokenizer.pad_token_id, **kwargs
            )
        new = out[:, ids.shape[1] :]
        texts = self.tokenizer.batch_decode(new, skip_special_tokens=True)
        if not return_cut:
            return texts
        ends = self._end_ids()
        cut = [new.shape[1] >= max_new_tokens and not any(int(t) in ends for t in row) for row in new]
        lengths = [next((k + 1 for k, t in enumerate(row.tolist()) if t in ends), len(row)) for row in new]
        return texts, cut, lengths

    def _end_ids(self) -> set[int]:
        """Token ids that end a reply: the generation config's eos id(s) and the tokenizer's."""
        ends: set[int] = set()
        for value in (getattr(getattr(self.model, "generation_config", None), "eos_token_id", None),
                      self.tokenizer.eos_token_id):  # fmt: skip
            ends.update(value if isinstance(value, list) else [] if value is None else [value])
        return ends

    def _left_pad(self, rows: list[list[int]]) -> tuple[Any, Any]:
        import torch

        pad = self.tokenizer.pad_token_id
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for n, row in enumerate(rows):
            ids[n, width - len(row) :] = torch.tensor(row)
            mask[n, width - len(row) :] = 1
        return ids.to(self.device), mask.to(self.device)

    def _complete_scores(self, requests: Sequence[LLMRequest], on_done: OnDone) -> None:
        prompts = [self.render(r.messages) for r in requests]
        order = sorted(range(len(requests)), key=lambda i: len(prompts[i]))  # similar lengths, less padding
        size = self.config.batch_size
        for start in range(0, len(order), size):
            batch = order[start : start + size]
            self.attempts += len(batch)
            try:
                probs, mass = self.score_ids([prompts[i] for i in batch])
            except Exception as err:  # a failed batch is counted, the others still run
                log.warning("hf %s batch failed: %s", self.config.role, err)
                for i in batch:
                    on_done(requests[i], Reply(error=f"hf {self.config.role} failed: {type(err).__name__}: {err}"))
                continue
            for row, i in enumerate(batch):  # a score is read from the next-token distribution: nothing generated
                usage = {"prompt_tokens": len(prompts[i]), "completion_tokens": 0}
                on_done(requests[i], Reply(probs=probs[row], mass=mass[row], usage=usage))

    def score_ids(self, rows: list[list[int]]) -> tuple[list[list[float]], list[float]]:
        """Renormalised P(label) in the scale's order and the raw mass on the labels, for each prompt."""
        import torch

        if self.tokens is None:
            raise ValueError("a score request needs the backend's ScoreScale")
        last = len(self.tokens.first) - 1
        ids, mask = self._left_pad(rows)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        first = torch.tensor(self.tokens.first, device=self.device)
        with torch.inference_mode():
            out = self._forward(
                input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=self.tokens.two_step
            )
            p_first = out.logits[:, -1, :].float().softmax(-1)[:, first]
            if self.tokens.two_step:
                step = torch.full((len(rows), 1), self.tokens.first[0], dtype=torch.long, device=self.device)
                out2 = self._forward(
                    input_ids=step,
                    attention_mask=torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1),
                    position_ids=positions[:, -1:] + 1,
                    past_key_values=out.past_key_values,
                )
                p_zero = out2.logits[:, -1, :].float().softmax(-1)[:, self.tokens.ten_second]
                p_first = torch.cat(
                    [
                        (p_first[:, 0] * (1 - p_zero))[:, None],
                        p_first[:, 1:last],
                        (p_first[:, 0] * p_zero)[:, None],
                    ],
                    dim=1,
                )
        mass = p_first.sum(-1)
        probs = p_first / mass[:, None]
        return probs.double().cpu().tolist(), mass.double().cpu().tolist()

    def _forward(self, **inputs: Any) -> Any:
        """A forward pass that computes logits for the last position only, where the model allows it."""
        if self._last_logits_only:
            try:
                return self.model(**inputs, logits_to_keep=1)
            except TypeError:  # an older or custom model class without ``logits_to_keep``
                self._last_logits_only = False
        return self.model(**inputs)

    def close(self) -> None:
        pass
