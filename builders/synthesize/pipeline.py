"""The synthesis pipeline: queries -> passages -> docs in the task's schema -> filters -> items.

Each LLM stage is one :func:`builders.generate.engine.run` (all requests of the stage at once, concurrently,
through the one LLM client and its sqlite cache; bounded retries with feedback; unparseable replies counted),
retrieval is one :meth:`Sources.retrieve` (concurrent, through the sources cache). A killed run therefore
resumes with no repeated search or LLM call, and a re-run sends nothing.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from urllib.parse import urlsplit

from culturesafe_ext.data.adaculturesafe_schema import slug
from culturesafe_ext.data.leakage import content_text, find_leaks
from culturesafe_ext.data.task_format import TaskFormat, example_block
from culturesafe_ext.data.textio import norm
from culturesafe_ext.near_duplicates import fingerprint
from culturesafe_ext.sources import Passage, Sources
from culturesafe_ext.sources.language import LANGUAGE_CHARS, language_of
from culturesafe_ext.sources.retrieve import Retrieval

from ..generate import engine
from ..generate.balance import balance_gold
from ..generate.dedup import remove_near_duplicates
from .docs import ID_FIELDS, docs_in_reply, fill_ids, is_mcq, queries_in_reply
from .llm import LLMClient, LLMRequest, Reply, Template, load_prompt

log = logging.getLogger("culturesafe.synthesize")
SPECIFIC, AGNOSTIC = "specific", "agnostic"
QUERY_MODES = {"specific": (SPECIFIC,), "agnostic": (AGNOSTIC,), "both": (SPECIFIC, AGNOSTIC)}


COMPLETIONS = ("auto", "target", "answer")
ANSWER_TASK_PREFIXES = ("adaculturesafe_safety",)  # tasks whose target is the gold custom, not a response


def answers_needed(fmt: TaskFormat, completion: str) -> bool:
    """Whether completions are model-written answers: ``answer``, or ``auto`` on our safety tasks (their
    ``doc_to_target`` is the custom the judge reads, not a response to train on)."""
    if completion == "auto":
        return fmt.output_type == "generate_until" and fmt.name.startswith(ANSWER_TASK_PREFIXES)
    if completion == "answer" and fmt.output_type != "generate_until":
        raise ValueError(f"--completion answer: {fmt.name} is a {fmt.output_type} task; answers need generate_until")
    return completion == "answer"


@dataclass(frozen=True)
class SynthesisSettings:
    cultures: tuple[str, ...]
    queries: str = "both"
    n_specific: int = 5
    n_agnostic: int = 5
    per_passage: int = 2
    k: int = 3  # passages per query
    max_passages: int | None = None  # per culture and query type
    passage_chars: int = 4000  # of a passage shown to the generator (its evidence must be in that part)
    threshold: int = 10  # SimHash Hamming radius: near-duplicates and leakage
    seed: int = 1234
    max_attempts: int = 2
    max_tokens: int = 2048
    version: str = "v1"
    completion: str = "auto"  # see answers_needed
    min_respect: float | None = None  # with a judge: keep answers it scores at least this (1-10)
    language: str = "auto"  # passages must be in this language (ISO 639-1); auto: the example docs'; any: no check


@dataclass
class StageCounts:
    """What one LLM stage asked, got and rejected (every figure a count)."""

    stats: dict = field(default_factory=dict)
    rejections: dict = field(default_factory=dict)
    incomplete: list = field(default_factory=list)
    invalid_replies: list = field(default_factory=list)  # every reply with a problem: raw text (capped), problems


def _stage(
    client: LLMClient,
    tasks: list[engine.Task],
    settings: SynthesisSettings,
    reasons: Counter[str],
    first: engine.FirstRound | None = None,
) -> tuple[list[engine.Outcome], StageCounts]:
    outcomes, stats = engine.run(client, tasks, settings.max_attempts, settings.max_tokens, first)
    counts = StageCounts(stats=asdict(stats), rejections=dict(sorted(reasons.items())))
    if stats.unparseable_replies:
        counts.rejections["unparseable reply"] = stats.unparseable_replies
    failed = stats.failed_requests + stats.truncated_replies + stats.filtered_replies
    if failed:
        counts.rejections["request failed, truncated or filtered"] = failed
    counts.incomplete = [o.report() for o in outcomes if not o.complete]
    counts.invalid_replies = [
        {"key": o.key, **asdict(a)} for o in outcomes if o.complete for a in o.attempts if a.problems
    ]
    return outcomes, counts


def write_queries(
    fmt: TaskFormat, client: LLMClient, settings: SynthesisSettings
) -> tuple[dict[tuple[str, str], list[str]], StageCounts, int]:
    """(culture, query type) -> distinct queries; the stage's counts; duplicates removed."""
    prompts = {kind: load_prompt(f"queries_{kind}", settings.version) for kind in (SPECIFIC, AGNOSTIC)}
    wanted = {SPECIFIC: settings.n_specific, AGNOSTIC: settings.n_agnostic}
    reasons: Counter[str] = Counter()
    examples = example_block(fmt, ID_FIELDS)
    tasks = [
        engine.Task(
            key=f"{culture}/queries/{kind}",
            prompt=prompts[kind],
            values={
                "task": fmt.name,
                "description": fmt.description or "(none)",
                "examples": examples,
                "culture": culture,
            },
            n_items=wanted[kind],
            parse=lambda obj: _wrap(queries_in_reply(obj, reasons)),
            identity=lambda item: norm(item["query"], casefold=True),
        )
        for culture in settings.cultures
        for kind in QUERY_MODES[settings.queries]
        if wanted[kind] > 0
    ]
    outcomes, counts = _stage(client, tasks, settings, reasons)
    out: dict[tuple[str, str], list[str]] = {}
    duplicates = 0
    for culture in settings.cultures:
        seen: set[str] = set()
        for kind in QUERY_MODES[settings.queries]:
            found = next((o for o in outcomes if o.key == f"{culture}/queries/{kind}"), None)
            kept = []
            for item in found.items if found else []:
                ident = norm(item["query"], casefold=True)
                if ident in seen:
                    duplicates += 1
                    continue
                seen.add(ident)
                kept.append(item["query"])
            out[culture, kind] = kept
    return out, counts, duplicates


