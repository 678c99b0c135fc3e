"""A judging process killed mid-run resumes from the cache without repeating a completed request."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from llm.test_openai_http import _rows, config_for, make_items, messages_of
from support.openai_standin import StandIn, prompt_hash

from culturesafe_ext.judge import Judge

CHILD = textwrap.dedent(
    """
    import json, sys
    from culturesafe_ext.judge import Judge, JudgeConfig, JudgeItem
    items = [JudgeItem(**row) for row in json.load(open(sys.argv[1]))]
    Judge(JudgeConfig.from_dict(None)).score_many(items)  # settings from CULTURESAFE_JUDGE_* env vars
    """
)


def test_killed_run_resumes_without_repeating(tmp_path: Path) -> None:
    items = make_items(200)
    (tmp_path / "items.json").write_text(json.dumps([vars(i) for i in items]))
    (tmp_path / "child.py").write_text(CHILD)
    cache = tmp_path / "judge.sqlite"
    with StandIn(latency=0.05, max_lifetime=120) as server:
        env = {
            **os.environ,
            "CULTURESAFE_JUDGE_BACKEND": "openai",
            "CULTURESAFE_JUDGE_MODEL": "standin",
            "CULTURESAFE_JUDGE_BASE_URL": server.base_url,
            "CULTURESAFE_JUDGE_CONCURRENCY": "4",
            "CULTURESAFE_JUDGE_CACHE_PATH": str(cache),
            "CULTURESAFE_JUDGE_PROGRESS": "0",
        }
        child = subprocess.Popen([sys.executable, str(tmp_path / "child.py"), str(tmp_path / "items.json")], env=env)
        try:
            deadline = time.monotonic() + 60
            while _rows(cache) < 20:  # kill it after >= 20 completed (and cached) requests
                assert child.poll() is None and time.monotonic() < deadline, "child ended before it was killed"
                time.sleep(0.02)
            child.send_signal(signal.SIGKILL)
        finally:
            child.wait(10)
        with sqlite3.connect(cache) as db:
            done = {key for (key,) in db.execute("SELECT key FROM replies")}
        assert 20 <= len(done) < len(items)
        first_run = server.stats()["n_requests"]
        server.reset()
        judge = Judge(config_for(server, tmp_path, concurrency=16))
        results = judge.score_many(items)
        keys = {r.key for r in results}
        resent = {key for key, n in server.counts.items()}
    assert done <= keys
    completed_prompts = {prompt_hash(messages_of(i)) for i, r in zip(items, results, strict=True) if r.key in done}
    assert not completed_prompts & resent  # 0 repeated requests for what completed
    assert server.n_requests == len(items) - len(done)
    assert judge.last_summary.n_cached == len(done) and all(r.score is not None for r in results)
    assert first_run >= len(done)
