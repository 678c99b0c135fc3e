"""CulturaX release (one CSV) -> validated, deduplicated, leakage-free split -> Hub layout.

Reads ``CulturaX.csv`` exactly as the authors published it (Windows-1252, a trailing empty column).
Exact repeats of a question are merged (the first row wins; every merged row is listed in the
report). Fingerprints are recomputed with the project's one SimHash search (the upstream
``simhash_id`` column was mangled into floats by a spreadsheet); near-duplicate clusters at a
Hamming radius (the paper's tau = 10 by default) are kept inside one split, so cross-split leakage is
zero by construction, and the report proves it by checking every pair. Rows whose references do not
address their question are flagged, not deleted. Every problem names file, row and column.
"""

from __future__ import annotations

import json
import math
import random
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from culturesafe_ext import near_duplicates as nd
from culturesafe_ext.data import textio
from culturesafe_ext.data.culturax_schema import ALL, DOMAINS, FEATURES, SPLITS, SUBDOMAINS, config_name

from .adaculturesafe import Problem
from .hub_layout import CardText, ConfigTable, write_hub_dataset

UPSTREAM = "gskgautam/AlignCultura@38930cf"
DEFAULT_THRESHOLD = 10  # the paper's tau: Hamming distance between 64-bit SimHash fingerprints
DEFAULT_SEED = 42
FRACTIONS = {"train": 0.8, "validation": 0.1, "test": 0.1}
SUSPECT_THRESHOLD = 0.025  # tf-idf cosine between a question and its references, calibrated by eye (card)
SWEEP = (3, 6, 8, 10, 12, 14, 16, 20)
REQUIRED = ("Question", "class", "domain", "helpful_response", "harmless_response", "honest_response")
OPTIONAL = ("simhash_id", "pass_hhh")
CITATION = """@inproceedings{kashyap2026aligncultura,
  title     = {AlignCultura: Towards Culturally Aligned Large Language Models},
  author    = {Kashyap, Gautam Siddharth and Dras, Mark and Naseem, Usman},
  booktitle = {Proceedings of the Annual Meeting of the Association for Computational Linguistics (ACL)},
  year      = {2026},
  note      = {arXiv:2604.19016}
}"""


