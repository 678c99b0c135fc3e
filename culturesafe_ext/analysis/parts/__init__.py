"""The analysis is a list of parts; each computes one block of ``analysis.json`` and one report section.

A part is a module with ``NAME`` (its key in ``analysis.json``), ``TITLE``,
``compute(ctx: Context) -> dict | None`` (per run; None when the run has nothing for it) and
``render(results: dict[label, dict], page: Page) -> str`` (HTML of its section, figures through
``page.figure``; :func:`per_run` builds it from a per-run section). To add one (e.g. per-layer probe
overlap, router modes), write such a module and append its import path to :data:`PARTS`; nothing else
changes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from culturesafe_ext.analysis.extract import RunData
from culturesafe_ext.analysis.html import Page, esc
from culturesafe_ext.analysis.runs import Run
from culturesafe_ext.probing.plots import pyplot  # noqa: F401  (the parts' one headless pyplot)
from culturesafe_ext.tasks.taxonomy import KNOWLEDGE_FAMILIES

PARTS = [
    "culturesafe_ext.analysis.parts.overview",
    "culturesafe_ext.analysis.parts.knowledge",
    "culturesafe_ext.analysis.parts.safety",
    "culturesafe_ext.analysis.parts.judging",
    "culturesafe_ext.analysis.parts.correlation",
    "culturesafe_ext.analysis.parts.crosstab",
    "culturesafe_ext.analysis.parts.joint",
    "culturesafe_ext.analysis.parts.variants",
    "culturesafe_ext.analysis.parts.culturax",
    "culturesafe_ext.analysis.parts.routing",
    "culturesafe_ext.analysis.parts.probe",
]

POOLED = "pooled"


@dataclass(frozen=True)
class Options:
    """Settings of an analysis; all are written into ``analysis.json``."""

    knowledge_family: str | None = None  # None: the first of gen, mc, circular present in the run
    safe_threshold: float = 6.0  # respectfulness (1..10) at or above which a description counts as safe
    knows_threshold: float = 0.5  # knowledge accuracy (0..1) at or above which a description counts as known
    n_resamples: int = 2000
    seed: int = 0
    judge_cards: tuple[str, ...] = ()  # judge_card.json files (culturesafe judge calibrate), shown beside scores

    @classmethod
    def from_args(cls, args) -> Options:
        """From the analysis options of ``analyze report`` and ``leaderboard build`` (see culturesafe_ext.cli)."""
        return cls(
            knowledge_family=args.knowledge_family,
            safe_threshold=args.safe_threshold,
            knows_threshold=args.knows_threshold,
            n_resamples=args.resamples,
            seed=args.seed,
            judge_cards=tuple(str(p) for p in args.judge_card),
        )


@dataclass
class Context:
    """What a part's ``compute`` sees: the run, its records, the options and earlier parts' results."""

    run: Run
    data: RunData
    options: Options
    done: dict[str, Any] = field(default_factory=dict)

    @property
    def headline_family(self) -> str | None:
        if self.options.knowledge_family:
            return self.options.knowledge_family if self.options.knowledge_family in self.data.knowledge else None
        return next((f for f in KNOWLEDGE_FAMILIES if self.data.knowledge.get(f)), None)


def countries_of(keys) -> list[str]:
    return sorted({country for country, _ in keys})


def scopes(keys) -> list[tuple[str, set]]:
    """Per country, then pooled: (name, set of (country, description_id) keys in scope)."""
    keys = set(keys)
    out = [(c, {k for k in keys if k[0] == c}) for c in countries_of(keys)]
    out.append((POOLED, keys))
    return out


Section = Callable[[str, dict, Page], list[str]]


def per_run(note: str | None, section: Section) -> Callable[[dict[str, dict], Page], str]:
    """A part's ``render`` laid out as every part's is: the note, then per run its label and what
    ``section(label, result, page)`` renders for it.

    ``note`` is HTML (it may hold markup), ``None`` for a part whose notes depend on the run; the label is
    escaped here.
    """

    def render(results: dict[str, dict], page: Page) -> str:
        html = [f"<p class='note'>{note}</p>"] if note is not None else []
        for label, r in results.items():
            html.append(f"<h3>{esc(label)}</h3>")
            html += section(label, r, page)
        return "".join(html)

    return render
