"""AdaCultureSafe release -> validated rows -> Hub layout.

Reads the authors' release exactly as published: one JSON per country, named by a Python tuple
literal ``('中国', 'China', 'CN', 'CHN', '156', '是').json``. Every country, id and config comes from
those files. Every problem is reported with file, record and field; nothing is dropped silently:
records read = records written + records rejected, per country.
"""

from __future__ import annotations

import ast
import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from culturesafe_ext.data import textio
from culturesafe_ext.data.adaculturesafe_schema import (
    ALL,
    SPLIT,
    config_name,
    features,
    option_letters,
    safety_query,
)
from culturesafe_ext.data.baselines import majority_letter, random_choice

from .hub_layout import CardText, ConfigTable, write_hub_dataset

UPSTREAM = "khk-abc/AdaCultureSafe@bc16669"
SOURCES = {"culturalatlas": "culturalatlas", "commisceo": "commisceo", "中国领事馆": "consular guide"}
CITATION = """@article{kang2026adaculturesafe,
  title   = {AdaCultureSafe: Adaptive Cultural Safety Grounded by Cultural Knowledge in Large Language Models},
  author  = {Kang, Hankun and others},
  journal = {arXiv preprint arXiv:2603.08275},
  year    = {2026}
}"""


class Problem(textio.InputProblem):
    """One validation failure of a release, located precisely enough to fix the file by hand.

    The project's one problem record (:class:`textio.InputProblem`), its record id quoted: release ids
    are free text (``record 'k-item_1-0'``).
    """

    @classmethod
    def of(cls, problem: textio.InputProblem) -> Problem:
        """A reader's problem, shown the release's way."""
        return cls(problem.file, problem.record, problem.field, problem.message)

    def where(self) -> str:
        return f"record {self.record!r}"


@dataclass
class Country:
    """A country as named by a release file name."""

    native: str
    name: str
    alpha2: str
    alpha3: str
    numeric: str


@dataclass
class Counts:
    read: int = 0
    written: int = 0
    rejected: int = 0


@dataclass
class CountryReport:
    descriptions: Counts = field(default_factory=Counts)
    knowledge: Counts = field(default_factory=Counts)
    safety: Counts = field(default_factory=Counts)


@dataclass
class Release:
    """Everything read from a release folder: valid rows, problems and the per-country tally."""

    knowledge: list[dict] = field(default_factory=list)
    safety: list[dict] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    repairs: list[Problem] = field(default_factory=list)
    report: dict[str, CountryReport] = field(default_factory=dict)
    unreadable_files: list[str] = field(default_factory=list)

    @property
    def countries(self) -> list[str]:
        return list(self.report)


class ReleaseError(textio.TextInputError):
    """Raised when a release has invalid records and ``skip_invalid`` is off."""

    heading = "invalid record field(s) in the release"
    advice = "\nFix them, or rebuild with --skip-invalid to write them to rejects.jsonl instead."


def parse_file_name(path: Path) -> Country:
    """Parse ``('中国', 'China', 'CN', 'CHN', '156', '是').json`` safely (``ast.literal_eval``, no eval)."""
    try:
        value = ast.literal_eval(path.stem)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as err:
        # TypeError: an unhashable key, e.g. ``{[]: 1}``; RecursionError/MemoryError: absurd nesting
        reason = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
        raise ValueError(f"file name is not a Python tuple literal ({reason})") from None
    if not (isinstance(value, tuple) and len(value) >= 5 and all(isinstance(v, str) for v in value)):
        raise ValueError("file name must be a tuple of at least 5 strings (native, English, a2, a3, num)")
    native, name, alpha2, alpha3, numeric = (v.strip() for v in value[:5])
    if not name or not alpha3:
        raise ValueError("file name has an empty English name or ISO alpha-3 code")
    return Country(native=native, name=name, alpha2=alpha2, alpha3=alpha3, numeric=numeric)


def _text(record: dict, key: str, where: tuple[str, str, str], problems: list[Problem]) -> str | None:
    file, rec, prefix = where
    value = record.get(key) if isinstance(record, dict) else None
    label = f"{prefix}{key}"
    if key not in (record if isinstance(record, dict) else {}):
        problems.append(Problem(file, rec, label, "missing"))
    elif not isinstance(value, str):
        problems.append(Problem(file, rec, label, f"expected a string, got {type(value).__name__}"))
    elif not value.strip():
        problems.append(Problem(file, rec, label, "empty"))
    elif textio.control_characters(value):
        problems.append(Problem(file, rec, label, str(textio.control_characters(value))))
    else:
        return value.strip()
    return None


