"""lm-eval pads a rank's last request under data parallelism: the judge filter drops those copies (tasks/judging)."""

from __future__ import annotations

import pytest


def test_unpadded_drops_the_copies_lm_eval_appends_to_a_ranks_last_request() -> None:
    from culturesafe_ext.tasks.judging import unpadded

    padded = [["a1", "a2", "a3"], ["b1", "b2", "b3", "b1'", "b2'", "b3'"]]  # 3 repeats, one request of padding
    assert unpadded(padded, 3) == [["a1", "a2", "a3"], ["b1", "b2", "b3"]]
    assert unpadded([["x", "x'"]], 1) == [["x"]]  # a rank with one document, padded: only the YAML's repeats know
    assert unpadded([["a"], ["b", "b'"]]) == [["a"], ["b"]]  # without it: the task's shortest list on the rank
    with pytest.raises(ValueError, match="culturax: instance 0 has 2 responses, fewer than its 3 repeats"):
        unpadded([["a", "b"]], 3, "culturax")
