"""Deprecated location: AdaCultureSafe's schema is :mod:`culturesafe_ext.data.adaculturesafe_schema`.

Named for its dataset beside :mod:`culturesafe_ext.data.culturax_schema`; this module re-exports it for one
release.
"""

from __future__ import annotations

import warnings

from culturesafe_ext.data import adaculturesafe_schema as _schema

globals().update({k: v for k, v in vars(_schema).items() if not k.startswith("__")})

warnings.warn(
    "culturesafe_ext.data.schema is now culturesafe_ext.data.adaculturesafe_schema; "
    "the old path goes away in the next release",
    DeprecationWarning,
    stacklevel=2,
)
