"""Context-aware (contrastive) decoding: both streams of every row in one batched forward per step.

For each row, the *grounded* stream reads ``knowledge + request`` and the *plain* stream reads the
request alone. The next-token scores are

    (1 + alpha) * log p(y | knowledge, x) - alpha * log p(y | x)

(on log-probabilities, like transformers' classifier-free guidance with ``guidance_scale = 1 + alpha``;
on raw logits the scores differ only by a constant per position, so the distribution and the greedy
choice are the same). Unlike transformers' CFG, which runs the negative stream as a second unbatched
model call per step, both streams of all rows are stacked into one left-padded batch with explicit
``position_ids`` (right for absolute-position models too), and each stream keeps its own KV cache
rows: one forward per new token reads the weights once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

StopFn = Callable[[torch.Tensor], torch.Tensor]  # generated ids [B, t] -> finished rows [B] (bool)
Sampler = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (ids so far, scores [B, V]) -> next ids [B]


def contrast(grounded: torch.Tensor, plain: torch.Tensor, alpha: float) -> torch.Tensor:
    """``(1 + alpha) * log_softmax(grounded) - alpha * log_softmax(plain)`` over the last dimension."""
    g = F.log_softmax(grounded.float(), dim=-1)
    if alpha == 0:
        return g
    return (1.0 + alpha) * g - alpha * F.log_softmax(plain.float(), dim=-1)


def left_pad(rows: Sequence[Sequence[int]], pad_id: int, device: torch.device | str = "cpu"):
    """Input ids, attention mask and position ids (0 at each row's first real token) for a left-padded batch."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        if len(row) == 0:
            raise ValueError(f"row {i} of the batch is empty: a stream needs at least one token")
        ids[i, width - len(row) :] = torch.tensor(list(row), dtype=torch.long)
        mask[i, width - len(row) :] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    return ids.to(device), mask.to(device), positions.to(device)


def _forward(model, **kwargs):
    """One model call returning only the last position's logits where the model supports it."""
    try:
        return model(**kwargs, logits_to_keep=1)
    except TypeError:  # models without logits_to_keep
        return model(**kwargs)


@torch.no_grad()
def generate(
    model,
    grounded: Sequence[Sequence[int]],
    plain: Sequence[Sequence[int]],
    alpha: float,
    max_new_tokens: int,
    pad_id: int,
    eos_ids: Sequence[int] = (),
    stop: StopFn | None = None,
    sampler: Sampler | None = None,
    return_scores: bool = False,
    min_new_tokens: int = 0,
):
    """New tokens for each row (greedy unless ``sampler``), and optionally the per-step scores.

    A finished row (EOS or ``stop``) keeps being fed ``pad_id`` until every row has finished; its
    tokens after the finishing one are ``pad_id``.
    """
    if len(grounded) != len(plain):
        raise ValueError(f"{len(grounded)} grounded rows but {len(plain)} plain rows")
    n = len(grounded)
    device = next(model.parameters()).device
    ids, mask, positions = left_pad([*grounded, *plain], pad_id, device)
    out = _forward(model, input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True)
    cache, last = out.past_key_values, out.logits[:, -1, :]
    next_position = positions[:, -1:] + 1
    eos = torch.tensor(list(eos_ids), dtype=torch.long, device=device)
    done = torch.zeros(n, dtype=torch.bool, device=device)
    generated = torch.empty((n, 0), dtype=torch.long, device=device)
    steps: list[torch.Tensor] = []
    for step in range(max_new_tokens):
        scores = contrast(last[:n], last[n:], alpha)
        if step < min_new_tokens and len(eos):  # as transformers' min_new_tokens: no EOS before that length
            scores[:, eos] = -torch.inf
        if return_scores:
            steps.append(scores)
        token = sampler(generated, scores) if sampler is not None else scores.argmax(dim=-1)
        token = torch.where(done, torch.full_like(token, pad_id), token)
        generated = torch.cat([generated, token[:, None]], dim=1)
        if len(eos):
            done |= torch.isin(token, eos)
        if stop is not None:
            done |= stop(generated).to(device)
        if bool(done.all()) or step == max_new_tokens - 1:
            break
        mask = torch.cat([mask, mask.new_ones((2 * n, 1))], dim=1)
        out = _forward(
            model,
            input_ids=token.repeat(2)[:, None],
            attention_mask=mask,
            position_ids=next_position,
            past_key_values=cache,
            use_cache=True,
        )
        cache, last = out.past_key_values, out.logits[:, -1, :]
        next_position = next_position + 1
    if return_scores:
        return generated, torch.stack(steps, dim=1) if steps else None
    return generated


@torch.no_grad()
def score(
    model,
    grounded: Sequence[tuple[Sequence[int], Sequence[int]]],
    plain: Sequence[tuple[Sequence[int], Sequence[int]]],
    alpha: float,
    pad_id: int,
    max_length: int | None = None,
) -> list[tuple[float, bool]]:
    """Log-probability of each continuation under the contrasted scores, and whether it is the greedy one.

    ``grounded[i]`` and ``plain[i]`` are ``(context_ids, continuation_ids)`` with the same continuation.
    All 2 x len rows go through the model in one right-padded forward pass.
    """
    rows, spans = [], []
    for context, continuation in [*grounded, *plain]:
        full = list(context) + list(continuation)
        if max_length is not None:
            full = full[-(max_length + 1) :]
        inp = full[:-1]
        rows.append(inp)
        spans.append((len(inp) - len(continuation), len(continuation)))
    width = max(len(r) for r in rows)
    device = next(model.parameters()).device
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
    logits = model(input_ids=ids.to(device)).logits
    n = len(grounded)
    results = []
    for i, (_, continuation) in enumerate(grounded):
        (gs, gl), (ps, pl) = spans[i], spans[n + i]
        scores = F.log_softmax(contrast(logits[i, gs : gs + gl], logits[n + i, ps : ps + pl], alpha), dim=-1)
        target = torch.tensor(list(continuation), dtype=torch.long, device=scores.device)
        logprob = scores.gather(1, target[:, None]).sum()
        results.append((float(logprob), bool((scores.argmax(-1) == target).all())))
    return results