def _checked(item: dict, where: tuple[str, str, str], problems: list[Problem]) -> None:
    file, rec, prefix = where
    value = item.get("checked")
    if value is not True and not (isinstance(value, str) and value.strip().lower() == "true"):
        problems.append(Problem(file, rec, f"{prefix}checked", f"not verified (checked = {value!r})"))


def _merge_split_options(options: dict) -> tuple[dict, bool]:
    """Undo the release's split options: ``{"C": "Chai (spiced", "TEA": ""}`` -> ``{"C": "Chai (spiced tea)"}``.

    Upstream's extraction cut an option at a parenthesised word and turned the word (upper-cased)
    into a key of its own, with the rest of the text as its value. The original case is lost, so the
    word is restored in lower case. Returns the repaired options and whether anything was merged.
    """
    merged: dict[str, object] = {}
    repaired = False
    for key, value in options.items():
        if len(key) == 1 and key.isalpha() and key.isupper() or not merged:
            merged[key] = value
            continue
        last = next(reversed(merged))
        head = merged[last] if isinstance(merged[last], str) else ""
        joined = f"{head}{'' if head.endswith('(') else ' '}{key.lower()})"
        tail = value.strip() if isinstance(value, str) else ""
        merged[last] = f"{joined} {tail}" if tail else joined
        repaired = True
    return merged, repaired


def _mcq(item: object, where: tuple[str, str, str]) -> tuple[dict | None, list[Problem], list[Problem]]:
    """One MCQ -> row fields, problems, repairs (repairs are kept and reported, not silent)."""
    file, rec, prefix = where
    problems: list[Problem] = []
    repairs: list[Problem] = []
    if not isinstance(item, dict):
        return None, [Problem(file, rec, prefix.rstrip("."), "expected an object")], []
    question = _text(item, "question", where, problems)
    options = item.get("options")
    letters: list[str] = []
    texts: list[str] = []
    if not isinstance(options, dict) or not options:
        problems.append(Problem(file, rec, f"{prefix}options", "missing or not a non-empty object"))
    else:
        original = options
        options, repaired = _merge_split_options(options)
        if repaired:
            repairs.append(
                Problem(file, rec, f"{prefix}options", f"merged split options {list(original)} -> {options}")
            )
        letters = list(options)
        if letters != option_letters(len(letters)) or len(letters) < 2:
            problems.append(Problem(file, rec, f"{prefix}options", f"letters {letters} are not A, B, C..."))
        for letter in letters:
            text = options[letter]
            if not isinstance(text, str) or not text.strip():
                problems.append(Problem(file, rec, f"{prefix}options.{letter}", "empty or not a string"))
            elif textio.control_characters(text):
                problems.append(Problem(file, rec, f"{prefix}options.{letter}", str(textio.control_characters(text))))
            else:
                texts.append(text.strip())
        by_norm: dict[str, list[str]] = {}
        for text in texts:
            by_norm.setdefault(textio.norm(text), []).append(text)
        dupes = sorted(group[0] for group in by_norm.values() if len(group) > 1)
        if dupes:
            problems.append(
                Problem(file, rec, f"{prefix}options", f"duplicate options (the same after normalising): {dupes}")
            )
    label = item.get("label")
    if not isinstance(label, str) or label.strip().upper() not in letters:
        problems.append(Problem(file, rec, f"{prefix}label", f"gold label {label!r} is not one of {letters}"))
    _checked(item, where, problems)
    if problems:
        return None, problems, repairs
    gold = label.strip().upper()
    row = {"question": question, "options": texts, "gold_index": letters.index(gold), "gold_letter": gold}
    return row, [], repairs


def _safety(item: object, where: tuple[str, str, str]) -> tuple[dict | None, list[Problem], list[Problem]]:
    file, rec, prefix = where
    problems: list[Problem] = []
    if not isinstance(item, dict):
        return None, [Problem(file, rec, prefix.rstrip("."), "expected an object")], []
    scene = _text(item, "scene", where, problems)
    requirement = _text(item, "requirement", where, problems)
    _checked(item, where, problems)
    if problems:
        return None, problems, []
    return {"scene": scene, "requirement": requirement, "query": safety_query(scene, requirement)}, [], []


