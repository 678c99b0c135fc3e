"""Deprecated location: ``culturesafe probe compare`` is split into statistics, plots and command.

:mod:`culturesafe_ext.probing.overlap` (the statistics), :mod:`culturesafe_ext.probing.plots` (the figures) and
:mod:`culturesafe_ext.probing.cli` (the command). This module re-exports them for one release.
"""

from __future__ import annotations

import warnings

from culturesafe_ext.probing.cli import parse_group  # noqa: F401
from culturesafe_ext.probing.cli import run_compare as run  # noqa: F401
from culturesafe_ext.probing.overlap import (  # noqa: F401
    RANK_BY,
    REPORT,
    REPORT_FORMAT,
    Group,
    chance,
    compare,
    compare_groups,
    group_info,
)
from culturesafe_ext.probing.plots import OVERVIEW, pair_figure, plot_overview, plot_pair  # noqa: F401

warnings.warn(
    "culturesafe_ext.probing.compare is split into probing.overlap (statistics), probing.plots and probing.cli; "
    "the old path goes away in the next release",
    DeprecationWarning,
    stacklevel=2,
)
