"""PDFs fetched by URL from a real HTTP server on 127.0.0.1: the text layer through pypdf (as for a local PDF),
size-capped like pages; a PDF without text and an unreadable one are counted, cached rejections."""

from __future__ import annotations

import asyncio

import pytest
from support.pdfs import FileServer, blank_pdf, text_pdf

from culturesafe_ext.sources import SearchHit, Sources, SourcesSettings
from culturesafe_ext.sources.fetch import OVER_SIZE_CAP, PDF_NO_TEXT, PDF_UNREADABLE, PageRejected
from culturesafe_ext.sources.passage import utc_now

LINES = [
    "Consular guidance for travellers to Thailand.",
    "Visitors remove their shoes before entering a temple hall or a private home.",
    "Criticising the monarchy is a criminal offence and carries long prison sentences.",
]


class NoSearch:
    name, identity, requests, fetches_pages = "url", "", 0, True

    async def search(self, query: str, k: int) -> list[SearchHit]:
        raise AssertionError("no search in these tests")

    async def aclose(self) -> None:
        return None


@pytest.fixture(scope="module")
def server():
    pdf = text_pdf(LINES, title="Travel advice: Thailand")
    files = {
        "advice.pdf": (pdf, "application/pdf"),
        "download": (pdf, "application/octet-stream"),  # served untyped: recognised by its %PDF- header
        "scan.pdf": (blank_pdf(), "application/pdf"),
        "broken.pdf": (b"%PDF-1.7\nthis is not a PDF body at all", "application/pdf"),
        "photo.png": (b"\x89PNG\r\n\x1a\n" + bytes(200), "image/png"),
    }
    with FileServer(files) as s:
        yield s


def fetch(server: FileServer, tmp_path, names: list[str], **values) -> list:
    settings = SourcesSettings.load({"cache_path": str(tmp_path / "sources.sqlite"), "min_chars": 40, **values}, env={})
    sources = Sources(NoSearch(), settings)

    async def run() -> list:
        hits = [SearchHit(backend="url", query="", rank=0, title=n, url=server.url(n), retrieved_at=utc_now())
                for n in names]  # fmt: skip
        try:
            return await asyncio.gather(*(sources.passage(h) for h in hits), return_exceptions=True)
        finally:
            await sources.aclose()

    try:
        return asyncio.run(run())
    finally:
        sources.close()


def test_pdf_urls_give_their_text_layer_and_title(server: FileServer, tmp_path) -> None:
    typed, untyped = fetch(server, tmp_path, ["advice.pdf", "download"])
    for passage in (typed, untyped):
        assert all(line in passage.text for line in LINES)
        assert passage.title == "Travel advice: Thailand"
    assert typed.text == untyped.text


def test_pdf_without_text_unreadable_or_over_the_cap_are_counted_cached_rejections(server, tmp_path) -> None:
    names = ["scan.pdf", "broken.pdf", "photo.png"]
    scan, broken, photo = fetch(server, tmp_path, names)
    assert isinstance(scan, PageRejected) and scan.reason == PDF_NO_TEXT and "1 page(s)" in scan.detail
    assert isinstance(broken, PageRejected) and broken.reason == PDF_UNREADABLE
    assert isinstance(photo, PageRejected) and photo.reason == "not text"
    asked = dict(server.requests)
    again = fetch(server, tmp_path, names)  # final rejections are cached: nothing is fetched twice
    assert [r.reason for r in again] == [PDF_NO_TEXT, PDF_UNREADABLE, "not text"] and dict(server.requests) == asked
    [capped] = fetch(server, tmp_path, ["advice.pdf"], max_bytes=2000)  # another cap: another cache key
    assert isinstance(capped, PageRejected) and capped.reason == OVER_SIZE_CAP
