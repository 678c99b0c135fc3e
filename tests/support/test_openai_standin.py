"""The stand-in server itself: OpenAI-shaped answers, its bounds, and order-independent faults."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

from support.openai_standin import Fault, StandIn, expected_score, prompt_hash

MESSAGES = [{"role": "system", "content": "rubric"}, {"role": "user", "content": "prompt"}]


def post(server: StandIn, messages: list[dict] = MESSAGES) -> tuple[int, dict]:
    body = json.dumps({"model": "m", "messages": messages}).encode()
    request = urllib.request.Request(server.base_url + "/chat/completions", data=body, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as err:
        return err.code, json.load(err)


def test_answers_like_openai() -> None:
    with StandIn() as server:
        status, data = post(server)
        assert status == 200
        assert json.loads(data["choices"][0]["message"]["content"]) == {"score": expected_score(MESSAGES)}
        assert server.counts == {prompt_hash(MESSAGES): 1} and server.answered == {prompt_hash(MESSAGES): 1}


def test_stops_after_max_requests_and_max_lifetime() -> None:
    with StandIn(max_requests=2) as server:
        assert post(server)[0] == 200 and post(server)[0] == 200
        assert post(server)[0] == 503
        server._thread.join(5)
        assert not server._thread.is_alive()
    started = time.monotonic()
    server = StandIn(max_lifetime=0.3).start()
    server._thread.join(5)
    assert not server._thread.is_alive() and time.monotonic() - started < 3


def test_faults_by_rule() -> None:
    faults = [Fault("429", first_n=1, retry_after=2), Fault("500", match="never")]
    with StandIn(faults=faults) as server:
        status, data = post(server)
        assert status == 429 and "rate" in data["error"]["message"]
        assert post(server)[0] == 200  # first_n=1: the second attempt of this prompt goes through
        assert server.faults_served == {"429": 1}
