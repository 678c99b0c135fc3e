"""The CulturaX build's report (``build_report.json``) and dataset card: counts, merges, sweep, splits, flags."""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np

from culturesafe_ext import near_duplicates as nd
from culturesafe_ext.data.culturax_schema import DOMAINS, SPLITS, SUBDOMAINS

from .culturax_split import leakage
from .hub_layout import CardText

SWEEP = (3, 6, 8, 10, 12, 14, 16, 20)

CITATION = """@inproceedings{kashyap2026aligncultura,
  title     = {AlignCultura: Towards Culturally Aligned Large Language Models},
  author    = {Kashyap, Gautam Siddharth and Dras, Mark and Naseem, Usman},
  booktitle = {Proceedings of the Annual Meeting of the Association for Computational Linguistics (ACL)},
  year      = {2026},
  note      = {arXiv:2604.19016}
}"""


def build_report(read, rows, out_rows, merged, fps, pairs, groups, threshold, seed, encoding, source_commit) -> dict:
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


def card(report: dict) -> CardText:
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
