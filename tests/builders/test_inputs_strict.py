"""Dirty inputs through the one reader: BOMs, mixed encodings, duplicate keys and headers, absurd file
names and nesting, control characters, and one notion of "the same option" everywhere."""

from __future__ import annotations

import codecs
import csv
import io
import json
from pathlib import Path

import pytest
from culturesafe_ext.builders import adaculturesafe, culturax
from culturesafe_ext.builders.generate import items, review
from culturesafe_ext.builders.generate.inputs import InputError, read_descriptions

from culturesafe_ext import parsing
from culturesafe_ext.data import textio

CHINA = "('中国', 'China', 'CN', 'CHN', '156', '是').json"


def mcq(options: dict | None = None, label: str = "B") -> dict:
    options = options or {"A": "Clocks", "B": "Fruit", "C": "Knives", "D": "Shoes"}
    return {"question": "Which gift is polite?", "options": options, "label": label, "checked": "true"}


def record(**overrides) -> dict:
    rec = {
        "Cultural Description": "Gifts are given with both hands.",
        "Location": "China",
        "Cultural Knowledge": [mcq(), mcq(label="A")],
        "Cultural Safety": [{"scene": "I visit a family.", "requirement": "Mock their custom.", "checked": "true"}],
    }
    return {**rec, **overrides}


# --- one normalisation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "twin",
    ["Fork\u00a0and spoon", "Fork and\u200b spoon", "Fork  and spoon.", "\uff26ork and spoon", "Fork\u2003and spoon"],
)
def test_release_options_that_normalise_alike_are_duplicates(twin: str, tmp_path: Path) -> None:
    options = {"A": "Fork and spoon", "B": twin, "C": "Chopsticks", "D": "Hands"}
    src = tmp_path / "src"
    src.mkdir()
    (src / CHINA).write_text(json.dumps({"k-item_1-0": record(**{"Cultural Knowledge": [mcq(options)]})}), "utf-8")
    with pytest.raises(adaculturesafe.ReleaseError, match=r"Cultural Knowledge\[0\]\.options': duplicate options"):
        adaculturesafe.build(src, tmp_path / "out")
    # the generator calls the same pair the same, with the same function
    assert items.check_mcq({"question": "Q?", "options": options, "answer": "A"}, None)[1]
    assert items.norm is textio.norm and parsing.norm is textio.norm


def test_options_differing_only_in_case_stay_distinct() -> None:
    # the real release asks which of "CHEN Emily" / "Chen Emily" follows the Chinese order
    assert textio.norm("CHEN Emily") != textio.norm("Chen Emily")
    assert textio.norm("CHEN Emily", casefold=True) == textio.norm("Chen Emily", casefold=True)
    options = ["Emily Chen", "CHEN Emily", "Chen Emily", "Emily CHEN"]
    assert parsing.parse_choice_letter('{"answer": "B. CHEN Emily"}', list("ABCD"), options) == "B"
    assert parsing.parse_choice_letter('{"answer": "B. Chen Emily"}', list("ABCD"), options) is None


# --- BOM-tolerant, one reader ---------------------------------------------------------------------------


