"""The bm25 backend over a local corpus: results with provenance, the index built once, bad records named."""

from __future__ import annotations

import json

import pytest

from culturesafe_ext.sources import (
    CorpusError,
    Sources,
    SourcesSettingError,
    SourcesSettings,
    content_hash,
    make_search_backend,
    parse_search_spec,
)

RECORDS = [
    {"id": "jp-1", "title": "Japan: gifts", "text": "In Japan gifts are wrapped and offered with both hands."},
    {"id": "in-1", "title": "India: dining", "text": "In India many people eat with the right hand at family meals."},
    {"id": "de-1", "title": "Germany: time", "text": "In Germany punctuality matters; lateness to meetings is rude.",
     "url": "https://example.org/germany"},
    {"id": 7, "title": "Korea: elders", "text": "In Korea elders are served first and younger people wait to eat."},
]  # fmt: skip


def write_jsonl(path, records) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


def settings(tmp_path) -> SourcesSettings:
    return SourcesSettings.load(
        {"cache_path": str(tmp_path / "sources.sqlite"), "index_dir": str(tmp_path / "bm25")}, env={}
    )


def test_results_carry_the_record_and_its_provenance(tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    write_jsonl(corpus, RECORDS)
    config = settings(tmp_path)
    s = Sources(make_search_backend(f"bm25:{corpus}", config), config)
    retrieval = s.retrieve_sync(["punctuality meetings Germany", "gifts wrapped", "zebra xylophone"], k=2)
    s.close()
    assert retrieval.requests == 0
    by_query = {p.query: p for p in retrieval.passages if p.rank == 1}
    top = by_query["punctuality meetings Germany"]
    assert (top.backend, top.corpus_id, top.title, top.url) == (
        "bm25",
        "de-1",
        "Germany: time",
        "https://example.org/germany",
    )
    assert top.text == RECORDS[2]["text"] and top.content_hash == content_hash(top.text)
    assert by_query["gifts wrapped"].corpus_id == "jp-1" and by_query["gifts wrapped"].url is None
    assert [(r.reason, r.query) for r in retrieval.rejections] == [("no results", "zebra xylophone")]


def test_the_index_is_built_once_per_corpus_content(tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    write_jsonl(corpus, RECORDS)
    config = settings(tmp_path)
    assert make_search_backend(f"bm25:{corpus}", config).built
    again = make_search_backend(f"bm25:{corpus}", config)
    assert not again.built and len(list((tmp_path / "bm25").iterdir())) == 1
    write_jsonl(corpus, RECORDS[:3])  # changed content: a new index under a new hash
    assert make_search_backend(f"bm25:{corpus}", config).built
    assert len(list((tmp_path / "bm25").iterdir())) == 2


@pytest.mark.parametrize(
    "line, expected",
    [
        ({"id": "x", "title": "T"}, "line 3, field 'text': missing"),
        ({"id": "x", "title": "T", "text": 5}, "line 3, field 'text': not a string"),
        ({"id": "x", "title": "T", "text": "  "}, "line 3, field 'text': empty"),
        ({"title": "T", "text": "t"}, "line 3, field 'id': missing"),
        ({"id": "jp-1", "title": "T", "text": "t"}, "line 3, field 'id': 'jp-1' repeats line 1"),
        ({"id": "x", "title": "T", "text": "t", "url": 3}, "line 3, field 'url': not a string"),
        ("{not json", "line 3: not JSON"),
    ],
)
def test_a_bad_record_is_one_line_naming_file_line_and_field(tmp_path, line, expected):
    corpus = tmp_path / "corpus.jsonl"
    bad = line if isinstance(line, str) else json.dumps(line)
    corpus.write_text(json.dumps(RECORDS[0]) + "\n" + json.dumps(RECORDS[1]) + "\n" + bad + "\n", encoding="utf-8")
    with pytest.raises(CorpusError) as caught:
        make_search_backend(f"bm25:{corpus}", settings(tmp_path))
    assert str(caught.value).startswith(f"{corpus}, {expected}") and "\n" not in str(caught.value)


def test_parquet_corpus_and_its_bad_record(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    good = tmp_path / "good.parquet"
    pq.write_table(pa.Table.from_pylist([{**r, "id": str(r["id"]), "url": r.get("url")} for r in RECORDS]), good)
    config = settings(tmp_path)
    s = Sources(make_search_backend(f"bm25:{good}", config), config)
    assert s.retrieve_sync(["elders served first"], k=1).passages[0].corpus_id == "7"
    s.close()
    bad = tmp_path / "bad.parquet"
    rows = [{"id": "a", "title": "A", "text": "text a"}, {"id": "b", "title": None, "text": "text b"}]
    pq.write_table(pa.Table.from_pylist(rows), bad)
    with pytest.raises(CorpusError, match=r"bad\.parquet, record 2, field 'title': missing"):
        make_search_backend(f"bm25:{bad}", config)


def test_spec_and_settings_errors_are_one_line(tmp_path, monkeypatch):
    assert parse_search_spec("bm25:/data/wiki.jsonl") == ("bm25", "/data/wiki.jsonl")
    assert parse_search_spec("searxng") == ("searxng", None)
    assert parse_search_spec("searxng:http://localhost:8888") == ("searxng", "http://localhost:8888")
    with pytest.raises(SourcesSettingError, match="unknown search backend 'google'"):
        parse_search_spec("google")
    with pytest.raises(SourcesSettingError, match="bm25 needs a corpus path"):
        parse_search_spec("bm25")
    with pytest.raises(SourcesSettingError, match="not an http"):
        parse_search_spec("searxng:localhost:8888")
    with pytest.raises(SourcesSettingError, match="conccurrency"):
        SourcesSettings.load({"conccurrency": 3}, env={})
    with pytest.raises(SourcesSettingError, match="CULTURESAFE_SOURCES_TIMEOUT"):
        SourcesSettings.load(env={"CULTURESAFE_SOURCES_TIMEOUT": "inf"})
    with pytest.raises(CorpusError, match="no such corpus file"):
        make_search_backend(f"bm25:{tmp_path / 'absent.jsonl'}", settings(tmp_path))
    monkeypatch.setenv("CULTURESAFE_SOURCES_CONCURRENCY", "7")
    assert SourcesSettings.load().concurrency == 7 and SourcesSettings.load({"concurrency": 9}).concurrency == 9
