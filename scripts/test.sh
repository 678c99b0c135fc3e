#!/usr/bin/env bash
# README command 2: the test suite (unit tests and end-to-end runs of the real lm_eval CLI).
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
source "$(dirname "${BASH_SOURCE[0]}")/_browser.sh"
cd "$ROOT"
ruff check .
exec python -m pytest -p no:cacheprovider "$@"
