#!/usr/bin/env bash
# README command 1: the demo evaluation on the bundled sample with the offline model.
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
cd "$ROOT"
exec culturesafe demo "$@"
