# Sourced by _venv.sh and _vllm.sh: the one way this project installs with uv.
# uv reads neither pip.conf nor PIP_* variables: uv_pip_install PY ARGS... passes pip's indexes, find-links and
# constraints on as uv arguments. --compile-bytecode: uv leaves .py files uncompiled by default, and where
# PYTHONDONTWRITEBYTECODE=1 is set (CI's machines set it) nothing ever writes a .pyc, so every process would
# compile torch, transformers and lm-eval from source again (~40 s of CPU per lm_eval process, profiled).
_uv_args() {  # _uv_args PY: pip's settings as uv arguments
  "$1" -m pip config list 2>/dev/null | while IFS= read -r line; do
    key="${line%%=*}"; value="${line#*=}"; value="${value#\'}"; value="${value%\'}"
    case "${key#*.}" in
      index-url) echo "--default-index=$value" ;;
      extra-index-url) for v in $value; do echo "--index=$v"; done ;;
      find-links) for v in $value; do echo "--find-links=$v"; done ;;
      constraint) for v in $value; do echo "--constraint=$v"; done ;;
    esac
  done | sort -u
}
uv_pip_install() {  # uv_pip_install PY ARGS...: uv from PY's venv, pip's settings, bytecode compiled
  local py="$1"; shift
  local uv_args
  mapfile -t uv_args < <(_uv_args "$py")
  # pip merges every index it is given; uv's equivalent strategy is unsafe-best-match
  "$(dirname "$py")/uv" pip install -q --python "$py" --index-strategy unsafe-best-match --compile-bytecode \
    "${uv_args[@]}" "$@"
}