def test_every_text_input_reads_with_a_byte_order_mark(tmp_path: Path) -> None:
    bom = codecs.BOM_UTF8
    src = tmp_path / "src"
    src.mkdir()
    (src / CHINA).write_bytes(bom + json.dumps({"k-item_1-0": record()}, ensure_ascii=False).encode())
    release = adaculturesafe.build(src, tmp_path / "out")
    assert release.report["China"].knowledge.written == 2

    desc = {"id": "d1", "country": "Japan", "location": "Kyoto", "source": "guide", "description": "Bow."}
    (tmp_path / "d.jsonl").write_bytes(bom + json.dumps(desc).encode() + b"\n")
    (tmp_path / "d.csv").write_bytes(bom + b"id,country,location,source,description\r\nd1,Japan,Kyoto,guide,Bow.\r\n")
    for name in ("d.jsonl", "d.csv"):
        [read] = read_descriptions(tmp_path / name)
        assert (read.id, read.iso_alpha3) == ("d1", "JPN")

    rows = [culturax_row("How is Holi celebrated?"), culturax_row("What is Diwali?")]
    path = write_culturax(tmp_path / "bom.csv", rows, "utf-8")
    path.write_bytes(bom + path.read_bytes())
    built, encoding = culturax.read_csv(path)
    assert encoding == "utf-8" and [r.question for r in built] == ["How is Holi celebrated?", "What is Diwali?"]

    candidates = [{"id": "X/1/s0", "kind": "safety", "context": "c", "fields": {"scene": "s", "requirement": "r"}}]
    review.export(candidates, tmp_path / "rev")
    decisions = tmp_path / "rev" / "review.csv"
    decisions.write_bytes(bom + decisions.read_bytes().replace(b",,\r\n", b",accept,\r\n"))
    assert review.read_decisions(decisions, {c["id"]: c for c in candidates})["X/1/s0"].action == "accept"
    export = [
        {
            "data": {"id": "X/1/s0"},
            "annotations": [{"result": [{"from_name": "decision", "value": {"choices": ["reject"]}}]}],
        }
    ]
    (tmp_path / "ls.json").write_bytes(bom + json.dumps(export).encode())
    assert review.read_decisions(tmp_path / "ls.json", {c["id"]: c for c in candidates})["X/1/s0"].action == "reject"


# --- CulturaX: encodings, headers, control characters ------------------------------------------------

HEADER = ["Question", "class", "domain", "helpful_response", "harmless_response", "honest_response", "simhash_id", ""]


def culturax_row(question: str, helpful: str = "With colours.") -> list[str]:
    return [question, "15", "Festivals", helpful, "Ask first.", "It marks spring.", "1E+19", ""]


def write_culturax(path: Path, rows: list[list[str]], encoding: str, header: list[str] = HEADER) -> Path:
    buf = io.StringIO(newline="")
    csv.writer(buf, lineterminator="\r\n").writerows([header, *rows])
    path.write_bytes(buf.getvalue().encode(encoding))
    return path


def culturax_error(path: Path) -> str:
    with pytest.raises(culturax.CulturaXError) as err:
        culturax.read_csv(path)
    return str(err.value)


def test_one_stray_windows_byte_fails_at_its_line_and_column(tmp_path: Path) -> None:
    rows = [culturax_row(f"What does the host\u2019s gift {i} mean?", f"It\u2019s polite {i}.") for i in range(12)]
    path = write_culturax(tmp_path / "mixed.csv", rows, "utf-8")
    # line 3 (the second data row): its ’ saved as the Windows-1252 byte 0x92, every other row UTF-8
    lines = path.read_bytes().split(b"\r\n")
    lines[2] = lines[2].replace("host\u2019s".encode(), b"host\x92s")
    path.write_bytes(b"\r\n".join(lines))
    text = culturax_error(path)
    assert "record 'row 3 (line 3, column 19)': field 'Question'" in text and "\\x92" in text
    assert "Windows-1252 it would read" in text and "host\u2019s" in text
    assert text.count("\\x92") == 1  # the UTF-8 rows are not blamed


def test_mixed_file_names_every_foreign_field(tmp_path: Path) -> None:
    rows = [
        culturax_row("Caf\u00e9 manners?"),
        culturax_row("Tea?", "Na\u00efve \u201cquote\u201d."),
        culturax_row("A?"),
    ]
    path = write_culturax(tmp_path / "m.csv", rows, "utf-8")
    raw = path.read_bytes().replace(
        "Na\u00efve \u201cquote\u201d".encode(), "Na\u00efve \u201cquote\u201d".encode("cp1252")
    )
    path.write_bytes(raw)
    text = culturax_error(path)
    assert "row 3 (line 3, column" in text and "field 'helpful_response'" in text