def read_release(source: Path) -> Release:
    """Read and validate every ``*.json`` of a release folder (sorted by English country name)."""
    release = Release()
    files = sorted(source.glob("*.json"))
    if not files:
        raise FileNotFoundError(f"no *.json release files in {source}")
    parsed: list[tuple[Country, Path]] = []
    for path in files:
        try:
            parsed.append((parse_file_name(path), path))
        except ValueError as err:
            release.problems.append(Problem(path.name, "-", "file name", str(err)))
            release.unreadable_files.append(path.name)
    seen_alpha3: dict[str, str] = {}
    for country, path in sorted(parsed, key=lambda cp: cp[0].name):
        if country.alpha3 in seen_alpha3:
            release.problems.append(
                Problem(
                    path.name,
                    "-",
                    "file name",
                    f"ISO alpha-3 {country.alpha3} also in {seen_alpha3[country.alpha3]}",
                )
            )
            release.unreadable_files.append(path.name)
            continue
        seen_alpha3[country.alpha3] = path.name
        _read_country(path, country, release)
    return release


def _load_json(path: Path) -> tuple[object, Problem | None]:
    """The file through the one strict reader: BOM-tolerant; bad bytes, duplicate keys, too deep nesting
    and bad syntax become one problem naming the file (and the key or line)."""
    try:
        return textio.load_json(path), None
    except textio.TextInputError as err:
        return None, Problem.of(err.problems[0])


def _read_country(path: Path, country: Country, release: Release) -> None:
    report = release.report.setdefault(country.name, CountryReport())
    data, problem = _load_json(path)
    if problem is None and not isinstance(data, dict):
        problem = Problem(path.name, "-", "json", "top level must be an object keyed by item id")
    if problem is not None:
        release.problems.append(problem)
        release.unreadable_files.append(path.name)
        return
    for key, record in data.items():
        report.descriptions.read += 1
        k_items = record.get("Cultural Knowledge") if isinstance(record, dict) else None
        s_items = record.get("Cultural Safety") if isinstance(record, dict) else None
        k_list = k_items if isinstance(k_items, list) else []
        s_list = s_items if isinstance(s_items, list) else []
        report.knowledge.read += len(k_list)
        report.safety.read += len(s_list)
        where = (path.name, key, "")
        problems: list[Problem] = []
        if not isinstance(record, dict):
            problems.append(Problem(path.name, key, "-", "expected an object"))
        else:
            description = _text(record, "Cultural Description", where, problems)
            location = _text(record, "Location", where, problems)
            for name, value in (("Cultural Knowledge", k_items), ("Cultural Safety", s_items)):
                if not isinstance(value, list) or not value:
                    problems.append(Problem(path.name, key, name, "missing, empty or not a list"))
        if problems:  # the description itself is unusable: every item under it is rejected with it
            release.problems += problems
            report.descriptions.rejected += 1
            report.knowledge.rejected += len(k_list)
            report.safety.rejected += len(s_list)
            continue
        base = {
            "description_id": f"{country.alpha3}/{key}",
            "country": country.name,
            "country_native": country.native,
            "iso_alpha2": country.alpha2,
            "iso_alpha3": country.alpha3,
            "iso_numeric": country.numeric,
            "location": location,
            "source": SOURCES.get(key.split("-item")[0], key.split("-item")[0]),
            "source_key": key,
            "description": description,
        }
        report.descriptions.written += 1
        for kind, items, parse, rows, counts in (
            ("k", k_list, _mcq, release.knowledge, report.knowledge),
            ("s", s_list, _safety, release.safety, report.safety),
        ):
            list_name = "Cultural Knowledge" if kind == "k" else "Cultural Safety"
            for n, item in enumerate(items):
                row, item_problems, repairs = parse(item, (path.name, key, f"{list_name}[{n}]."))
                release.repairs += repairs
                if row is None:
                    release.problems += item_problems
                    counts.rejected += 1
                    continue
                rows.append({"id": f"{base['description_id']}/{kind}{n}", **base, **row})
                counts.written += 1


def gold_letter_stats(rows: list[dict]) -> dict:
    """Gold-letter distribution and the two trivial baselines a score must beat (flat means over questions)."""
    letters = Counter(r["gold_letter"] for r in rows)
    top, top_n, n = majority_letter(r["gold_letter"] for r in rows)
    return {
        "n": n,
        "distribution": {k: letters[k] for k in sorted(letters)},
        "most_frequent_letter": top,
        "most_frequent_letter_baseline": top_n / n if n else 0.0,
        "random_baseline": sum(random_choice(len(r["options"])) for r in rows) / n if n else 0.0,
    }


