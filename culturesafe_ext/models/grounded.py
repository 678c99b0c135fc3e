"""``hf-grounded``: lm-eval's ``HFLM`` with the answer grounded in cultural knowledge.

``lm_eval --model hf-grounded --model_args pretrained=...,grounding=<mode>,...``

- ``grounding=elicit``: the model first writes the cultural knowledge relevant to the request
  (greedy, ``knowledge_max_tokens``), then answers (or is scored) with it in context;
- ``grounding=retrieve``: the ``top_k`` passages of ``knowledge_source`` that BM25 ranks highest for
  the request are put in context;
- ``grounding=cad``: contrastive decoding and scoring, ``(1 + alpha) log p(y | knowledge, x) - alpha
  log p(y | x)``, with the knowledge from ``cad_source`` (``retrieve`` or ``elicit``);
- ``grounding=none``: plain ``hf`` (a control that goes through the same code).

Generation and loglikelihood requests are grounded alike, so knowledge tasks show the effect too.
What each request was grounded with goes to a JSONL log (``grounding_log``; default under the
culturesafe cache dir), one line per document and context, keyed by lm-eval's ``doc_hash`` so it joins
with ``--log_samples`` output; its path and the retrieval recall against the gold description are
added to the results file's ``config`` (through ``get_model_info``).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from lm_eval.api.instance import Instance
from lm_eval.models.huggingface import HFLM

from culturesafe_ext.grounding import cad, prompts
from culturesafe_ext.grounding.retrieve import DOCS, BM25Index, Hit, Recall, load_passages
from culturesafe_ext.lm_eval_internals import (
    doc_hash,
    handle_non_serializable,
    handle_stop_sequences,
    normalize_gen_kwargs,
    postprocess_generated_text,
    stop_sequences_criteria,
)
from culturesafe_ext.models import ranks

log = logging.getLogger("culturesafe")

MODES = ("none", "elicit", "retrieve", "cad")
CAD_SOURCES = ("retrieve", "elicit")
SAMPLING_KEYS = {"temperature", "top_p", "top_k"}


@dataclass
class Grounding:
    """What one request context was grounded with."""

    knowledge: str = ""
    hits: list[Hit] = field(default_factory=list)
    elicit_prompt: str | None = None


class GroundedHFLM(HFLM):
    """HFLM whose requests are answered (and scored) with cultural knowledge in context."""

    def __init__(
        self,
        grounding: str = "retrieve",
        knowledge_source: str = DOCS,
        top_k: int = 1,
        alpha: float = 0.5,
        cad_source: str = "retrieve",
        knowledge_max_tokens: int = 128,
        grounding_log: str | None = None,
        culturesafe_data: str | None = None,
        culturesafe_revision: str | None = None,
        **kwargs: Any,
    ) -> None:
        if grounding not in MODES:
            raise ValueError(f"grounding={grounding!r} is not one of {', '.join(MODES)}")
        if cad_source not in CAD_SOURCES:
            raise ValueError(f"cad_source={cad_source!r} is not one of {', '.join(CAD_SOURCES)}")
        if int(top_k) < 1 or float(alpha) < 0 or int(knowledge_max_tokens) < 1:
            raise ValueError("hf-grounded needs top_k >= 1, alpha >= 0 and knowledge_max_tokens >= 1")
        super().__init__(**kwargs)
        if self.backend != "causal":
            raise ValueError("hf-grounded supports decoder-only (causal) models")
        self.grounding = grounding
        self.knowledge_source = knowledge_source
        self.top_k = int(top_k)
        self.alpha = float(alpha)
        self.cad_source = cad_source
        self.knowledge_max_tokens = int(knowledge_max_tokens)
        self._loader_args = {"culturesafe_data": culturesafe_data, "culturesafe_revision": culturesafe_revision}
        self._index: BM25Index | None = None
        self._user_text: dict[str, str] = {}
        self.recall = Recall(self.top_k)
        self.documents = self.empty_knowledge = 0  # logged (task, doc, context) lines; those with no knowledge
        # documents, empty_knowledge and recall hits / n summed over data-parallel ranks (the model info's figures)
        self.totals: dict[str, int] = {"documents": 0, "empty_knowledge": 0, "hits": 0, "n": 0}
        self.grounding_log = Path(grounding_log or self._default_log()).expanduser()

    # --- lm-eval entry points --------------------------------------------------------------------
    def apply_chat_template(self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        """Render as HFLM does, with :data:`prompts.SLOT` marking where knowledge goes in the last user turn."""
        history = [dict(m) for m in chat_history]
        users = [i for i, m in enumerate(history) if m.get("role") == "user"]
        if not users or self.grounding == "none":
            return super().apply_chat_template(history, add_generation_prompt)
        content = history[users[-1]]["content"]
        history[users[-1]]["content"] = prompts.SLOT + content
        rendered = super().apply_chat_template(history, add_generation_prompt)
        self._user_text[rendered] = content
        return rendered

    @ranks.collective
    def loglikelihood(self, requests: list[Instance], disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        if not requests:
            return self._nothing_to_ground()
        found = self._ground(requests)
        if self.grounding != "cad":
            grounded = [self._with_context(r, self._grounded(r, found)) for r in requests]
            return super().loglikelihood(grounded, disable_tqdm=disable_tqdm)
        return self._cad_loglikelihood(requests, found)

    @ranks.collective
    def generate_until(self, requests: list[Instance], disable_tqdm: bool = False) -> list[str]:
        if not requests:
            return self._nothing_to_ground()
        found = self._ground(requests)
        if self.grounding != "cad":
            grounded = [self._with_context(r, self._grounded(r, found)) for r in requests]
            return super().generate_until(grounded, disable_tqdm=disable_tqdm)
        return self._cad_generate_until(requests, found)

    def _nothing_to_ground(self) -> list:
        """A call with no requests (under data parallelism: every request of this rank was cached) still takes
        part in the gathers of :meth:`_ground`, which the other ranks reach."""
        if ranks.world_size(self) > 1:
            self._ground([])
        return []

    def set_cache_hook(self, cache_hook) -> None:
        ranks.check_cache(self, cache_hook, "hf-grounded")
        super().set_cache_hook(cache_hook)

    def get_model_info(self) -> dict:
        info = super().get_model_info()
        info["grounding"] = {
            "mode": self.grounding,
            "knowledge_source": self.knowledge_source,
            "top_k": self.top_k,
            "alpha": self.alpha if self.grounding == "cad" else None,
            "cad_source": self.cad_source if self.grounding == "cad" else None,
            "knowledge_max_tokens": self.knowledge_max_tokens,
            "log": str(self.grounding_log),
            "documents": self.totals["documents"],
            "empty_knowledge": self.totals["empty_knowledge"],
            "retrieval_recall": self._total_recall().to_dict() if self._retrieves else None,
        }
        return info

    def _sum_over_ranks(self) -> None:
        """Take the whole run's counts (every rank's; a collective at the end of each request call, since only
        rank 0 writes the model info). One process: the local counts."""
        mine = {"documents": self.documents, "empty_knowledge": self.empty_knowledge}
        mine.update(hits=self.recall.hits, n=self.recall.n)
        self.totals = dict(ranks.summed_counts(self, mine)) if ranks.world_size(self) > 1 else mine
        for key in ("documents", "empty_knowledge", "hits", "n"):
            self.totals.setdefault(key, 0)

    def _total_recall(self) -> Recall:
        if ranks.world_size(self) == 1:
            return self.recall
        return Recall(self.top_k, hits=self.totals["hits"], n=self.totals["n"])

    # --- grounding --------------------------------------------------------------------------------
    @property
    def _retrieves(self) -> bool:
        return self.grounding == "retrieve" or (self.grounding == "cad" and self.cad_source == "retrieve")

    def _default_log(self) -> Path:
        from culturesafe_ext.paths import cache_dir

        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        return cache_dir() / "grounding" / f"{stamp}-{self.grounding}-{os.getpid()}.jsonl"

    def _request_text(self, context: str) -> str:
        """The user's request: the last user message when we rendered the chat, else the whole context."""
        return self._user_text.get(context) or prompts.plain(context)

    def _ground(self, requests: list[Instance]) -> dict[str, Grounding]:
        """Knowledge per distinct context (several choices of one question share it), logged once."""
        contexts = list(dict.fromkeys(r.args[0] for r in requests))
        if self.grounding == "none":
            found = {c: Grounding() for c in contexts}
        elif self._retrieves:
            docs = self._whole_document_set(requests)  # a collective: also when this rank has no requests
            found = self._retrieve(contexts, docs) if contexts else {}
        else:
            found = self._elicit(contexts)
        self._log(requests, found)
        self._sum_over_ranks()
        return found

    def _whole_document_set(self, requests: list[Instance]) -> list[dict]:
        """The documents of this call on every data-parallel rank, in the one-process order (tasks in the
        order they come, each task's documents by id): a ``docs`` index built from one rank's share would
        make retrieval depend on the number of processes. A collective (see :mod:`.ranks`); one process:
        the requests' own documents, in request order."""
        if ranks.world_size(self) == 1:
            return [r.doc for r in requests]
        mine = list({(r.task_name, r.doc_id): r.doc for r in requests}.items())
        parts = ranks.all_objects(self, mine)
        task_order = list(dict.fromkeys(task for part in parts for (task, _), _ in part))
        merged = {key: doc for part in parts for key, doc in part}
        return [merged[key] for key in sorted(merged, key=lambda k: (task_order.index(k[0]), k[1]))]

    def _retrieve(self, contexts: list[str], docs: list[dict]) -> dict[str, Grounding]:
        if self._index is None or self.knowledge_source == DOCS:
            passages = load_passages(self.knowledge_source, docs, **self._loader_args)
            if self._index is None or [p.id for p in self._index.passages] != [p.id for p in passages]:
                self._index = BM25Index(passages)
                log.info("hf-grounded: BM25 index over %d passages (%s)", len(passages), self.knowledge_source)
        hits = self._index.search([self._request_text(c) for c in contexts], self.top_k)
        return {c: Grounding("\n".join(h.text for h in row), row) for c, row in zip(contexts, hits, strict=True)}

    def _elicit(self, contexts: list[str]) -> dict[str, Grounding]:
        """First pass: the model states the relevant knowledge (greedy), through HFLM's own batching."""
        chat = any(c in self._user_text or prompts.SLOT in c for c in contexts)
        asks = []
        for context in contexts:
            request = self._request_text(context)
            if chat:
                content = f"{request}\n\n{prompts.ELICIT_INSTRUCTION}"
                asks.append(HFLM.apply_chat_template(self, [{"role": "user", "content": content}]))
            else:
                asks.append(prompts.ELICIT_PLAIN_TEMPLATE.format(request=request))
        # No stop string: a small model often opens with a blank line, which "\n\n" would turn into no knowledge.
        kwargs = {"until": [], "max_gen_toks": self.knowledge_max_tokens, "do_sample": False}
        instances = [Instance("generate_until", {}, (ask, dict(kwargs)), i) for i, ask in enumerate(asks)]
        said = HFLM.generate_until(self, instances, disable_tqdm=True)
        return {c: Grounding(k.strip(), [], ask) for c, k, ask in zip(contexts, said, asks, strict=True)}

    def _grounded(self, request: Instance, found: dict[str, Grounding]) -> str:
        return prompts.fill(request.args[0], found[request.args[0]].knowledge)

    @staticmethod
    def _with_context(request: Instance, context: str) -> Instance:
        """A copy of the request with another context; lm-eval's own instance is left as it was."""
        return replace(request, arguments=(context, *request.args[1:]))

    def _log(self, requests: list[Instance], found: dict[str, Grounding]) -> None:
        """One JSONL line per (task, doc, context): what the request was grounded with."""
        lines, seen = [], set()
        for request in requests:  # the choices of one question (and repeats) share a line
            key = (request.task_name, request.doc_id, request.args[0])
            if key in seen:
                continue
            seen.add(key)
            g = found[request.args[0]]
            doc = request.doc or {}
            self.documents += 1
            self.empty_knowledge += int(not g.knowledge)
            record: dict[str, Any] = {
                "task_name": request.task_name,
                "doc_id": request.doc_id,
                "doc_hash": doc_hash(doc),
                "request_type": request.request_type,
                "grounding": self.grounding,
                "knowledge": g.knowledge,
            }
            if g.elicit_prompt is not None:
                record["elicit_prompt"] = g.elicit_prompt
            if self._retrieves:
                gold = doc.get("description_id")
                record["hits"] = [{"id": h.id, "score": round(h.score, 4), "rank": h.rank} for h in g.hits]
                record["gold_description_id"] = gold
                record["gold_retrieved"] = self.recall.add(gold, g.hits)
            lines.append(json.dumps(record, ensure_ascii=False, default=handle_non_serializable))
        if lines:
            self.grounding_log.parent.mkdir(parents=True, exist_ok=True)
            with self.grounding_log.open("a", encoding="utf-8") as handle:
                handle.write("\n".join(lines) + "\n")
        if self._retrieves and self.recall.n:
            log.info(
                "hf-grounded: retrieval recall@%d = %d/%d = %.3f (log: %s)",
                self.top_k,
                self.recall.hits,
                self.recall.n,
                self.recall.value,
                self.grounding_log,
            )

    # --- contrastive decoding ----------------------------------------------------------------------
    def _encode_batch(self, contexts: list[str], left_truncate_len: int | None = None) -> list[list[int]]:
        """Token ids per context exactly as HFLM's generate path encodes them (its padding removed)."""
        ids, mask = self.tok_batch_encode(contexts, left_truncate_len=left_truncate_len, truncation=self.truncation)
        return [row[m.bool()].tolist() for row, m in zip(ids, mask, strict=True)]

    def _batch_size_now(self) -> int:
        return self.batch_size if isinstance(self.batch_size, int) and self.batch_size > 0 else 1

    def _cad_generate_until(self, requests: list[Instance], found: dict[str, Grounding]) -> list[str]:
        results: list[str | None] = [None] * len(requests)
        groups: dict[str, list[int]] = defaultdict(list)
        for i, request in enumerate(requests):
            groups[json.dumps(request.args[1], sort_keys=True, default=str)].append(i)
        eos = self.tok_decode(self.eot_token_id, skip_special_tokens=False)
        size = self._batch_size_now()
        for members in groups.values():
            gen_kwargs = requests[members[0]].args[1]
            kwargs = normalize_gen_kwargs(gen_kwargs, self.max_gen_toks)
            until = handle_stop_sequences(kwargs.pop("until", None), eos=eos)
            max_gen_toks = kwargs.pop("max_gen_toks")
            min_new_tokens = int(kwargs.pop("min_new_tokens", 0) or 0)  # passed to generate() by plain hf too
            sampler = self._sampler(kwargs)
            max_ctx = self.max_length - max_gen_toks
            contexts = {i: requests[i].args[0] for i in members}
            members.sort(key=lambda i: -len(self._grounded(requests[i], found)))  # longest first, as HFLM
            for start in range(0, len(members), size):
                chunk = members[start : start + size]
                grounded = self._encode_batch([self._grounded(requests[i], found) for i in chunk], max_ctx)
                plain = self._encode_batch([prompts.plain(contexts[i]) for i in chunk], max_ctx)
                criteria = stop_sequences_criteria(self.tokenizer, until, 0, len(chunk))

                def stop(generated: torch.Tensor, criteria=criteria) -> torch.Tensor:
                    for criterion in criteria:
                        criterion(generated, None)
                    return torch.tensor([any(c.done_tracker[j] for c in criteria) for j in range(generated.shape[0])])

                new = cad.generate(
                    self.model,
                    grounded,
                    plain,
                    self.alpha,
                    max_gen_toks,
                    pad_id=self.tokenizer.pad_token_id,
                    eos_ids=[self.eot_token_id],
                    stop=stop,
                    sampler=sampler,
                    min_new_tokens=min_new_tokens,
                )
                for i, tokens in zip(chunk, new.tolist(), strict=True):
                    text = postprocess_generated_text(
                        generation=self.tok_decode(tokens),
                        stop=until,
                        think_end_token=self.think_end_token if isinstance(self.think_end_token, str) else None,
                    )
                    results[i] = text
                    self.cache_hook.add_partial("generate_until", (contexts[i], gen_kwargs), text)
        return [r if r is not None else "" for r in results]

    @staticmethod
    def _sampler(kwargs: dict[str, Any]):
        """None for greedy; else a sampler using transformers' own temperature / top-k / top-p warpers."""
        unknown = sorted(set(kwargs) - SAMPLING_KEYS - {"do_sample"})
        if unknown:
            raise ValueError(f"hf-grounded (cad) does not support the generation argument(s) {unknown}")
        if not kwargs.get("do_sample"):
            return None
        from transformers import LogitsProcessorList, TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

        warpers = LogitsProcessorList()
        if kwargs.get("temperature"):
            warpers.append(TemperatureLogitsWarper(float(kwargs["temperature"])))
        if kwargs.get("top_k"):
            warpers.append(TopKLogitsWarper(int(kwargs["top_k"])))
        if kwargs.get("top_p") is not None and float(kwargs["top_p"]) < 1.0:
            warpers.append(TopPLogitsWarper(float(kwargs["top_p"])))

        def sample(generated: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
            probs = torch.softmax(warpers(generated, scores), dim=-1)
            return torch.multinomial(probs, 1)[:, 0]

        return sample

    def _cad_loglikelihood(self, requests: list[Instance], found: dict[str, Grounding]) -> list[tuple[float, bool]]:
        pairs = []
        for request in requests:
            context, continuation = request.args
            grounded = prompts.fill(context, found[context].knowledge)
            pairs.append(
                (
                    self._encode_context(grounded, continuation),
                    self._encode_context(prompts.plain(context), continuation),
                )
            )
        order = sorted(range(len(pairs)), key=lambda i: -len(pairs[i][0][0]) - len(pairs[i][0][1]))
        results: list[tuple[float, bool] | None] = [None] * len(pairs)
        size = self._batch_size_now()
        pad = self.tokenizer.pad_token_id
        for start in range(0, len(order), size):
            chunk = order[start : start + size]
            scored = cad.score(
                self.model,
                [pairs[i][0] for i in chunk],
                [pairs[i][1] for i in chunk],
                self.alpha,
                pad_id=pad,
                max_length=self.max_length,
            )
            for i, answer in zip(chunk, scored, strict=True):
                results[i] = answer
                self.cache_hook.add_partial("loglikelihood", requests[i].args, answer)
        return results  # type: ignore[return-value]

    def _encode_context(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        """(context ids, continuation ids) exactly as lm-eval's TemplateLM.loglikelihood encodes them."""
        if context == "":
            cont = self.tok_encode(continuation, add_special_tokens=False)
            return ([self.prefix_token_id], cont) if self.prefix_token_id != cont[0] else (cont[:1], cont[1:])
        return self._encode_pair(context, continuation)