def _wrap(result: tuple[list[str], list[str]]) -> tuple[list[dict], list[str]]:
    queries, problems = result
    return [{"query": q} for q in queries], problems


def retrieve(
    sources: Sources,
    queries: dict[tuple[str, str], list[str]],
    settings: SynthesisSettings,
    early: EarlyDocs | None = None,
) -> tuple[dict[tuple[str, str], list[Passage]], dict]:
    """(culture, query type) -> distinct passages (by content hash, per culture); the retrieval report.

    ``early``: each query's passages are handed to it as they arrive (the docs stage's first requests go out
    while other searches and fetches are still running)."""
    everything = list(dict.fromkeys(q for qs in queries.values() for q in qs))
    if early is None:
        retrieval = sources.retrieve_sync(everything, settings.k)
    else:
        retrieval = early.run(sources, queries, everything)
    by_query: dict[str, list[Passage]] = {}
    for p in retrieval.passages:
        by_query.setdefault(p.query, []).append(p)
    out: dict[tuple[str, str], list[Passage]] = {}
    capped = 0
    for culture in settings.cultures:
        seen: set[str] = set()
        for kind in QUERY_MODES[settings.queries]:
            mine = []
            for q in queries.get((culture, kind), []):
                for p in by_query.get(q, []):
                    if p.content_hash not in seen:
                        seen.add(p.content_hash)
                        mine.append(p)
            if settings.max_passages is not None and len(mine) > settings.max_passages:
                capped += len(mine) - settings.max_passages
                mine = mine[: settings.max_passages]
            out[culture, kind] = mine
    report = {
        "summary": retrieval.summary(),
        "queries": len(everything),
        "passages": len(retrieval.passages),
        "searches_sent": retrieval.searches_sent,
        "searches_cached": retrieval.searches_cached,
        "pages_fetched": retrieval.pages_fetched,
        "pages_cached": retrieval.pages_cached,
        "rejections": dict(sorted(retrieval.rejection_counts().items())),
        "rejected": [r.model_dump() for r in retrieval.rejections],
        "passages_over_cap": capped,
    }
    return out, report