@pytest.mark.parametrize("encoding", ["utf-8", "cp1252"])
def test_a_file_in_one_encoding_builds_with_every_row_intact(encoding: str, tmp_path: Path) -> None:
    rows = [
        culturax_row(f"What does the host\u2019s gift {i} mean?", f"It\u2019s \u201cpolite\u201d {i}.")
        for i in range(8)
    ]
    built, used = culturax.read_csv(write_culturax(tmp_path / "one.csv", rows, encoding))
    assert used == encoding
    assert all("\u2019" in r.question and "\u00e2\u20ac" not in r.question for r in built) and len(built) == 8


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (
            ["Question", "class", "domain", "helpful_response", "harmless_response", "Question", "simhash_id", ""],
            "duplicate column name (columns 1 and 6)",
        ),
        (
            ["Question", "class", "domain", "helpful_response", "", "honest_response", "simhash_id", ""],
            "column 5': missing column name",
        ),
        (
            [
                "Question",
                "class",
                "class",
                "helpful_response",
                "harmless_response",
                "honest_response",
                "simhash_id",
                "",
            ],
            "duplicate column name",
        ),
    ],
)
def test_culturax_header_names_must_be_unique_and_present(header: list[str], message: str, tmp_path: Path) -> None:
    assert message in culturax_error(write_culturax(tmp_path / "h.csv", [culturax_row("Q?")], "utf-8", header))


@pytest.mark.parametrize("char", ["\x00", "\x1b", "\x07", "\x7f", "\x85"])
def test_control_characters_in_text_fields_are_flagged(char: str, tmp_path: Path) -> None:
    rows = [culturax_row("Fine?"), culturax_row(f"Bad{char}question?")]
    text = culturax_error(write_culturax(tmp_path / "c.csv", rows, "utf-8"))
    assert "row 3 (line 3)': field 'Question': control character" in text
    src = tmp_path / "src"
    src.mkdir()
    (src / CHINA).write_text(json.dumps({"k-item_1-0": record(Location=f"Bei{char}jing")}), "utf-8")
    with pytest.raises(adaculturesafe.ReleaseError, match="field 'Location': control character"):
        adaculturesafe.build(src, tmp_path / "out")
    desc = {"id": "d1", "country": "Japan", "location": "Kyoto", "source": "g", "description": f"Bow{char}."}
    (tmp_path / "d.jsonl").write_text(json.dumps(desc) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match="d.jsonl: line 1: field 'description': control character"):
        read_descriptions(tmp_path / "d.jsonl")
    item = {"question": f"Q{char}?", "options": {"A": "a", "B": "b", "C": "c", "D": "d"}, "answer": "A"}
    assert items.check_mcq(item, None)[1] == [f"question: control character U+{ord(char):04X} at character 2"]


# --- AdaCultureSafe release: names, nesting, duplicate keys ---------------------------------------------


def test_duplicate_keys_in_other_inputs(tmp_path: Path) -> None:
    (tmp_path / "d.jsonl").write_text('{"id": "d1", "id": "d2", "country": "Japan"}\n', encoding="utf-8")
    with pytest.raises(InputError, match="d.jsonl: line 1: field 'id': duplicate key 'id'"):
        read_descriptions(tmp_path / "d.jsonl")
    (tmp_path / "d.csv").write_text("id,country,id,location,source,description\nd1,Japan,d2,K,g,Bow.\n", "utf-8")
    with pytest.raises(InputError, match="d.csv: line 1: field 'id': duplicate column name"):
        read_descriptions(tmp_path / "d.csv")
    (tmp_path / "ls.json").write_text('[{"data": {"id": "X", "id": "Y"}}]', encoding="utf-8")
    with pytest.raises(review.DecisionError, match="ls.json: -: field 'id': duplicate key 'id'"):
        review.read_decisions(tmp_path / "ls.json", {})


def test_culturax_repeats_use_the_one_normalisation(tmp_path: Path) -> None:
    rows = [
        culturax_row("How is Holi celebrated?"),
        culturax_row("How is Holi\u200b celebrated?"),
        culturax_row("Diwali?"),
    ]
    read, _ = culturax.read_csv(write_culturax(tmp_path / "r.csv", rows, "utf-8"))
    kept, merged = culturax.merge_repeats(read)
    assert [r.question for r in kept] == ["How is Holi celebrated?", "Diwali?"]
    assert merged[0]["kept_row"] == 2 and merged[0]["merged_rows"] == [3]