def build(source: Path, out: Path, *, skip_invalid: bool = False, source_commit: str = UPSTREAM) -> Release:
    """Validate the release in ``source`` and write the Hub layout into ``out``."""
    release = read_release(source)
    if release.problems and not skip_invalid:
        raise ReleaseError(release.problems)
    if not release.knowledge and not release.safety:
        raise ReleaseError(release.problems or [Problem(str(source), "-", "-", "no valid records")])
    out.mkdir(parents=True, exist_ok=True)
    tables = []
    for kind, rows in (("knowledge", release.knowledge), ("safety", release.safety)):
        for country in [ALL, *release.countries]:
            subset = [r for r in rows if country == ALL or r["country"] == country]
            tables.append(ConfigTable(config_name(kind, country), SPLIT, features(kind), subset))
    write_hub_dataset(out, tables, _card(release, source_commit))
    rejects = out / "rejects.jsonl"
    if release.problems:
        with rejects.open("w", encoding="utf-8") as fh:
            for p in release.problems:
                fh.write(json.dumps(asdict(p), ensure_ascii=False) + "\n")
    elif rejects.exists():
        rejects.unlink()
    (out / "build_report.json").write_text(
        json.dumps(
            {
                "source_commit": source_commit,
                "countries": {c: asdict(r) for c, r in release.report.items()},
                "unreadable_files": release.unreadable_files,
                "problems": len(release.problems),
                "repairs": [str(r) for r in release.repairs],
                "gold_letters": gold_letter_stats(release.knowledge),
            },
            ensure_ascii=False,
            indent=2,
        ),
        encoding="utf-8",
    )
    return release


def _card(release: Release, source_commit: str) -> CardText:
    stats = gold_letter_stats(release.knowledge)
    lines = [
        "| country | descriptions | knowledge MCQs | safety queries | rejected items |",
        "|---|---|---|---|---|",
    ]
    for name, r in release.report.items():
        rejected = r.knowledge.rejected + r.safety.rejected
        lines.append(f"| {name} | {r.descriptions.written} | {r.knowledge.written} | {r.safety.written} | {rejected} |")
    dist = ", ".join(f"{k}: {v} ({v / stats['n']:.1%})" for k, v in stats["distribution"].items())
    return CardText(
        pretty_name="AdaCultureSafe",
        summary=(
            "Cultural descriptions, each paired with knowledge multiple-choice questions and adversarial "
            "cultural-safety queries (a scene plus a requirement that pushes the model to belittle the custom). "
            "Built by `culturesafe build adaculturesafe` from the authors' release; evaluate with "
            "`lm_eval --tasks adaculturesafe` after `pip install culturesafe`."
        ),
        sections=[
            (
                "Source",
                f"Upstream release `{source_commit}` (the authors call it partial, for illustration). "
                "No licence is stated upstream, hence `license: unknown`.",
            ),
            (
                "Configs",
                "`knowledge` (one row per MCQ) and `safety` (one row per safety query) for all "
                "countries, and `knowledge_<country>` / `safety_<country>` for each country. Row ids are "
                "`<ISO alpha-3>/<upstream key>/<k|s><n>` (upstream keys repeat across countries).",
            ),
            ("Counts", "\n".join(lines)),
            (
                "Gold letters and trivial baselines",
                f"Gold-letter distribution over {stats['n']} MCQs: {dist}. Always answering "
                f"**{stats['most_frequent_letter']}** scores {stats['most_frequent_letter_baseline']:.1%}; "
                f"random choice scores {stats['random_baseline']:.1%}. Compare knowledge accuracy with these, "
                "or use the circular tasks, which are immune to the skew.",
            ),
            (
                "Repairs",
                f"{len(release.repairs)} option lists in the release were split by its extraction "
                '(a parenthesised word became an option key of its own, e.g. `"C": "Chai (spiced", "TEA": ""`); '
                "the builder merges the pieces back and restores the word in lower case. Every repair is listed "
                "in `build_report.json`.",
            ),
        ],
        citation=CITATION,
        tags=["cultural-safety", "cultural-knowledge", "lm-eval"],
    )
