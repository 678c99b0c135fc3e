"""Round-based generation through the one LLM client, with bounded, reported retries.

Round r sends one request per unfinished task (all of them in one ``LLMClient.complete`` call, so they run
concurrently and every complete reply is cached as it arrives). A reply cut by the token limit or
withheld by a content filter is a failure of that kind (counted, retried, never parsed). A complete
reply is parsed with the project's JSON parser (reasoning blocks set aside) and checked item by item;
valid items are kept, and a task still short of items is retried in round r + 1 with its last reply
and the list of problems appended, under the cache key of attempt r + 1 (a new call, not the cached
failure). After ``max_attempts`` rounds a short task is reported with every raw reply and problem:
nothing invalid is dropped unreported.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field

from culturesafe_ext.llm import Completion, LLMClient
from culturesafe_ext.llm.backends.base import FILTERED, TRUNCATED, LLMRequest, LLMRunError, Reply
from culturesafe_ext.llm.settings import public_settings
from culturesafe_ext.parsing import find_json_object

from .prompts import Prompt

RAW_LIMIT = 4000  # characters of a raw reply kept in the report


@dataclass
class Task:
    """Ask ``prompt`` (filled with ``values``) until ``n_items`` valid, distinct items are in hand."""

    key: str
    prompt: Prompt
    values: dict[str, object]
    n_items: int
    parse: Callable[[dict], tuple[list[dict], list[str]]]
    identity: Callable[[dict], str]


@dataclass
class Attempt:
    attempt: int
    raw: str | None
    error: str | None
    problems: list[str]
    n_valid: int
    from_cache: bool


@dataclass
class Outcome:
    key: str
    wanted: int
    items: list[dict] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return len(self.items) >= self.wanted

    def report(self) -> dict:
        return {
            "key": self.key,
            "wanted": self.wanted,
            "got": len(self.items),
            "attempts": [asdict(a) for a in self.attempts],
        }


@dataclass(frozen=True)
class Parsed:
    """A complete reply as its task reads it: whether it held a JSON object, the valid items, the problems."""

    found: bool
    valid: list[dict]
    problems: list[str]


@dataclass
class FirstRound:
    """First attempts a pipeline already sent while the stage before it ran (:meth:`LLMClient.stream`): the
    replies, the requests by task key (not built twice) and the replies already read, by request key, by the very
    tasks :func:`run` is given (not read twice)."""

    completion: Completion
    requests: Mapping[str, LLMRequest] = field(default_factory=dict)
    parsed: Mapping[str, Parsed] = field(default_factory=dict)


def parse_reply(task: Task, text: str) -> Parsed:
    """The project's JSON parser, then the task's own checks (a pipeline may call it as each reply arrives and
    hand the result to :func:`run` as ``parsed``: the same reading, earlier)."""
    obj = find_json_object(text)
    if obj is None:
        return Parsed(False, [], ["reply: no JSON object found"])
    valid, problems = task.parse(obj)
    return Parsed(True, valid, problems)


@dataclass
class Stats:
    """What the generation cost and how much of it failed (every figure is a count)."""

    tasks: int = 0
    complete: int = 0
    incomplete: int = 0
    requests: int = 0
    sent: int = 0
    cached: int = 0
    failed_requests: int = 0
    truncated_replies: int = 0  # cut by the token limit: a failure, retried as a new request, never cached
    filtered_replies: int = 0  # withheld by a provider's content filter
    unparseable_replies: int = 0
    replies_with_invalid_items: int = 0
    item_problems: int = 0
    prompt_tokens: int = 0  # over every reply used, cached ones included (what the generation cost) ...
    completion_tokens: int = 0
    new_prompt_tokens: int = 0  # ... and over the replies this run paid for
    new_completion_tokens: int = 0


def _feedback(last: Attempt, have: int, needed: int) -> str:
    listed = "\n".join(f"- {p}" for p in last.problems[:12])
    more = f"\n- ... and {len(last.problems) - 12} more" if len(last.problems) > 12 else ""
    return (
        f"Your answer could not be used as it is:\n{listed}{more}\n"
        f"{have} valid item(s) were kept. Write {needed} more, different from those, in the same JSON "
        "format. Output only the JSON object."
    )


def first_request(writer: LLMClient, task: Task, max_tokens: int) -> LLMRequest:
    """The request of a task's first attempt, exactly as :func:`run` builds it (a pipeline that sends it early,
    while the stage before is still running, hands the reply to :func:`run` as ``first``)."""
    messages = task.prompt.messages(**{**task.values, "n": task.n_items})
    return writer.request(messages, f"{task.prompt.id}#attempt0", mode="generate", max_tokens=max_tokens)


def run(
    writer: LLMClient,
    tasks: list[Task],
    max_attempts: int = 3,
    max_tokens: int = 1024,
    first: FirstRound | None = None,
) -> tuple[list[Outcome], Stats]:
    """Generate until every task is complete or has used ``max_attempts``; outcomes in task order.

    ``first``: first attempts already answered (:class:`FirstRound`); their replies count as sent or cached as
    they were there."""
    if max_attempts < 1:
        raise ValueError("max_attempts must be >= 1")
    outcomes = {t.key: Outcome(t.key, t.n_items) for t in tasks}
    if len(outcomes) != len(tasks):
        raise ValueError("task keys must be unique")
    stats = Stats(tasks=len(tasks))
    pending = [t for t in tasks if t.n_items > 0]
    for attempt in range(max_attempts):
        if not pending:
            break
        requests = []
        for task in pending:
            if attempt == 0 and first is not None and task.key in first.requests:
                requests.append(first.requests[task.key])
                continue
            outcome = outcomes[task.key]
            needed = task.n_items - len(outcome.items)
            messages = task.prompt.messages(**{**task.values, "n": needed})
            if attempt and outcome.attempts[-1].error is None:
                last = outcome.attempts[-1]
                messages += [
                    {"role": "assistant", "content": last.raw or ""},
                    {"role": "user", "content": _feedback(last, len(outcome.items), needed)},
                ]
            prompt_id = f"{task.prompt.id}#attempt{attempt}"
            # no ``accept``: a complete reply without JSON is cached, because it is part of the next attempt's
            # prompt (the feedback turn); not caching it would make a resumed run re-send that whole chain
            requests.append(writer.request(messages, prompt_id, mode="generate", max_tokens=max_tokens))
        done = _complete(writer, requests, first.completion if first is not None and attempt == 0 else None)
        if done.fatal:  # a refused key or unknown model: no later round can do better (replies so far are cached)
            raise LLMRunError(done.fatal)
        stats.requests += len(requests)
        stats.sent += done.sent
        stats.cached += sum(r.key in done.cached for r in requests)
        still = []
        for task, request in zip(pending, requests, strict=True):
            _count_tokens(stats, done.replies[request.key], request.key in done.cached)
            outcome = outcomes[task.key]
            early = first.parsed.get(request.key) if first is not None and attempt == 0 else None
            outcome.attempts.append(
                _take(task, outcome, done.replies[request.key], attempt, request.key in done.cached, stats, early)
            )
            if not outcome.complete:
                still.append(task)
        pending = still
    for outcome in outcomes.values():
        if outcome.complete:
            stats.complete += 1
        else:
            stats.incomplete += 1
    return [outcomes[t.key] for t in tasks], stats


def _complete(writer: LLMClient, requests: list[LLMRequest], first: Completion | None) -> Completion:
    """``writer.complete`` for the requests whose replies are not in ``first`` already, merged with those."""
    if first is None:
        return writer.complete(requests)
    known = [r for r in requests if r.key in first.replies]
    done = writer.complete([r for r in requests if r.key not in first.replies])
    for r in known:
        done.replies[r.key] = first.replies[r.key]
        if r.key in first.cached:
            done.cached.add(r.key)
        else:
            done.sent += 1
    done.fatal = done.fatal or first.fatal
    return done


def _count_tokens(stats: Stats, reply: Reply, from_cache: bool) -> None:
    usage = reply.usage or {}
    prompt, completion = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
    stats.prompt_tokens += prompt
    stats.completion_tokens += completion
    if not from_cache:
        stats.new_prompt_tokens += prompt
        stats.new_completion_tokens += completion


def _take(
    task: Task, outcome: Outcome, reply: Reply, attempt: int, from_cache: bool, stats: Stats, early: Parsed | None
) -> Attempt:
    """Parse and check one reply (or take ``early``, its reading already done); keep its valid, new items (up to
    the number wanted)."""
    if reply.error is not None:  # the one client's failure kinds: request error, truncated, filtered
        if reply.kind == TRUNCATED:
            stats.truncated_replies += 1
        elif reply.kind == FILTERED:
            stats.filtered_replies += 1
        else:
            stats.failed_requests += 1
        raw = reply.text[:RAW_LIMIT] if reply.text is not None else None
        problem = reply.error if reply.kind in (TRUNCATED, FILTERED) else f"request failed: {reply.error}"
        return Attempt(attempt, raw, reply.error, [problem], 0, from_cache)
    raw = reply.text or ""
    read = early if early is not None else parse_reply(task, raw)
    if not read.found:
        stats.unparseable_replies += 1
        return Attempt(attempt, raw[:RAW_LIMIT], None, list(read.problems), 0, from_cache)
    valid, problems = read.valid, list(read.problems)
    seen = {task.identity(item) for item in outcome.items}
    kept = 0
    for item in valid:
        ident = task.identity(item)
        if ident in seen:
            problems.append(f"item repeats an earlier item of this task: {ident[:80]!r}")
            continue
        if len(outcome.items) >= outcome.wanted:
            break
        seen.add(ident)
        outcome.items.append(item)
        kept += 1
    if problems:
        stats.replies_with_invalid_items += 1
        stats.item_problems += len(problems)
    return Attempt(attempt, raw[:RAW_LIMIT], None, problems, kept, from_cache)


def generator_settings(writer: LLMClient) -> dict:
    """The generator's settings for reports and cards (an API key is never a config field)."""
    keep = ("backend", "model", "base_url", "temperature", "extra_body")
    return {k: v for k, v in public_settings(writer.config.to_dict(), keep).items() if v not in (None, {}, "")}
