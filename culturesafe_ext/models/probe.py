"""``--model hf-probe``: lm-eval's ``hf`` model that also records MLP neuron statistics per task.

It scores and generates exactly as ``hf`` (same batches, same outputs). It adds: a lookup from each
padded row (or generation prompt) back to its request's task, since one lm-eval call mixes every task's
requests and the stats are kept per task; forward hooks armed around the inner model calls with, per
task, a mask of the positions to record; and the stats files, written after every call.

Model args (besides all of ``hf``'s):

- ``probe_tokens``: ``prompt`` (default; every prompt position, each distinct prompt once per task) or
  ``generated`` (the positions that predict the answer: a loglikelihood request's scored continuation,
  each distinct row once; a generate_until request's kept generated tokens, up to the stop sequence);
- ``probe_topk``: k of the per-token top-k count (default: 1% of the layer width);
- ``probe_buckets``: document buckets kept for the permutation test (default 8);
- ``probe_out``: folder for the stats; default: ``probe_stats`` beside the results file when run by the
  lm_eval CLI with ``--output_path`` (``<output_path>/<model name>/probe_stats``), else ``./probe_stats``.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from lm_eval.api.instance import Instance
from lm_eval.models.huggingface import HFLM

from culturesafe_ext import __version__
from culturesafe_ext import lm_eval_internals as internals
from culturesafe_ext.models import ranks
from culturesafe_ext.probing.layout import find_mlp_sites
from culturesafe_ext.probing.recorder import ActivationRecorder
from culturesafe_ext.probing.stats import TaskStats, bucket_of

log = logging.getLogger("culturesafe")

SCOPES = ("prompt", "generated")
UNNAMED_TASK = "untasked"


def default_out_dir(model_args: dict[str, Any], argv: Sequence[str] | None = None) -> Path:
    """``probe_stats`` in the folder of the results file of an ``lm_eval ... --output_path X`` command.

    The folder is named from the model args by lm-eval's own function, so the stats of two models run into
    one output path do not overwrite each other. Outside the lm_eval CLI: ./probe_stats.
    """
    output = internals.cli_option(("--output_path", "-o"), argv)
    if not output:
        return Path("probe_stats")
    return internals.results_model_dir(output, model_args) / "probe_stats"


@dataclass
class _Row:
    """A loglikelihood row as HFLM feeds it: length, continuation length, bucket and its tasks."""

    length: int
    cont: int
    bucket: int
    tasks: set[str] = field(default_factory=set)

    @property
    def prompt_end(self) -> int:
        return max(self.length - self.cont + 1, 0)


def _task_of(request: Instance) -> str:
    return request.task_name or UNNAMED_TASK


def _padding(requests: list[Instance]) -> list[bool]:
    """Which requests are lm-eval's data-parallel padding: lm-eval 0.4.13 sends each instance ``repeats`` times
    (the same object) and evens out the ranks by sending a rank's last instance ``repeats`` times more, so an
    object seen more often than its ``repeats`` is padding from there on (the judge filters drop the same
    answers: ``culturesafe_ext.tasks.judging.unpadded``)."""
    seen: dict[int, int] = {}
    out = []
    for request in requests:
        seen[id(request)] = seen.get(id(request), 0) + 1
        out.append(seen[id(request)] > max(int(getattr(request, "repeats", 1) or 1), 1))
    return out


class ProbeHFLM(HFLM):
    """HFLM plus per-task neuron statistics of each layer's MLP (see the module docstring)."""

    def __init__(
        self,
        *args: Any,
        probe_tokens: str = "prompt",
        probe_topk: int | None = None,
        probe_buckets: int = 8,
        probe_out: str | None = None,
        **kwargs: Any,
    ) -> None:
        if probe_tokens not in SCOPES:
            raise ValueError(f"probe_tokens={probe_tokens!r}: expected one of {', '.join(SCOPES)}")
        super().__init__(*args, **kwargs)
        if self.backend != "causal":
            raise ValueError("hf-probe supports decoder-only (causal) models only")
        self.probe_tokens = probe_tokens
        named = {key: kwargs.get(key) for key in ("peft", "delta")}
        named["pretrained"] = kwargs.get("pretrained", args[0] if args else None)
        if not isinstance(named["pretrained"], str):
            named["pretrained"] = None  # an in-memory model: lm-eval names it by a random id
        self.probe_out = Path(probe_out) if probe_out else default_out_dir(named)
        self.probe_buckets = int(probe_buckets)
        self._sites = find_mlp_sites(self.model)
        width = self._sites[0].width
        self.probe_topk = int(probe_topk) if probe_topk else max(1, math.ceil(width / 100))
        self._recorder = ActivationRecorder(self._sites)
        self._stats: dict[str, TaskStats] = {}
        # per-call lookups (dropped when the call returns): which task each row or prompt belongs to
        self._request_tasks: list[str] | None = None
        self._rolling_task: str | None = None
        self._rows: dict[tuple[int, ...], _Row] | None = None
        self._row_lengths: list[int] = []
        self._prompt_tasks: dict[tuple[int, ...], list[str]] | None = None
        self._recorded: set[tuple[str, tuple[int, ...]]] = set()  # (task, prompt or row) already recorded
        self._unmatched = 0
        log.info(
            "hf-probe: %d MLP layers of width %d (%s ...), top-%d, %s tokens, stats -> %s",
            len(self._sites),
            width,
            self._sites[0].name,
            self.probe_topk,
            probe_tokens,
            self.probe_out,
        )

    # -- one lm-eval call ----------------------------------------------------------------------------
    @contextmanager
    def _call(self, requests: list[Instance]) -> Iterator[None]:
        """Count the call's documents per task; afterwards drop the lookups and write the stats
        (lm-eval never says which call is its last)."""
        docs: dict[str, set] = {}
        for request in requests:
            docs.setdefault(_task_of(request), set()).add(request.doc_id)
        for task, ids in docs.items():
            self._stats_for(task).n_docs += len(ids)
        try:
            yield
        finally:
            self._request_tasks, self._rows, self._prompt_tasks, self._recorded = None, None, None, set()
            if self._unmatched:
                log.warning("hf-probe: %d rows matched no request and were not recorded", self._unmatched)
                self._unmatched = 0
            self.write_stats(set(docs))

    @ranks.collective
    def loglikelihood(self, requests: list[Instance], disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        with self._call(requests):
            # TemplateLM.loglikelihood encodes the requests in order into one _loglikelihood_tokens call
            self._request_tasks = [_task_of(r) for r in requests]
            return super().loglikelihood(requests, disable_tqdm=disable_tqdm)

    @ranks.collective
    def loglikelihood_rolling(self, requests: list[Instance], disable_tqdm: bool = False) -> list[float]:
        """Rolling windows do not map one to one to requests: run task by task (results in input order)."""
        with self._call(requests):
            groups: dict[str, list[int]] = {}
            for i, request in enumerate(requests):
                groups.setdefault(_task_of(request), []).append(i)
            out: list[float] = [0.0] * len(requests)
            for task, indices in groups.items():
                self._rolling_task = task
                try:
                    results = super().loglikelihood_rolling([requests[i] for i in indices], disable_tqdm)
                finally:
                    self._rolling_task = None
                for i, result in zip(indices, results, strict=True):
                    out[i] = result
            return out

    @ranks.collective
    def generate_until(self, requests: list[Instance], disable_tqdm: bool = False) -> list[str]:
        with self._call(requests):
            self._prompt_tasks = {}
            for request, padding in zip(requests, _padding(requests), strict=True):
                # a padding copy is generated (lm-eval needs its answer) but recorded for no task (None)
                task = None if padding else _task_of(request)
                self._prompt_tasks.setdefault(tuple(self.tok_encode(request.args[0])), []).append(task)
            return super().generate_until(requests, disable_tqdm=disable_tqdm)

    def set_cache_hook(self, cache_hook) -> None:
        ranks.check_cache(self, cache_hook, "hf-probe")
        super().set_cache_hook(cache_hook)

    def _stats_for(self, task: str) -> TaskStats:
        if task not in self._stats:
            device = self.device if self.device.type in ("cpu", "cuda") else torch.device("cpu")
            self._stats[task] = TaskStats(
                len(self._sites), self._sites[0].width, self.probe_topk, self.probe_buckets, device
            )
        return self._stats[task]

    def _targets(
        self, shape: torch.Size, spans: list[tuple[str, int, int, int]], device: torch.device
    ) -> list[tuple[TaskStats, torch.Tensor]]:
        """One mask per task from (task, row, start, stop) spans of positions to record."""
        masks: dict[str, torch.Tensor] = {}
        for task, row, start, stop in spans:
            if stop > start:  # empty masks are dropped here, on the host: no emptiness check on the device
                masks.setdefault(task, torch.zeros(shape, dtype=torch.bool))[row, start:stop] = True
        return [(self._stats_for(task), mask) for task, mask in masks.items()]  # on the host; device: recording

    def _first_time(self, task: str, key: tuple[int, ...]) -> bool:
        """True once per (task, token sequence) and call: each distinct prompt (or row) is recorded once."""
        if (task, key) in self._recorded:
            return False
        self._recorded.add((task, key))
        return True

    # -- loglikelihood: which positions of each padded row to record, for which task ---------------
    def _loglikelihood_tokens(self, requests, disable_tqdm: bool = False, override_bs: int | None = None):
        if self._rolling_task is not None:
            tasks = [self._rolling_task] * len(requests)
        elif self._request_tasks is not None and len(self._request_tasks) == len(requests):
            tasks = self._request_tasks
        else:
            return super()._loglikelihood_tokens(requests, disable_tqdm=disable_tqdm, override_bs=override_bs)
        rows: dict[tuple[int, ...], _Row] = {}
        for (_, context_enc, continuation_enc), task in zip(requests, tasks, strict=True):
            # the exact row HFLM feeds the model: (context + continuation)[-(max_length + 1):][:-1]
            row = internals.hflm_row(context_enc, continuation_enc, self.max_length)
            if row not in rows:
                found = _Row(len(row), len(continuation_enc), 0)
                found.bucket = bucket_of(list(row[: found.prompt_end]), self.probe_buckets)
                rows[row] = found
            rows[row].tasks.add(task)
        self._rows, self._row_lengths = rows, sorted({r.length for r in rows.values()})
        try:
            return super()._loglikelihood_tokens(requests, disable_tqdm=disable_tqdm, override_bs=override_bs)
        finally:
            self._rows = None

    def _match_row(self, padded: list[int]) -> _Row | None:
        """This padded row's request row. HFLM right-pads with token id 0, so the row is a known request
        row followed by zeros only; the shortest such match wins."""
        assert self._rows is not None
        end = internals.unpadded_length(padded)
        for n in self._row_lengths:
            if n >= end and (found := self._rows.get(tuple(padded[:n]))) is not None:
                return found
        return None

    def _model_call(self, inps: torch.Tensor, attn_mask=None, labels=None) -> torch.Tensor:
        if self._rows is None:
            return super()._model_call(inps, attn_mask=attn_mask, labels=labels)
        spans = []
        buckets = torch.zeros(inps.shape[0], dtype=torch.long)
        for b, padded in enumerate(inps.tolist()):
            row = self._match_row(padded)
            if row is None:
                if not str(self.batch_size).startswith("auto"):  # auto probes the batch size with dummy rows
                    self._unmatched += 1
                continue
            buckets[b] = row.bucket
            start, stop = (
                (row.length - row.cont, row.length) if self.probe_tokens == "generated" else (0, row.prompt_end)
            )
            key = tuple(padded[:stop])
            spans.extend((task, b, start, stop) for task in sorted(row.tasks) if self._first_time(task, key))
        with self._recorder.recording(self._targets(inps.shape, spans, inps.device), buckets, device=inps.device):
            return super()._model_call(inps, attn_mask=attn_mask, labels=labels)

    # -- generate_until: the prompt at prefill, or the kept answer tokens afterwards ----------------
    def _task_of_prompt(self, prompt: tuple[int, ...]) -> str | None:
        """The task of a generation row from its prompt tokens (one request per row: pop duplicates)."""
        assert self._prompt_tasks is not None
        tasks = self._prompt_tasks.get(prompt)
        if tasks is None:  # left-truncated to the context window: the kept tokens are a suffix
            tasks = next(
                (t for p, t in self._prompt_tasks.items() if len(p) > len(prompt) and p[-len(prompt) :] == prompt),
                None,
            )
        if not tasks:
            self._unmatched += 1
            return None
        return tasks.pop(0) if len(tasks) > 1 else tasks[0]

    def _model_generate(self, context: torch.Tensor, max_length: int, stop: list[str], **generation_kwargs):
        if self._prompt_tasks is None:
            return super()._model_generate(context, max_length, stop, **generation_kwargs)
        attention = generation_kwargs.get("attention_mask")
        attention = torch.ones_like(context) if attention is None else attention
        real = attention.cpu().bool()
        prompts = [tuple(row[mask].tolist()) for row, mask in zip(context.cpu(), real, strict=True)]
        tasks = [self._task_of_prompt(p) for p in prompts]
        buckets = torch.tensor([bucket_of(list(p), self.probe_buckets) for p in prompts], dtype=torch.long)
        if self.probe_tokens == "generated":
            out = super()._model_generate(context, max_length, stop, **generation_kwargs)
            self._record_answers(out, attention, stop, buckets, tasks)
            return out
        spans = []
        for b, (prompt, task) in enumerate(zip(prompts, tasks, strict=True)):
            if task is not None and prompt and self._first_time(task, prompt):
                positions = real[b].nonzero()
                spans.append((task, b, int(positions[0]), int(positions[-1]) + 1))
        with self._recorder.recording(
            self._targets(context.shape, spans, context.device), buckets, once=True, device=context.device
        ):
            return super()._model_generate(context, max_length, stop, **generation_kwargs)

    def _kept_length(self, generated: list[int], stop: list[str]) -> int:
        """How many generated tokens it takes to write the answer lm-eval keeps (cut at the first stop)."""
        kept = internals.postprocess_generated_text(self.tok_decode(generated), stop, None)
        if not kept:
            return 0
        low, high = 1, len(generated)
        while low < high:  # the shortest prefix whose text already contains the kept answer
            mid = (low + high) // 2
            if self.tok_decode(generated[:mid]).startswith(kept):
                high = mid
            else:
                low = mid + 1
        return low

    def _record_answers(
        self, out: torch.Tensor, attention: torch.Tensor, stop: list[str], buckets: torch.Tensor, tasks: list
    ) -> None:
        """Re-run prompt + kept answer once, teacher-forced, recording the positions that predicted it.

        Generation stops per batch, not per row, and lm-eval cuts the stop sequence afterwards, so which
        tokens count is known only now; one extra forward pass is cheaper than keeping every decoding
        step's activations.
        """
        prompt_len = attention.shape[1]
        lengths = [self._kept_length(row[prompt_len:], stop) for row in out.tolist()]
        spans = [
            (task, b, prompt_len - 1, prompt_len - 1 + n)
            for b, (task, n) in enumerate(zip(tasks, lengths, strict=True))
            if task is not None and n > 0
        ]
        if not spans:
            return
        ids = out[:, : prompt_len + max(lengths) - 1]
        mask_all = torch.cat([attention, torch.ones_like(ids[:, prompt_len:])], dim=1)
        positions = (mask_all.cumsum(-1) - 1).clamp(min=0)
        with (
            torch.no_grad(),
            torch.autocast(
                device_type=self.device.type,
                dtype=self.mixed_precision_dtype,
                enabled=self.mixed_precision_dtype is not None,
            ),
            self._recorder.recording(self._targets(ids.shape, spans, ids.device), buckets, device=ids.device),
        ):
            self.model(input_ids=ids, attention_mask=mask_all, position_ids=positions)

    # -- output -------------------------------------------------------------------------------------
    def probe_meta(self) -> dict[str, Any]:
        """What a stats file needs to be read on its own: model, layers, scope, versions."""
        return {
            "model": str(self.pretrained) if isinstance(self.pretrained, str) else type(self.pretrained).__name__,
            "model_class": type(self.model).__name__,
            "layers": [site.name for site in self._sites],
            "tokens": self.probe_tokens,
            "dtype": str(self.model.dtype),
            "culturesafe": __version__,
        }

    def _whole_run(self, tasks: set[str]) -> tuple[dict[str, TaskStats], set[str]]:
        """Every rank's statistics summed (a collective, at the end of each request call; see :mod:`.ranks`).

        A document's bucket is a hash of its tokens and the sums are exact on the 2^-24 grid, so the sum over
        ranks equals the one-process statistics whatever the sharding. One process: the stats themselves."""
        if ranks.world_size(self) == 1:
            return self._stats, tasks
        touched = sorted({t for part in ranks.all_objects(self, sorted(tasks)) for t in part})
        names = sorted({t for part in ranks.all_objects(self, sorted(self._stats)) for t in part})
        merged = {}
        for task in names:  # every rank walks the same sorted names, so the reductions pair up
            merged[task] = self._stats_for(task).copy()
            ranks.sum_tensors(self, (merged[task].act_sum, merged[task].topk_count, merged[task].tokens))
            merged[task].n_docs = sum(ranks.all_objects(self, self._stats[task].n_docs))
        return merged, set(touched)

    def write_stats(self, tasks: set[str] | None = None) -> dict[str, Path]:
        """Write the stats of ``tasks`` (default: every task), overwriting: lm-eval never says which call is
        its last, so each call rewrites the tasks it touched; the summary lists every task. Under data
        parallelism every rank must call it (it sums the ranks' stats) and rank 0 writes the whole run's."""
        stats, tasks = self._whole_run(set(self._stats) if tasks is None else tasks)
        if self.rank != 0:
            return {}
        meta = self.probe_meta()
        for task, task_stats in stats.items():
            if task in tasks:
                task_stats.save(self.probe_out, task, meta)
        written = {task: self.probe_out / f"{task}.npz" for task in stats}
        if written:
            summary = {
                task: {
                    "file": path.name,
                    "n_docs": stats[task].n_docs,
                    "n_tokens": int(stats[task].tokens.sum()),
                }
                for task, path in written.items()
            }
            (self.probe_out / "probe_stats.json").write_text(
                json.dumps({**meta, "k": self.probe_topk, "width": self._sites[0].width, "tasks": summary}, indent=2)
                + "\n"
            )
        return written
