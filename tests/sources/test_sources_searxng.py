"""The searxng backend and page fetching against a real SearXNG-shaped server on 127.0.0.1 (tests/support)."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import datetime

import pytest
from support.searxng_standin import SENTENCES, SearxngStandIn, page_text

from culturesafe_ext.sources import SearchRefused, Sources, SourcesSettings, make_search_backend

QUERIES = ["japan gift etiquette", "india dining customs", "korea elders at meals"]


def settings(tmp_path, **values) -> SourcesSettings:
    base = {"cache_path": str(tmp_path / "sources.sqlite"), "min_chars": 50, "retry_wait_initial": 0.01}
    return SourcesSettings.load({**base, **values}, env={})


def sources(server: SearxngStandIn, tmp_path, **values) -> Sources:
    config = settings(tmp_path, **values)
    return Sources(make_search_backend(f"searxng:{server.base_url}", config), config)


def run(server, tmp_path, queries, k=3, **values):
    s = sources(server, tmp_path, **values)
    try:
        return s.retrieve_sync(queries, k)
    finally:
        s.close()


def test_results_carry_main_text_and_provenance(tmp_path):
    with SearxngStandIn(results_per_query=3) as server:
        retrieval = run(server, tmp_path, QUERIES, k=2)
        assert server.searches == {q: 1 for q in QUERIES}
    assert retrieval.rejections == []
    assert [(p.query, p.rank) for p in retrieval.passages] == [(q, r) for q in QUERIES for r in (1, 2)]
    for p in retrieval.passages:
        name = p.url.rsplit("/", 1)[1]
        assert p.backend == "searxng" and p.url.startswith(server.base_url + "/pages/")
        assert p.corpus_id is None
        assert p.language == "en"  # decided with the extraction, in its worker (sources.language)
        assert p.title == f"Customs: {name}"
        assert p.content_hash == hashlib.sha256(p.text.encode()).hexdigest()
        assert datetime.fromisoformat(p.retrieved_at).tzinfo is not None
        # trafilatura kept the article and dropped navigation and footer boilerplate
        assert any(s[:40] in p.text for s in SENTENCES) and f"({name}, paragraph 1)" in p.text
        assert "Copyright" not in p.text and "Log in" not in p.text
    assert "6 passages; searches: 3 sent, 0 cached; pages: 6 fetched" in retrieval.summary()


def test_rerun_is_answered_from_the_cache_with_zero_requests(tmp_path):
    with SearxngStandIn() as server:
        first = run(server, tmp_path, QUERIES)
        sent = server.n_requests
        assert sent == len(QUERIES) * 4  # one search and three pages per query
        again = run(server, tmp_path, QUERIES)
        assert server.n_requests == sent  # nothing reached the server
    assert again.passages == first.passages  # retrieval times included: the first retrieval is the provenance
    assert (again.searches_sent, again.pages_fetched, again.requests) == (0, 0, 0)
    assert (again.searches_cached, again.pages_cached) == (3, 9)


def test_a_cut_run_resumes_without_repeating_what_finished(tmp_path):
    queries = [f"custom number {i}" for i in range(8)]
    with SearxngStandIn(latency=0.15, results_per_query=2) as server:
        config = settings(tmp_path, concurrency=2)
        cut = Sources(make_search_backend(f"searxng:{server.base_url}", config), config)

        async def partial() -> None:  # cut the run (as a kill would) once three searches are stored
            task = asyncio.ensure_future(cut.retrieve(queries, 2))
            while cut.cache.count("search") < 3 and not task.done():
                await asyncio.sleep(0.005)
            task.cancel()
            try:
                await task
            finally:
                await cut.aclose()

        with pytest.raises(asyncio.CancelledError):
            asyncio.run(partial())
        searched = {q for q in queries if server.searches[q]}
        stored = cut.cache.count("search")
        cut.close()
        assert 0 < stored < len(queries)
        before = dict(server.searches)
        retrieval = run(server, tmp_path, queries, k=2, concurrency=2)
    assert len(retrieval.passages) == 2 * len(queries) and retrieval.rejections == []
    assert retrieval.searches_cached == stored and retrieval.searches_sent == len(queries) - stored
    repeated = [q for q in searched if server.searches[q] > before[q]]
    assert len(repeated) <= len(searched) - stored  # only searches cut in flight are asked again
    assert max(server.pages.values()) <= 2  # a page is fetched again only if it was cut in flight


def test_json_format_disabled_names_search_formats_and_stops_at_once(tmp_path):
    with SearxngStandIn(json_enabled=False) as server:
        with pytest.raises(SearchRefused) as caught:
            run(server, tmp_path, QUERIES, concurrency=1)
        assert server.n_requests == 1
    message = str(caught.value)
    assert "HTTP 403" in message and "search.formats" in message and "settings.yml" in message
    assert "\n" not in message


def test_429_is_retried_honouring_retry_after(tmp_path):
    with SearxngStandIn(fail_status=429, fail_first_n=2, retry_after=0.05) as server:
        retrieval = run(server, tmp_path, QUERIES[:1])
        assert server.searches[QUERIES[0]] == 3
    assert len(retrieval.passages) == 3 and retrieval.rejections == []


def test_5xx_past_the_retries_is_a_counted_rejection_never_cached(tmp_path):
    with SearxngStandIn(fail_status=500, fail_first_n=3) as server:
        failed = run(server, tmp_path, QUERIES[:1], max_retries=1)
        assert server.searches[QUERIES[0]] == 2
        assert [r.reason for r in failed.rejections] == ["search failed"] and not failed.passages
        assert "HTTP 500" in failed.rejections[0].detail
        healed = run(server, tmp_path, QUERIES[:1], max_retries=1)  # not cached: asked again, now it succeeds
        assert server.searches[QUERIES[0]] == 4 and len(healed.passages) == 3


def test_a_page_over_the_size_cap_stops_reading_and_is_counted(tmp_path):
    with SearxngStandIn(results_per_query=2, big_bytes=64 * 1024 * 1024) as server:
        retrieval = run(server, tmp_path, ["big pages of japan"], max_bytes=200_000)
        assert retrieval.rejection_counts() == {"over the size cap": 2} and not retrieval.passages
        assert server.big_bytes_sent < 32 * 1024 * 1024  # the client hung up long before the end
        sent = server.n_requests
        again = run(server, tmp_path, ["big pages of japan"], max_bytes=200_000)
        assert server.n_requests == sent and again.rejection_counts() == {"over the size cap": 2}


def test_plain_text_passes_through_and_a_missing_page_is_counted(tmp_path):
    with SearxngStandIn(results_per_query=2) as server:
        retrieval = run(server, tmp_path, ["plain notes", "missing pages"])
    assert [p.text for p in retrieval.passages] == [
        page_text(f"plain-notes-{i}") + " " + " ".join(SENTENCES) for i in range(2)
    ]
    assert retrieval.rejection_counts() == {"HTTP 404": 2}
    assert all(r.query == "missing pages" and r.url.endswith(("-0", "-1")) for r in retrieval.rejections)


def test_a_search_backend_that_is_down_is_a_counted_rejection(tmp_path):
    with SearxngStandIn() as server:
        url = server.base_url
    config = settings(tmp_path, max_retries=0)
    s = Sources(make_search_backend(f"searxng:{url}", config), config)
    retrieval = s.retrieve_sync(["anything"])
    s.close()
    assert [r.reason for r in retrieval.rejections] == ["search failed"]
    assert "ClientConnectorError" in retrieval.rejections[0].detail


def test_a_page_failing_past_the_retries_is_counted_and_asked_again_on_a_rerun(tmp_path):
    with SearxngStandIn(results_per_query=1) as server:
        first = run(server, tmp_path, ["broken page"], max_retries=1)
        assert server.pages["broken-page-0"] == 2
        again = run(server, tmp_path, ["broken page"], max_retries=1)
        assert server.searches["broken page"] == 1 and server.pages["broken-page-0"] == 4  # search cached, page not
    for retrieval in (first, again):
        assert [r.reason for r in retrieval.rejections] == ["fetch failed"] and "HTTP 502" in retrieval.rejections[
            0
        ].detail