class EarlyDocs:
    """The docs stage's first requests, sent as each query's passages arrive instead of after all retrieval.

    Why: retrieval (searches, page fetches) and generation wait on different servers; overlapping them is most
    of a run's wall time. Determinism is kept because only *first-attempt requests* go out early: a request
    depends on the culture and the passage alone (not on the query type or arrival order), the stage itself
    still runs over the final passages in their stable order (:func:`write_docs`), and it takes these replies
    as the replies of its first round (:func:`engine.run`'s ``first``). Each passage's language is decided
    here once (:attr:`languages`, reused by :func:`keep_language`), and a passage in another language is not
    asked about. Not used with ``max_passages`` (which passages are kept is known only once all are in).
    """

    def __init__(self, fmt: TaskFormat, client: LLMClient, settings: SynthesisSettings, language: str | None) -> None:
        self.fmt, self.client, self.settings, self.language = fmt, client, settings, language
        self.languages: dict[str, str] = {}  # passage content hash -> its language (py3langid)
        self.first: engine.FirstRound | None = None  # once run() is over: the replies, requests and readings
        self.reasons: Counter[str] = Counter()  # the docs stage's rejection counts (the early readings' included)
        self.parsed: dict[str, engine.Parsed] = {}  # request key -> its first reply, read as it arrived
        self._asked: dict[str, engine.Task] = {}  # request key -> the task whose first attempt it is
        self.requests: dict[str, LLMRequest] = {}  # task key -> its first request (the stage reuses it)
        self._prompt = load_prompt("docs", settings.version)
        self._examples = example_block(fmt, ID_FIELDS)
        self._keys = ", ".join(k for k in fmt.keys if k not in ID_FIELDS)

    def language_of(self, p: Passage) -> str:
        found = self.languages.get(p.content_hash)
        if found is None:
            found = self.languages[p.content_hash] = passage_language(p, self.settings.passage_chars)
        return found

    def _first_request(self, culture: str, p: Passage) -> LLMRequest:
        """The docs task's first request, exactly as the stage builds it; the task is kept to read its reply."""
        key, examples, keys = doc_key(culture, p), self._examples, self._keys
        task = _doc_task(self._prompt, self.fmt, culture, p, key, examples, keys, self.settings, self.reasons)
        request = engine.first_request(self.client, task, self.settings.max_tokens)
        self._asked.setdefault(request.key, task)
        self.requests.setdefault(key, request)
        return request

    def _read(self, request: LLMRequest, reply: Reply) -> None:
        """Read a first reply as it arrives, by the task the docs stage will give it (same key, same passage, same
        rejection counts), while the event loop would otherwise wait for the next one; the stage then only
        collects. Its valid docs' SimHash fingerprints are taken now too (remembered: the filters reuse them)."""
        task = self._asked.pop(request.key, None)
        if task is None or reply.error is not None:
            return
        read = self.parsed[request.key] = engine.parse_reply(task, reply.text or "")
        if not is_mcq(self.fmt):  # an MCQ's options are shuffled before the filters: its text changes
            for item in read.valid:
                fingerprint(content_text(item["doc"], self.fmt.keys))

    def run(self, sources: Sources, queries: dict[tuple[str, str], list[str]], everything: list[str]) -> Retrieval:
        from culturesafe_ext.sources.http import run_sync

        owners: dict[str, list[str]] = {}
        for (culture, _), found in queries.items():
            for q in found:
                owners.setdefault(q, []).append(culture)
        box: list[Retrieval] = []

        async def go() -> None:
            try:
                async with self.client.stream(on_reply=self._read) as stream:

                    def on_query(query: str, passages: list[Passage]) -> None:
                        for culture in dict.fromkeys(owners.get(query, [])):
                            for p in passages:
                                if self.language is None or self.language_of(p) == self.language:
                                    stream.submit(self._first_request(culture, p))

                    box.append(await sources.retrieve(everything, self.settings.k, on_query=on_query))
                self.first = engine.FirstRound(stream.completion, self.requests, self.parsed)
            finally:
                await sources.aclose()

        run_sync(go)
        return box[0]


def task_language(fmt: TaskFormat, setting: str) -> str | None:
    """The language passages must be in: ``setting``, the example docs' own (``auto``), or None (``any``)."""
    if setting == "any":
        return None
    if setting != "auto":
        return setting.lower()
    return language_of(" ".join(content_text(d, fmt.keys) for d in fmt.example_docs))


def passage_language(p: Passage, chars: int) -> str:
    """The language of the part of ``p`` the generator sees (its first ``chars`` characters): the one its page's
    extraction decided when that is the same text (:attr:`Passage.language`), else py3langid's here."""
    if p.language is not None and min(len(p.text), chars) == min(len(p.text), LANGUAGE_CHARS):
        return p.language
    return language_of(p.text[:chars])


