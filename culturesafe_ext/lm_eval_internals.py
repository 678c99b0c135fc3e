"""Every use of lm-eval's private internals by hf-probe, hf-router, hf-grounded and the cache patch.

lm-eval's public model API is ``loglikelihood`` / ``generate_until`` over ``Instance`` lists; the
wrappers also lean on how ``HFLM`` builds and pads its rows, on its ``_model_call`` / ``_model_generate``
signatures, on ``CachingLM``'s attribute lookup, on how ``doc_hash`` and the results folder name are
computed, and on the ``lm_eval`` command line. All of that is named in :data:`INTERNALS`, reached only
through this module, and checked against :data:`culturesafe_ext.plugin.TESTED_LM_EVAL` once: on another
version one warning lists each internal with what happens if it has moved (the fallback), as the
task hook does (both through :func:`culturesafe_ext.plugin.untested_lm_eval`). It lives beside the
plugin, below ``models/`` and ``routing/``, since both use it.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from lm_eval.models.utils import handle_stop_sequences, normalize_gen_kwargs, postprocess_generated_text
from lm_eval.models.utils_hf import stop_sequences_criteria
from lm_eval.utils import handle_non_serializable, hash_string

log = logging.getLogger("culturesafe")

__all__ = [
    "INTERNALS",
    "COLLECTIVE",
    "HFLM_PAD_ID",
    "REQUEST_CALLS",
    "check_version",
    "cli_option",
    "doc_hash",
    "handle_non_serializable",
    "handle_stop_sequences",
    "hflm_row",
    "normalize_gen_kwargs",
    "patch_caching_lm",
    "postprocess_generated_text",
    "request_calls",
    "results_model_dir",
    "stop_sequences_criteria",
    "unpadded_length",
]

# internal -> who uses it and the fallback when it has moved
INTERNALS: dict[str, str] = {
    "HFLM._loglikelihood_tokens builds row (context + continuation)[-(max_length + 1):][:-1], right-padded "
    "with token 0, and hands it to _model_call(inps, attn_mask, labels)": "hf-probe matches rows to tasks by "
    "these tokens; rows it cannot match are not recorded and are counted in a warning ('rows matched no request')",
    "HFLM._model_generate(context, max_length, stop, **generation_kwargs)": "hf-probe arms its hooks around it; "
    "a changed signature fails loudly (TypeError), nothing is recorded silently",
    "CachingLM.__getattr__ returns the wrapped LM's request methods": "hf-router tags requests with their route "
    "before CachingLM hashes them; if the shape differs, hf-router refuses --use_cache",
    "CachingLM's request method skips the wrapped LM's method when every request is cached": "under data "
    "parallelism the patched CachingLM then runs the wrapper's method with no requests, so every rank reaches its "
    "gathers (a CachingLM that calls it anyway is detected by the call count); if CachingLM's shape differs, "
    "hf-probe, hf-router and hf-grounded refuse --use_cache under data parallelism",
    "evaluate() evens out data-parallel ranks by sending a rank's last Instance again (the same object, "
    "`repeats` times per missing request)": "hf-probe probe_tokens=generated records a generation only for the "
    "first `repeats` sends of an Instance; if lm-eval pads otherwise, a padding copy may be recorded (the "
    "two-process tests compare the statistics with the one-process run)",
    "CacheHook.add_partial(attr, req, res) and CacheHook.dbdict": "hf-router and hf-grounded add the route tag to "
    "partial cache writes; without dbdict nothing is written there (CachingLM still writes at the end)",
    "lm_eval.utils.hash_string(json.dumps(doc, indent=2, default=handle_non_serializable, ensure_ascii=False)) "
    "is a sample's doc_hash": "hf-grounded's log keys its lines by it; if it changed they no longer join with "
    "--log_samples (the log still has task_name and doc_id)",
    "GeneralConfigTracker._get_model_name and sanitize_model_name name the results folder": "hf-probe puts its "
    "stats beside the results file; if they moved, the stats go to <output_path>/probe_stats",
    "sys.argv holds the lm_eval command line (--output_path / -o)": "hf-probe's default stats folder; outside the "
    "CLI, ./probe_stats (or pass probe_out=)",
    "HFLM._encode_pair, prefix_token_id, tok_batch_encode(strings, left_truncate_len, truncation) and "
    "think_end_token": "hf-grounded's CAD encodes both streams exactly as HFLM would; a changed signature fails "
    "loudly (TypeError or AttributeError)",
    "lm_eval.models.utils.{postprocess_generated_text, normalize_gen_kwargs, handle_stop_sequences} and "
    "utils_hf.stop_sequences_criteria": "imported by name: a move fails at import, naming the function",
    "lm_eval.utils.apply_template renders a doc through lm_eval.utils.env.from_string(template)": "`culturesafe "
    "synthesize` memoises the compiled templates (lm-eval compiles one per doc, ~2 ms); if env moved, templates "
    "are compiled per doc as lm-eval does (slower, same prompts)",
}

# HFLM right-pads loglikelihood batches with this token id (lm_eval.models.utils.pad_and_concat)
HFLM_PAD_ID = 0

_checked = False


def check_version() -> bool:
    """Warn once when lm-eval is outside the tested range, naming each internal and its fallback."""
    global _checked
    if _checked:
        return True
    _checked = True
    from culturesafe_ext.plugin import untested_lm_eval

    untested = untested_lm_eval()
    if untested is None:
        return True
    log.warning(
        "culturesafe: lm-eval %s is outside the versions hf-probe, hf-router and hf-grounded were checked against "
        "(%s to before %s); trying anyway. The lm-eval internals they use, and what happens if one moved:\n%s",
        *untested,
        "\n".join(f"  - {name}: {fallback}" for name, fallback in INTERNALS.items()),
    )
    return False


# --- HFLM's loglikelihood rows ------------------------------------------------------------------------
def hflm_row(context_enc: Sequence[int], continuation_enc: Sequence[int], max_length: int) -> tuple[int, ...]:
    """The exact row HFLM feeds a causal model for one loglikelihood request (before right padding)."""
    return tuple((list(context_enc) + list(continuation_enc))[-(max_length + 1) :][:-1])


def unpadded_length(padded: Sequence[int]) -> int:
    """Length of a right-padded HFLM row without its trailing pad tokens (a real trailing 0 is also cut)."""
    end = len(padded)
    while end > 0 and padded[end - 1] == HFLM_PAD_ID:
        end -= 1
    return end


# --- results and samples ----------------------------------------------------------------------------
def doc_hash(doc: dict) -> str:
    """The ``doc_hash`` lm-eval writes into each sample (same serialisation), to join our logs with it."""
    return hash_string(json.dumps(doc, indent=2, default=handle_non_serializable, ensure_ascii=False))


def cli_option(names: tuple[str, ...], argv: Sequence[str] | None = None) -> str | None:
    """The value of an ``--name VALUE`` or ``--name=VALUE`` option of the running command (the last wins)."""
    argv = list(sys.argv if argv is None else argv)
    value = None
    for i, arg in enumerate(argv):
        if arg in names and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith(tuple(f"{name}=" for name in names if name.startswith("--"))):
            value = arg.split("=", 1)[1]
    return value


def results_model_dir(output_path: str, model_args: dict[str, Any]) -> Path:
    """The folder of the results file of ``lm_eval ... --output_path output_path`` for these model args:
    ``X/<sanitized model name>/`` (or X's folder when X ends in .json), named by lm-eval's own function."""
    path = Path(output_path)
    if path.suffix == ".json":
        return path.parent
    try:
        from lm_eval.loggers.evaluation_tracker import GeneralConfigTracker
        from lm_eval.utils import sanitize_model_name

        name = GeneralConfigTracker._get_model_name({k: v for k, v in model_args.items() if v is not None})
    except (ImportError, AttributeError) as err:
        log.warning("culturesafe: lm-eval's results-folder naming moved (%s); using %s", err, path)
        return path
    return path / sanitize_model_name(name) if name else path


# --- CachingLM ----------------------------------------------------------------------------------------
# The protocol between the patched CachingLM and a wrapper (culturesafe_ext.models.ranks.collective sets both):
# a request method marked COLLECTIVE ends in a gather across data-parallel ranks, and the wrapper counts its
# calls per method name in the instance attribute REQUEST_CALLS.
COLLECTIVE = "_culturesafe_collective"
REQUEST_CALLS = "_culturesafe_request_calls"


def request_calls(lm: Any, attr: str) -> int:
    """How often ``lm``'s request method ``attr`` has run (0 before its first call)."""
    return getattr(lm, "__dict__", {}).get(REQUEST_CALLS, {}).get(attr, 0)


def patch_caching_lm(tag_method: str, request_methods: Sequence[str]) -> bool:
    """Patch ``CachingLM``'s request methods; False when CachingLM's shape is unknown (nothing patched).

    - They first call the wrapped LM's ``tag_method(requests)`` (when it has one), so a request is tagged before
      CachingLM hashes it.
    - Under data parallelism, when the wrapped LM's method is marked :data:`COLLECTIVE` and CachingLM did not
      call it (lm-eval 0.4.13 skips the model when every request of the rank is cached), they call it with no
      requests: the other ranks wait for this one in the gather that ends the method.
    """
    try:
        from lm_eval.api import model as lm_model
    except ImportError:
        return False
    caching = getattr(lm_model, "CachingLM", None)
    original: Callable | None = caching.__dict__.get("__getattr__") if caching is not None else None
    if original is None:
        log.warning(
            "culturesafe: lm-eval's CachingLM has an unexpected shape; hf-router refuses --use_cache, and hf-probe "
            "and hf-grounded refuse it under data parallelism."
        )
        return False
    if getattr(original, "_culturesafe", False):
        return True

    def __getattr__(self, attr: str):
        fn = original(self, attr)
        lm = self.__dict__.get("lm")
        if attr not in request_methods:
            return fn
        tag = getattr(lm, tag_method, None)
        parallel = int(getattr(lm, "world_size", 1) or 1) > 1
        collective = parallel and getattr(getattr(type(lm), attr, None), COLLECTIVE, False)
        if tag is None and not collective:
            return fn

        def patched(requests):
            if tag is not None:
                tag(requests)
            before = request_calls(lm, attr)
            out = fn(requests)
            if collective and request_calls(lm, attr) == before:  # every request of this rank was cached
                getattr(lm, attr)([])
            return out

        return patched

    __getattr__._culturesafe = True  # type: ignore[attr-defined]
    caching.__getattr__ = __getattr__
    return True


check_version()


# --- jinja templates compiled once --------------------------------------------------------------------
def cache_jinja_templates() -> bool:
    """Make lm-eval's jinja environment compile each distinct template once (it compiles one per doc).

    Why: rendering thousands of synthesized docs by the task's own templates spent ~2 ms per template compile,
    most of the synthesis pipeline's CPU time. A compiled ``jinja2.Template`` renders any doc, so the prompts
    are the same. Idempotent; False (and no change) when lm-eval's ``env`` is not where it was.
    """
    import functools

    import lm_eval.utils as lm_utils

    env = getattr(lm_utils, "env", None)
    if env is None or not hasattr(env, "from_string"):
        return False
    if getattr(env.from_string, "culturesafe_cached", False):
        return True
    compile_once = functools.lru_cache(maxsize=1024)(env.from_string)
    compile_once.culturesafe_cached = True  # type: ignore[attr-defined]
    env.from_string = compile_once
    return True