class CulturaXError(ValueError):
    """The CSV cannot be built: every problem is listed with its row and column."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        listed = "\n".join(f"  {p}" for p in problems[:50])
        more = f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else ""
        super().__init__(f"{len(problems)} problem(s) in the CulturaX CSV:\n{listed}{more}")


@dataclass
class SourceRow:
    """One CSV record as read, with its spreadsheet row number (the header is row 1)."""

    row: int
    question: str
    subdomain_id: int
    topic: str
    helpful: str
    harmless: str
    honest: str


@dataclass
class Build:
    """What the builder produced: the written rows and everything the report and card state."""

    rows: list[dict] = field(default_factory=list)
    report: dict = field(default_factory=dict)


# --------------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------------


def read_csv(path: Path, encoding: str = "auto") -> tuple[list[SourceRow], str]:
    """Parse and validate the CSV; return its rows and the encoding used, or raise :class:`CulturaXError`.

    Read through the project's one text reader (:func:`culturesafe_ext.data.textio.read_csv`):
    ``encoding="auto"`` is UTF-8, or Windows-1252 (the release's) only for a file none of whose
    non-ASCII fields is UTF-8; a file mixing both fails at each foreign field's line and column
    instead of being decoded wholesale either way. A duplicated or missing header name, a bad byte,
    a control character, a missing column or an empty field fails the build naming row and column.
    """
    name = path.name
    try:
        table = textio.read_csv(path, encoding, allow_trailing_unnamed=True)
    except textio.TextInputError as err:
        raise CulturaXError([_problem(p) for p in err.problems]) from None
    problems: list[Problem] = [_problem(p) for p in table.problems]
    header = table.header
    missing = [c for c in REQUIRED if c not in header]
    for column in missing:
        problems.append(Problem(name, "header", column, f"missing column (the header has {header})"))
    unknown = [h for h in header if h and h not in REQUIRED + OPTIONAL]
    for column in unknown:
        problems.append(Problem(name, "header", column, "unexpected column"))
    if missing or unknown:
        raise CulturaXError(problems)
    index = {h: i for i, h in enumerate(header) if h}
    unnamed = [i for i, h in enumerate(header) if not h]
    rows: list[SourceRow] = []
    for record in table.records:
        number, cells_in = record.row, record.cells
        where = f"row {number}"
        if not any(cell.strip() for cell in cells_in):
            problems.append(Problem(name, where, "-", "empty row"))
            continue
        if len(cells_in) != len(header):
            problems.append(Problem(name, where, "-", f"{len(cells_in)} fields, the header has {len(header)}"))
            continue
        for i in unnamed:
            if cells_in[i].strip():
                message = f"value {cells_in[i]!r} under an unnamed column"
                problems.append(Problem(name, where, f"column {i + 1}", message))
        cells = {c: cells_in[index[c]].strip() for c in REQUIRED}
        bad = False
        for column in REQUIRED:
            control = textio.control_characters(cells[column])
            if control:
                problems.append(Problem(name, f"{where} (line {record.line})", column, control))
                bad = True
        for column in ("Question", "helpful_response", "harmless_response", "honest_response"):
            if not cells[column]:
                problems.append(Problem(name, where, column, "empty"))
                bad = True
        class_text = cells["class"]
        if not re.fullmatch(r"\d+", class_text):
            problems.append(Problem(name, where, "class", f"not a class id: {class_text!r}"))
            bad = True
        elif int(class_text) not in SUBDOMAINS:
            problems.append(
                Problem(name, where, "class", f"unknown class id {class_text} (known: {sorted(SUBDOMAINS)})")
            )
            bad = True
        if not bad:
            rows.append(
                SourceRow(
                    row=number,
                    question=_clean(cells["Question"]),
                    subdomain_id=int(class_text),
                    topic=cells["domain"],
                    helpful=_clean(cells["helpful_response"]),
                    harmless=_clean(cells["harmless_response"]),
                    honest=_clean(cells["honest_response"]),
                )
            )
    if problems:
        raise CulturaXError(problems)
    if not rows:
        raise CulturaXError([Problem(name, "-", "-", "no data rows")])
    return rows, table.encoding


def _problem(p: textio.InputProblem) -> Problem:
    return Problem(p.file, p.record, p.field, p.message)


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def merge_repeats(rows: list[SourceRow]) -> tuple[list[SourceRow], list[dict]]:
    """One row per distinct question (the first occurrence); the report lists every merged row.

    "The same question" is the project's one normalisation (:func:`culturesafe_ext.data.textio.norm`), so a
    repeat that differs only by a no-break space or a full-width letter is merged too.
    """
    first: dict[str, SourceRow] = {}
    merged: dict[str, list[SourceRow]] = defaultdict(list)
    for row in rows:
        key = textio.norm(row.question)
        if key in first:
            merged[key].append(row)
        else:
            first[key] = row
    report = []
    for key, repeats in merged.items():
        kept = first[key]
        report.append(
            {
                "question": kept.question,
                "kept_row": kept.row,
                "merged_rows": [r.row for r in repeats],
                "same_class": all(r.subdomain_id == kept.subdomain_id for r in repeats),
                "same_references": all(
                    (r.helpful, r.harmless, r.honest) == (kept.helpful, kept.harmless, kept.honest) for r in repeats
                ),
                "merged_references": [
                    {"row": r.row, "helpful": r.helpful, "harmless": r.harmless, "honest": r.honest} for r in repeats
                ],
            }
        )
    return list(first.values()), report


# --------------------------------------------------------------------------------------------------
# Reference audit: do the references address their question?
# --------------------------------------------------------------------------------------------------

_STOP = frozenset(
    """a an the and or but if of to in on at for from by with about as into like through over after before between
    under is are was were be been being am do does did doing have has had having i me my we our you your he she it its
    they them their this that these those what which who whom whose when where why how can could should would will
    shall may might must not no so than too very just also any some such own same other more most many much few each
    every all both only there here then out up down off again further once don really want know heard think make sure
    get going way thing things help tips give advice someone people person""".split()
)


def content_stems(text: str) -> set[str]:
    """Lower-cased words minus stop words, cut to 5 letters (a crude stem: Germany ~ Germans)."""
    words = re.findall(r"[a-z]+", text.lower().replace("\u2019", "'"))
    return {w[:5] for w in words if len(w) > 2 and w not in _STOP}


def reference_relevance(questions: list[str], references: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """TF-IDF cosine of each question with its own references; and the question its references fit best.

    Returns (own similarity, index of the best other question, its similarity). Why tf-idf on stems:
    it needs no model download, is exact to reproduce, and a shared rare word ("salsa", "Holi") weighs
    more than a common one ("culture").
    """
    q_sets = [content_stems(q) for q in questions]
    r_sets = [content_stems(r) for r in references]
    vocab = {w: i for i, w in enumerate(sorted(set().union(*q_sets, *r_sets)))}
    df = Counter(w for s in q_sets + r_sets for w in s)
    n_docs = len(q_sets) + len(r_sets)
    idf = np.array([math.log(n_docs / df[w]) for w in vocab])

    def matrix(sets: list[set[str]]) -> np.ndarray:
        m = np.zeros((len(sets), len(vocab)))
        for i, s in enumerate(sets):
            cols = [vocab[w] for w in s]
            m[i, cols] = idf[cols]
        return m / (np.linalg.norm(m, axis=1, keepdims=True) + 1e-12)

    sim = matrix(r_sets) @ matrix(q_sets).T  # sim[i, j]: references of i vs question j
    own = np.diag(sim).copy()
    np.fill_diagonal(sim, -1.0)
    best = sim.argmax(axis=1) if len(questions) > 1 else np.zeros(len(questions), dtype=int)
    return own, best, sim.max(axis=1) if len(questions) > 1 else np.zeros(len(questions))


def audit_references(rows: list[SourceRow], threshold: float = SUSPECT_THRESHOLD) -> list[str]:
    """Per row: "" if its references look on topic, else the reason it is flagged (with the figures)."""
    refs = [f"{r.helpful} {r.harmless} {r.honest}" for r in rows]
    own, best, best_sim = reference_relevance([r.question for r in rows], refs)
    reasons = []
    for i, _ in enumerate(rows):
        if own[i] >= threshold:
            reasons.append("")
            continue
        reason = f"question and references share almost no content words (tf-idf cosine {own[i]:.2f} < {threshold})"
        if best_sim[i] >= own[i] + 0.1:
            reason += f"; the references fit the question of row {rows[best[i]].row} better ({best_sim[i]:.2f})"
        reasons.append(reason)
    return reasons


# --------------------------------------------------------------------------------------------------
# Split
# --------------------------------------------------------------------------------------------------


def _largest_remainder(total: int, weights: dict, fraction: float) -> dict:
    """Integer shares of ``total`` proportional to ``weights`` (each about weight * fraction)."""
    exact = {k: w * fraction for k, w in weights.items()}
    shares = {k: math.floor(v) for k, v in exact.items()}
    left = total - sum(shares.values())
    for k in sorted(exact, key=lambda k: (shares[k] - exact[k], str(k)))[: max(left, 0)]:
        shares[k] += 1
    return shares


def split_units(units: list[list[int]], subdomain: list[int], domain: list[str], seed: int) -> list[str]:
    """Assign whole units (near-duplicate clusters, or single questions) to train/validation/test.

    Stratified by subdomain within each UNESCO domain: per domain, validation and test each get
    ``round(10% of its questions)`` (at least one when the domain has three or more), shared out over
    its subdomains by largest remainder; units are placed largest first, in a seeded random order,
    where their subdomain still needs questions. A unit is never divided, so no near-duplicate pair
    can straddle two splits. Returns the split of every question.
    """
    rng = random.Random(seed)
    split = [""] * len(subdomain)
    by_domain: dict[str, list[list[int]]] = defaultdict(list)
    for unit in units:
        by_domain[domain[unit[0]]].append(unit)
    for dom in sorted(by_domain):
        members = by_domain[dom]
        n = sum(len(u) for u in members)
        per_sub = Counter(subdomain[u[0]] for u in members for _ in u)
        need_dom, need_sub = {}, {}
        for s in ("validation", "test"):
            quota = max(1, round(n * FRACTIONS[s])) if n >= 3 else 0
            need_dom[s] = quota
            need_sub[s] = _largest_remainder(quota, per_sub, quota / n)
        order = members[:]
        rng.shuffle(order)
        order.sort(key=len, reverse=True)
        placed: dict[int, str] = {}
        for k, unit in enumerate(order):
            sub, size = subdomain[unit[0]], len(unit)
            options = [s for s in ("test", "validation") if need_sub[s].get(sub, 0) > 0 and need_dom[s] >= size]
            target = max(options, key=lambda s: need_sub[s][sub]) if options else "train"
            if target != "train":
                need_sub[target][sub] -= size
                need_dom[target] -= size
            placed[k] = target
        for s in ("test", "validation"):  # domain quota left (clusters too big for a subdomain): fill from train
            for k, unit in enumerate(order):
                if need_dom[s] <= 0:
                    break
                if placed[k] == "train" and len(unit) <= need_dom[s]:
                    placed[k] = s
                    need_dom[s] -= len(unit)
        for k, unit in enumerate(order):
            for i in unit:
                split[i] = placed[k]
    return split


def leakage(fingerprints: list[int], split: list[str], threshold: int) -> dict:
    """Every pair within ``threshold`` (exact search), and how many of them cross a split boundary."""
    pairs = nd.near_duplicate_pairs(np.array(fingerprints, dtype=np.uint64), threshold)
    crossing = [(int(i), int(j)) for i, j in pairs.tolist() if split[i] != split[j]]
    return {"threshold": threshold, "pairs_within_threshold": len(pairs), "pairs_across_splits": len(crossing)}


# --------------------------------------------------------------------------------------------------
# Build
# --------------------------------------------------------------------------------------------------


def build(
    source: Path,
    out: Path,
    *,
    threshold: int = DEFAULT_THRESHOLD,
    seed: int = DEFAULT_SEED,
    suspect_threshold: float = SUSPECT_THRESHOLD,
    encoding: str = "auto",
    source_commit: str = UPSTREAM,
) -> Build:
    """Read ``source`` (CulturaX.csv) and write the Hub layout, report and card into ``out``."""
    read, used_encoding = read_csv(source, encoding)
    rows, merged = merge_repeats(read)
    fps = [nd.fingerprint(r.question) for r in rows]
    pairs = nd.near_duplicate_pairs(np.array(fps, dtype=np.uint64), threshold)
    groups = nd.clusters(len(rows), pairs)
    in_group = {i for g in groups for i in g}
    units = groups + [[i] for i in range(len(rows)) if i not in in_group]
    subs = [SUBDOMAINS[r.subdomain_id] for r in rows]
    split = split_units(units, [s.id for s in subs], [s.domain for s in subs], seed)
    reasons = audit_references(rows, suspect_threshold)
    ids = [f"r{r.row:04d}" for r in rows]
    cluster_of = {i: ids[g[0]] for g in groups for i in g}
    out_rows = [
        {
            "id": ids[i],
            "question": r.question,
            "helpful": r.helpful,
            "harmless": r.harmless,
            "honest": r.honest,
            "subdomain_id": r.subdomain_id,
            "subdomain": subs[i].name,
            "domain": subs[i].domain,
            "topic": r.topic,
            "simhash": nd.to_hex(fps[i]),
            "cluster_id": cluster_of.get(i, ids[i]),
            "reference_suspect": bool(reasons[i]),
            "reference_suspect_reason": reasons[i],
            "split": split[i],
        }
        for i, r in enumerate(rows)
    ]
    report = _report(read, rows, out_rows, merged, fps, pairs, groups, threshold, seed, used_encoding, source_commit)
    report["reference_audit"]["threshold"] = suspect_threshold
    tables = []
    domains = [d for d in DOMAINS if any(r["domain"] == d for r in out_rows)]
    for dom in [ALL, *domains]:
        for s in SPLITS:
            subset = [r for r in out_rows if r["split"] == s and dom in (ALL, r["domain"])]
            tables.append(ConfigTable(config_name(dom), s, FEATURES, subset))
    write_hub_dataset(out, tables, _card(report))
    (out / "build_report.json").write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    return Build(rows=out_rows, report=report)


def _report(read, rows, out_rows, merged, fps, pairs, groups, threshold, seed, encoding, source_commit) -> dict:
    fps_arr = np.array(fps, dtype=np.uint64)
    sweep = {}
    for tau in SWEEP:
        p = nd.near_duplicate_pairs(fps_arr, tau)
        c = nd.clusters(len(rows), p)
        sweep[str(tau)] = {
            "pairs": len(p),
            "clusters": len(c),
            "questions_in_clusters": sum(map(len, c)),
            "largest": max(map(len, c), default=1),
        }
    largest = max(groups, key=len, default=[])
    split_counts = Counter(r["split"] for r in out_rows)
    by_domain = defaultdict(Counter)
    by_sub = defaultdict(Counter)
    for r in out_rows:
        by_domain[r["domain"]][r["split"]] += 1
        by_sub[f"{r['subdomain_id']} {r['subdomain']}"][r["split"]] += 1
    suspects = [r for r in out_rows if r["reference_suspect"]]
    return {
        "source_commit": source_commit,
        "encoding": encoding,
        "rows_read": len(read),
        "distinct_questions": len(rows),
        "repeats_merged": {
            "rows": sum(len(m["merged_rows"]) for m in merged),
            "questions": len(merged),
            "list": merged,
        },
        "near_duplicates": {
            "threshold": threshold,
            "pairs": [
                {
                    "a": out_rows[i]["id"],
                    "b": out_rows[j]["id"],
                    "distance": bin(fps[i] ^ fps[j]).count("1"),
                    "question_a": rows[i].question,
                    "question_b": rows[j].question,
                }
                for i, j in pairs.tolist()
            ],
            "clusters": len(groups),
            "questions_in_clusters": sum(map(len, groups)),
            "largest_cluster_size": len(largest),
            "largest_cluster": [rows[i].question for i in largest],
            "threshold_sweep": sweep,
        },
        "split": {
            "seed": seed,
            "counts": {s: split_counts[s] for s in SPLITS},
            "by_domain": {d: {s: by_domain[d][s] for s in SPLITS} for d in DOMAINS},
            "by_subdomain": {
                k: {s: v[s] for s in SPLITS} for k, v in sorted(by_sub.items(), key=lambda kv: int(kv[0].split()[0]))
            },
            "leakage": leakage(fps, [r["split"] for r in out_rows], threshold),
        },
        "reference_audit": {
            "method": "tf-idf cosine over 5-letter word stems (stop words removed) between the question and its "
            "three references concatenated",
            "flagged": len(suspects),
            "flagged_by_split": dict(Counter(r["split"] for r in suspects)),
            "list": [
                {
                    "id": r["id"],
                    "reason": r["reference_suspect_reason"],
                    "question": r["question"],
                    "helpful": r["helpful"],
                }
                for r in suspects
            ],
        },
        "labels": {
            "subdomains_inferred": [
                f"{s.id} {s.name}"
                for s in SUBDOMAINS.values()
                if s.inferred and any(r.subdomain_id == s.id for r in rows)
            ],
            "topics_distinct": len({r.topic for r in rows}),
        },
    }


def _card(report: dict) -> CardText:
    split = report["split"]
    lines = ["| domain | train | validation | test |", "|---|---|---|---|"]
    for dom, counts in split["by_domain"].items():
        lines.append(f"| {dom} | {counts['train']} | {counts['validation']} | {counts['test']} |")
    c = split["counts"]
    lines.append(f"| **all** | {c['train']} | {c['validation']} | {c['test']} |")
    sub_lines = ["| id | subdomain | domain | questions |", "|---|---|---|---|"]
    for key, counts in split["by_subdomain"].items():
        sid = int(key.split()[0])
        s = SUBDOMAINS[sid]
        mark = " (inferred)" if s.inferred else ""
        sub_lines.append(f"| {sid} | {s.name}{mark} | {s.domain} | {sum(counts.values())} |")
    near = report["near_duplicates"]
    sweep = " ".join(
        f"tau={t}: {v['pairs']} pairs, largest cluster {v['largest']};" for t, v in near["threshold_sweep"].items()
    )
    merged = report["repeats_merged"]
    audit = report["reference_audit"]
    leak = split["leakage"]
    return CardText(
        pretty_name="CulturaX",
        summary=(
            "Culture questions over the UNESCO cultural domains, each with three reference answers "
            "(helpful, harmless, honest), from AlignCultura. Built by `culturesafe build culturax` from the "
            "authors' CSV; evaluate with `lm_eval --tasks culturax` after `pip install culturesafe`."
        ),
        sections=[
            (
                "Source",
                f"Upstream `{report['source_commit']}`, file `CulturaX.csv` ({report['encoding']}, "
                f"{report['rows_read']} rows). No licence is stated upstream, hence `license: unknown`. "
                "The upstream `simhash_id` column (mangled into floats by a spreadsheet) and `pass_hhh` "
                '("1,1,1" on every row) are not carried over.',
            ),
            (
                "Configs and splits",
                "`all` and one config per UNESCO domain (`cultural_and_natural_heritage`, ...), each with "
                "`train`, `validation` and `test` splits (seeded 80/10/10, stratified by subdomain within each "
                "domain; every domain with three or more questions gets at least one validation and one test "
                "question). Row ids are `r<upstream row number>`.\n\n" + "\n".join(lines),
            ),
            (
                "Labels",
                "`subdomain_id` is the upstream `class`; `subdomain` its name from the authors' README, where "
                "ids 5, 18 and 36 are missing from the id table: their names (Zoos and Aquariums, Radio, "
                "Magazines) are inferred from the README's class-count table (the counts match exactly) and "
                "marked below. `domain` assigns each subdomain to one of the nine UNESCO FCS 2009 domains "
                "(our assignment; no subdomain of the release falls under Tourism). The upstream free-text "
                f"`domain` column ({report['labels']['topics_distinct']} distinct values) is kept as `topic`."
                "\n\n" + "\n".join(sub_lines),
            ),
            (
                "Duplicates and near-duplicates",
                f"{report['distinct_questions']} distinct questions: {merged['rows']} rows repeated "
                f"{merged['questions']} questions word for word and were merged into their first occurrence "
                "(their references differ, so the merged rows' references are listed in `build_report.json`). "
                f"SimHash (64-bit, the `simhash` package, 4-character shingles of the normalised question) at "
                f"Hamming distance <= {near['threshold']}: {len(near['pairs'])} pairs, {near['clusters']} clusters, "
                f"largest {near['largest_cluster_size']} questions. What the threshold really catches: only "
                "near-verbatim variants of one template (e.g. the same question with one word changed). A looser "
                f'threshold chains unrelated questions that share a frame ("I\'m planning a trip to ..."): {sweep}',
            ),
            (
                "Leakage check",
                f"Every pair of questions within Hamming distance {leak['threshold']} was found by exact search "
                f"({leak['pairs_within_threshold']} pairs); pairs whose two questions are in different splits: "
                f"**{leak['pairs_across_splits']}**. Clusters are assigned to one split as a whole, so this is zero "
                "by construction.",
            ),
            (
                "Reference audit",
                f"`reference_suspect` flags {audit['flagged']} questions whose references do not seem to address "
                f"them ({audit['method']}; flagged below {audit['threshold']}, a threshold set on rows checked by "
                "eye, e.g. row 4 asks about American humour and its references are about salsa; in the first "
                "rows of the CSV whole blocks of references are shifted by one or more rows). Nothing is deleted; "
                "the reason (with the figures) is in `reference_suspect_reason`. A lexical test also flags short "
                'generic references that do answer ("Understand religious symbolism; avoid generalizations."), '
                "and misses off-topic references that share a word with the question: read it as a triage list.",
            ),
        ],
        citation=CITATION,
        tags=["cultural-alignment", "hhh", "lm-eval"],
    )