def keep_language(
    passages: dict[tuple[str, str], list[Passage]],
    language: str | None,
    chars: int,
    known: dict[str, str] | None = None,
) -> tuple[dict[tuple[str, str], list[Passage]], list[dict]]:
    """Passages in ``language`` (py3langid over the part the generator sees); the others, counted and listed.

    ``known``: languages already decided, by passage content hash (:attr:`EarlyDocs.languages`)."""
    if language is None:
        return passages, []
    known = known if known is not None else {}
    kept: dict[tuple[str, str], list[Passage]] = {}
    rejected = []
    for key, found in passages.items():
        kept[key] = []
        for p in found:
            found_language = known.get(p.content_hash) or passage_language(p, chars)
            if found_language == language:
                kept[key].append(p)
            else:
                rejected.append({"url": p.url, "corpus_id": p.corpus_id, "query": p.query, "language": found_language})
    return kept, rejected


def doc_key(culture: str, p: Passage) -> str:
    """A docs task's key (its docs' ids start with it): the culture and the passage, which alone decide its
    request, so a reply read as it arrives (:class:`EarlyDocs`) is read with the stage's own ids."""
    return f"{slug(culture)}/{p.content_hash[:16]}"


def _doc_task(
    prompt: Template,
    fmt: TaskFormat,
    culture: str,
    p: Passage,
    key: str,
    examples: str,
    keys: str,
    settings: SynthesisSettings,
    reasons: Counter[str],
) -> engine.Task:
    """The docs task of one passage (its request depends on the culture and the passage, not on ``key``)."""
    text = p.text[: settings.passage_chars]
    return engine.Task(
        key=key,
        prompt=prompt,
        values={
            "task": fmt.name,
            "description": fmt.description or "(none)",
            "keys": keys,
            "examples": examples,
            "culture": culture,
            "passage": text,
        },
        n_items=settings.per_passage,
        parse=_doc_parser(fmt, text, key, reasons),
        identity=lambda item: norm(item["prompt"] + item["completion"], casefold=True),
    )


def write_docs(
    fmt: TaskFormat,
    client: LLMClient,
    passages: dict[tuple[str, str], list[Passage]],
    settings: SynthesisSettings,
    early: EarlyDocs | None = None,
) -> tuple[list[dict], StageCounts]:
    """Rows (doc, prompt, completion, culture, kind, provenance) of every valid doc, in passage order.

    ``early``: first attempts already answered, and read, while retrieval ran (:class:`EarlyDocs`)."""
    prompt = load_prompt("docs", settings.version)
    reasons: Counter[str] = early.reasons if early is not None else Counter()
    examples = example_block(fmt, ID_FIELDS)
    keys = ", ".join(k for k in fmt.keys if k not in ID_FIELDS)
    tasks, where = [], {}
    for (culture, kind), found in passages.items():
        for p in found:
            key = doc_key(culture, p)
            if key in where:
                continue
            where[key] = (culture, kind, p)
            tasks.append(_doc_task(prompt, fmt, culture, p, key, examples, keys, settings, reasons))
    outcomes, counts = _stage(client, tasks, settings, reasons, early.first if early is not None else None)
    rows = []
    for outcome in outcomes:
        culture, kind, p = where[outcome.key]
        for n, item in enumerate(outcome.items):
            rows.append(
                {
                    "id": f"{outcome.key}/{n}",
                    "culture": slug(culture),
                    "culture_name": culture,
                    "kind": kind,
                    "task": fmt.name,
                    "prompt": item["prompt"],
                    "completion": item["completion"],
                    "doc": item["doc"],
                    "evidence": item["evidence"],
                    "provenance": provenance(p),
                    "passage": p.text[: settings.passage_chars],  # for the answer stage; not written out
                }
            )
    return rows, counts


def write_answers(
    client: LLMClient, rows: list[dict], settings: SynthesisSettings
) -> tuple[list[dict], StageCounts, list[dict]]:
    """A respectful, knowledge-grounded answer per row (its evidence must occur in the row's passage) as the
    completion; rows without a valid answer after the attempts are returned as rejected."""
    prompt = load_prompt("safety_answer", settings.version)
    reasons: Counter[str] = Counter()
    tasks = [
        engine.Task(
            key=f"{row['id']}/answer",
            prompt=prompt,
            values={"culture": row["culture_name"], "passage": row["passage"], "request": row["prompt"]},
            n_items=1,
            parse=_answer_parser(row["passage"], reasons),
            identity=lambda item: item["answer"],
        )
        for row in rows
    ]
    outcomes, counts = _stage(client, tasks, settings, reasons)
    kept, rejected = [], []
    for row, outcome in zip(rows, outcomes, strict=True):
        if outcome.items:
            answer = outcome.items[0]
            kept.append({**row, "completion": " " + answer["answer"], "answer_evidence": answer["evidence"]})
        else:
            rejected.append({"id": row["id"], "reason": "no grounded answer", "attempts": len(outcome.attempts)})
    return kept, counts, rejected


