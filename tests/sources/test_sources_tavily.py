"""The tavily backend against a real Tavily-shaped server on 127.0.0.1: key handling, refusals, retries."""

from __future__ import annotations

import logging

import pytest
from support.tavily_standin import TavilyStandIn

from culturesafe_ext.sources import SearchRefused, Sources, SourcesSettings, make_search_backend
from culturesafe_ext.sources.http import BODY_CHARS

KEY = "tvly-standin-0123456789abcdefXYZ"
WRONG = "tvly-WRONG-secret-9f8e7d6c5b4a3210"


def run(server, tmp_path, queries, k=3, **values):
    base = {"cache_path": str(tmp_path / "sources.sqlite"), "fetch_pages": False, "retry_wait_initial": 0.01}
    config = SourcesSettings.load({**base, **values}, env={})
    s = Sources(make_search_backend(f"tavily:{server.base_url}", config), config)
    try:
        return s.retrieve_sync(queries, k)
    finally:
        s.close()


def test_search_sends_the_key_as_bearer_and_keeps_provenance(tmp_path, monkeypatch):
    monkeypatch.setenv("TAVILY_API_KEY", KEY)
    with TavilyStandIn(key=KEY) as server:
        retrieval = run(server, tmp_path, ["japan gift etiquette"], k=2)
        assert server.bodies == [
            {"query": "japan gift etiquette", "max_results": 2, "search_depth": "basic", "include_raw_content": False}
        ]
        again = run(server, tmp_path, ["japan gift etiquette"], k=2)
        assert server.n_requests == 1 and again.passages == retrieval.passages
    assert [(p.backend, p.rank, p.url) for p in retrieval.passages] == [
        ("tavily", 1, "https://example.org/japan-gift-etiquette/0"),
        ("tavily", 2, "https://example.org/japan-gift-etiquette/1"),
    ]
    assert retrieval.passages[0].title == "Tavily: japan-gift-etiquette-0"
    assert KEY not in (tmp_path / "sources.sqlite").read_bytes().decode("latin-1")


def test_401_stops_at_once_with_the_server_message_and_the_key_masked(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("TAVILY_API_KEY", WRONG)
    # the echoed key starts 15 characters before the cut: cutting before masking would leak its first 15
    pad = BODY_CHARS - len('{"detail": {"error": "') - len("Unauthorized: missing or invalid API key (Bearer ") - 15
    caplog.set_level(logging.DEBUG)
    with TavilyStandIn(key=KEY, pad=pad) as server:
        with pytest.raises(SearchRefused) as caught:
            run(server, tmp_path, [f"query {i}" for i in range(6)], concurrency=1)
        assert server.n_requests == 1
    message = str(caught.value)
    assert "HTTP 401" in message and "TAVILY_API_KEY" in message
    assert "Unauthorized: missing or invalid API key (Bearer [API key]" in message
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("sources.sqlite*")).decode("latin-1")
    for text in (message, caplog.text, stored):
        assert WRONG not in text and WRONG[:12] not in text and WRONG[-12:] not in text


def test_429_is_retried(tmp_path, monkeypatch):
    monkeypatch.setenv("TAVILY_API_KEY", KEY)
    with TavilyStandIn(key=KEY, fail_status=429, fail_first_n=2) as server:
        retrieval = run(server, tmp_path, ["korea elders"], k=2)
        assert server.searches["korea elders"] == 3
    assert len(retrieval.passages) == 2 and not retrieval.rejections


def test_a_missing_key_or_plain_http_to_another_host_is_refused_before_any_request(tmp_path, monkeypatch):
    monkeypatch.delenv("TAVILY_API_KEY", raising=False)
    with pytest.raises(SearchRefused, match="TAVILY_API_KEY"):
        make_search_backend("tavily", SourcesSettings.load(env={}))
    monkeypatch.setenv("TAVILY_API_KEY", KEY)
    with pytest.raises(SearchRefused, match="plain HTTP") as caught:
        make_search_backend("tavily:http://search.example.org", SourcesSettings.load(env={}))
    assert KEY not in str(caught.value)
