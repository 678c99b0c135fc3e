"""What counts as a secret in settings and metadata, and the one filter for settings written to files.

Why: lm-eval writes the merged metadata into every results file and the judge settings travel in every
logged sample, so a key may only come from the environment: settings that carry one are refused
(:mod:`culturesafe_ext.llm.settings`) and whatever is written to a file goes through :func:`public_settings`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_SECRET_WORDS = {
    "key", "apikey", "token", "secret", "password", "passwd", "pwd", "auth", "authorization",
    "credential", "credentials", "bearer", "signature", "cookie",
}  # fmt: skip
_SECRET_VALUE = re.compile(r"\b(sk-[A-Za-z0-9_-]{12,}|hf_[A-Za-z0-9]{16,}|Bearer\s+\S{8,})")


_TOKENIZER_WORDS = {"pad", "eos", "bos", "unk", "sep", "cls", "mask", "end", "start", "special", "think", "max", "new"}


def secret_name(name: str) -> bool:
    """``api_key``, ``hf-token``, ``X-Api-Key``, ``accessToken`` -- not ``max_tokens``, ``tokenizer``, ``pad_token``."""
    parts = re.split(r"[^a-z0-9]+", re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower())
    for i, part in enumerate(parts):
        if part == "token" and i and parts[i - 1] in _TOKENIZER_WORDS:
            continue  # a tokenizer's special token, not a credential
        if part in _SECRET_WORDS:
            return True
    return "apikey" in name.lower().replace("-", "").replace("_", "")


def find_secrets(value: Any, where: str) -> list[str]:
    """Where ``value`` (any depth of dicts and lists, URLs included) carries something secret-looking.

    Why: lm-eval writes the metadata into results files, and the settings travel in every logged
    sample; a secret may only come from the environment. Returns paths like ``extra_body.headers.Authorization``.
    """
    found: list[str] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            path = f"{where}.{key}"
            if secret_name(str(key)) and isinstance(item, str) and item:
                found.append(path)
            else:
                found.extend(find_secrets(item, path))
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            found.extend(find_secrets(item, f"{where}[{i}]"))
    elif isinstance(value, str):
        if _SECRET_VALUE.search(value):
            found.append(where)
        elif "://" in value:
            found.extend(url_secrets(value, where))
    return found


def url_secrets(url: str, where: str) -> list[str]:
    from urllib.parse import parse_qsl, urlsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    found = [f"{where} (user:password@ in the URL)"] if parts.password or parts.username else []
    found += [
        f"{where} (query parameter {k!r})"
        for k, _ in parse_qsl(parts.query)
        if secret_name(k) or k.lower() in ("sig", "code", "session", "sessionid")
    ]
    return found


def public_settings(values: Mapping[str, Any], keys: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The one filter for settings written to files: ``keys`` (default all) minus anything secret-looking.

    A secret-looking name (:func:`secret_name`) is dropped at any depth, and so is a value that carries a secret
    (:func:`find_secrets`), so a report or manifest never holds a key even where the settings were not refused.
    """
    out: dict[str, Any] = {}
    for key, value in values.items():
        if (keys is not None and key not in keys) or secret_name(str(key)):
            continue
        if isinstance(value, Mapping):
            value = public_settings(value)
        elif find_secrets(value, str(key)):
            continue
        out[key] = value
    return out


MASK = "[API key]"


def mask(text: str, secrets: str | None | list[str | None] | tuple[str | None, ...], limit: int | None = None) -> str:
    """``text`` with every secret replaced by ``[API key]``, THEN cut to ``limit`` characters (``...`` added).

    The one masking of a server's text before it is kept anywhere (messages, samples, logs), for every backend.
    Why this order: cutting first can split a key at the cut, and the part before it would no longer match."""
    for secret in [secrets] if isinstance(secrets, str) or secrets is None else secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text if limit is None or len(text) <= limit else text[:limit] + "..."