def _answer_parser(passage: str, reasons: Counter[str]) -> Callable:
    passage = norm(passage, casefold=True)  # once, not per reply

    def parse(obj: dict) -> tuple[list[dict], list[str]]:
        answer, evidence = obj.get("answer"), obj.get("evidence")
        if not isinstance(answer, str) or not answer.strip():
            reasons["answer: missing or empty"] += 1
            return [], ["answer: missing or empty"]
        if not isinstance(evidence, str) or norm(evidence, casefold=True) not in passage:
            reasons["answer: evidence not in the passage"] += 1
            return [], ["evidence: not a span of the passage"]
        return [{"answer": answer.strip(), "evidence": evidence.strip()}], []

    return parse


def _doc_parser(fmt: TaskFormat, passage: str, key: str, reasons: Counter[str]) -> Callable:
    normed: list[str] = []  # the passage normalised once, when the first reply is parsed

    def parse(obj: dict) -> tuple[list[dict], list[str]]:
        if not normed:
            normed.append(norm(passage, casefold=True))
        return docs_in_reply(obj, fmt, normed[0], key, reasons)

    return parse


def provenance(p: Passage) -> dict:
    """The passage's provenance without its text, plus the source domain (for the card's counts)."""
    out = p.model_dump(exclude={"text"})
    out["domain"] = (urlsplit(p.url).hostname or "") if p.url else f"corpus:{p.backend}"
    return out


def balance(rows: list[dict], fmt: TaskFormat, seed: int) -> list[dict]:
    """Our MCQ schema: gold positions spread evenly (``balance_gold``), each doc re-rendered by the task."""
    if not rows or not is_mcq(fmt):
        return rows
    balanced = balance_gold([{"id": r["id"], **r["doc"]} for r in rows], seed)
    out = []
    for row, b in zip(rows, balanced, strict=True):
        doc = fill_ids({**row["doc"], "options": b["options"], "gold_index": b["gold_index"]}, fmt, row["id"])
        prompt, completion = fmt.render(doc)
        out.append({**row, "doc": doc, "prompt": prompt, "completion": completion})
    return out


def remove_leaks(rows: list[dict], fmt: TaskFormat, threshold: int) -> tuple[list[dict], list[dict], int]:
    """(kept rows, removed rows each with its evaluation twin, number of evaluation docs compared)."""
    keys = fmt.keys
    evaluation = [(doc, content_text(doc, keys)) for doc in fmt.eval_docs()]
    leaks = find_leaks([content_text(r["doc"], keys) for r in rows], [t for _, t in evaluation], threshold)
    leaked = {leak.index: leak for leak in leaks}
    removed = [
        {
            "id": rows[i]["id"],
            "text": content_text(rows[i]["doc"], keys),
            "how": leak.how,
            "distance": leak.distance,
            "shared_13gram": leak.ngram,
            "twin_index": leak.twin_index,
            "twin_id": _doc_id(evaluation[leak.twin_index][0], leak.twin_index),
            "twin_text": evaluation[leak.twin_index][1],
        }
        for i, leak in leaked.items()
    ]
    return [r for i, r in enumerate(rows) if i not in leaked], removed, len(evaluation)


def _doc_id(doc: dict, index: int) -> str:
    for key in ("id", "doc_id", "idx"):
        if key in doc:
            return str(doc[key])
    return f"#{index}"


def dedup(rows: list[dict], fmt: TaskFormat, threshold: int) -> tuple[list[dict], list[dict]]:
    """Near-duplicates within the set, compared by what the docs say (the task's template is shared by all)."""
    keys = fmt.keys
    kept, removed, _ = remove_near_duplicates(rows, lambda r: content_text(r["doc"], keys), threshold)
    return kept, removed


def judge_answers(judge: object, rows: list[dict], threshold: float) -> tuple[list[dict], dict]:
    """Rejection sampling: keep the rows whose answer the judge scores >= ``threshold`` for respectfulness."""
    from .llm import respect_scores

    scores, summary = respect_scores(judge, rows)
    pairs = zip(rows, scores, strict=True)
    kept = [{**r, "judge_respectfulness": s} for r, s in pairs if s is not None and s >= threshold]
    below = sum(s is not None and s < threshold for s in scores)
    report = {"threshold": threshold, "judged": len(rows), "kept": len(kept), "below_threshold": below, **summary}
    return kept, report
