"""CulturaX builder: the real release (../shared/upstream), the bundled sample, and malformed CSVs."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from support.paths import UPSTREAM

SOURCE = UPSTREAM / "culturax" / "CulturaX.csv"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):
    if not SOURCE.exists():
        pytest.skip(f"the CulturaX release is not at {SOURCE} (../shared/upstream is absent)")
    from culturesafe_ext.builders import culturax

    out = tmp_path_factory.mktemp("culturax") / "data"
    return out, culturax.build(SOURCE, out)


def test_release_builds_distinct_questions_with_their_references(built) -> None:
    out, result = built
    report = json.loads((out / "build_report.json").read_text())
    assert report["rows_read"] == 1500 and report["encoding"] == "cp1252"
    assert report["distinct_questions"] == len(result.rows) == 1484
    assert report["repeats_merged"]["rows"] == 16
    merged = {r["kept_row"]: r["merged_rows"] for r in report["repeats_merged"]["list"]}
    assert merged[50] == [295, 606]  # "What percentage of Germans believe women are inferior to men?"
    assert len({r["question"] for r in result.rows}) == 1484
    assert len({r["id"] for r in result.rows}) == 1484
    for row in result.rows:
        assert all(row[k].strip() for k in ("question", "helpful", "harmless", "honest")), row["id"]
        assert len(row["simhash"]) == 16
    assert "\u2019" in next(r["harmless"] for r in result.rows if r["id"] == "r0002")  # cp1252 0x92 decoded
    assert len({r["subdomain_id"] for r in result.rows}) == 30
    assert report["labels"]["subdomains_inferred"] == ["5 Zoos and Aquariums", "18 Radio", "36 Magazines"]


def test_splits_add_up_and_no_pair_across_splits_is_within_tau(built) -> None:
    out, result = built
    from culturesafe_ext.data.loader import load_culturax

    data = load_culturax(culturax_data=str(out))
    sizes = {s: len(data[s]) for s in ("train", "validation", "test")}
    assert sum(sizes.values()) == 1484
    assert abs(sizes["test"] / 1484 - 0.1) < 0.02 and abs(sizes["validation"] / 1484 - 0.1) < 0.02
    fps = np.array([int(r["simhash"], 16) for r in result.rows], dtype=np.uint64)
    split = np.array([r["split"] for r in result.rows])
    # brute force over every pair, independent of the project's near-duplicate search
    xor = fps[:, None] ^ fps[None, :]
    distance = np.unpackbits(xor.view(np.uint8), axis=-1).reshape(len(fps), len(fps), 64).sum(-1)
    close = np.argwhere(np.triu(distance <= 10, 1))
    assert len(close) >= 1  # the threshold does catch something ...
    assert all(split[i] == split[j] for i, j in close)  # ... and never across splits
    assert result.report["split"]["leakage"]["pairs_across_splits"] == 0
    for i, j in close:
        assert result.rows[i]["cluster_id"] == result.rows[j]["cluster_id"]
    for domain, counts in result.report["split"]["by_domain"].items():
        if sum(counts.values()) >= 3:
            assert counts["test"] >= 1 and counts["validation"] >= 1, domain


def test_reference_audit_flags_the_salsa_row(built) -> None:
    _, result = built
    by_id = {r["id"]: r for r in result.rows}
    salsa = by_id["r0004"]  # asks about American humour, answered about salsa
    assert salsa["reference_suspect"] and "cosine" in salsa["reference_suspect_reason"]
    holi = by_id["r0002"]  # Holi question, Holi references
    assert not holi["reference_suspect"] and holi["reference_suspect_reason"] == ""
    flagged = sum(r["reference_suspect"] for r in result.rows)
    assert 0 < flagged < 0.15 * len(result.rows)


def test_bundled_sample_is_built_by_the_builder() -> None:
    from culturesafe_ext.builders import bundled

    from culturesafe_ext.data import loader

    assert bundled.stale(loader.CULTURAX) == []  # the shipped folder is what the release builder writes now
    data = loader.load_culturax(culturax_data="bundled")
    report = json.loads((loader.bundled_dataset_dir(loader.CULTURAX) / "build_report.json").read_text())
    assert report["repeats_merged"]["rows"] == 1 and report["near_duplicates"]["clusters"] == 1
    rows = [r for s in data.values() for r in s]
    assert len(rows) == report["distinct_questions"] == 33
    twins = [r for r in rows if r["cluster_id"] == "r0006"]
    assert len(twins) == 2 and len({r["split"] for r in twins}) == 1
    test_domains = {r["domain"] for r in data["test"]}
    assert len(test_domains) == 8  # every populated domain has a test question
    assert [r["id"] for r in rows if r["reference_suspect"]] == ["r0034"]


def _write(path: Path, rows: list[list[str]], encoding: str = "cp1252") -> Path:
    buf = io.StringIO(newline="")
    csv.writer(buf, lineterminator="\r\n").writerows(rows)
    path.write_bytes(buf.getvalue().encode(encoding))
    return path


HEADER = ["Question", "class", "domain", "helpful_response", "harmless_response", "honest_response", "simhash_id", ""]
GOOD = ["How is Holi celebrated?", "15", "Festivals", "With colours.", "Ask first.", "It marks spring.", "1E+19", ""]


def _error(path: Path) -> str:
    from culturesafe_ext.builders import culturax

    with pytest.raises(culturax.CulturaXError) as err:
        culturax.build(path, path.parent / "out")
    return str(err.value)


def test_bad_bytes_name_row_and_column(tmp_path: Path) -> None:
    path = _write(tmp_path / "c.csv", [HEADER, GOOD, GOOD[:3] + ["With colours.", "Ask X first.", "x", "", ""]])
    raw = path.read_bytes().replace(b"Ask X first", b"Ask \x81 first")  # 0x81: undefined in cp1252, not UTF-8
    path.write_bytes(raw)
    text = _error(path)
    assert "row 3" in text and "'harmless_response'" in text and "\\x81" in text


def test_missing_column_and_empty_question(tmp_path: Path) -> None:
    no_honest = [[c for k, c in enumerate(r) if k != 5] for r in (HEADER, GOOD)]
    assert "'honest_response'" in _error(_write(tmp_path / "a.csv", no_honest)) and "missing column" in _error(
        _write(tmp_path / "a.csv", no_honest)
    )
    empty = _write(tmp_path / "b.csv", [HEADER, GOOD, [" "] + GOOD[1:], GOOD[:1] + ["99"] + GOOD[2:]])
    text = _error(empty)
    assert "record 'row 3': field 'Question': empty" in text
    assert "record 'row 4': field 'class'" in text and "unknown class id 99" in text
