"""The one task taxonomy: benchmarks, families, variants and the task-name grammar.

Like mmlu's ``SUBJECTS`` table, this module feeds everything that names or reads a task: the YAML
generators write ``task_name(family, unit)`` files, the analysis ``classify``-es a logged task name back,
and the loaders read each benchmark's data from its ``metadata_key``. A family renamed here is renamed
everywhere; a test walks every shipped task YAML through :func:`classify`, so none can drop silently
out of the analysis.

Grammar: ``<benchmark>_<family>_<unit>`` for AdaCultureSafe (unit = country slug) and
``culturax[_greedy]_<unit>`` for CulturaX (unit = domain slug); the group of a family is
``<benchmark>_<family>`` and each benchmark's top group is its own name.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ADACULTURESAFE = "adaculturesafe"
CULTURAX = "culturax"

KNOWLEDGE = "knowledge"
SAFETY = "safety"


@dataclass(frozen=True)
class Benchmark:
    """A dataset and the ``--metadata`` / environment keys its loader reads."""

    name: str
    metadata_key: str  # --metadata '{"<key>": "./folder"}'
    env_var: str
    hub_id: str

    @property
    def revision_key(self) -> str:
        """The --metadata key that pins the Hub revision (``culturesafe_revision``, ``culturax_revision``)."""
        return self.metadata_key.replace("_data", "_revision")


BENCHMARKS = {
    ADACULTURESAFE: Benchmark(ADACULTURESAFE, "culturesafe_data", "CULTURESAFE_DATA", "culturesafe/adaculturesafe"),
    CULTURAX: Benchmark(CULTURAX, "culturax_data", "CULTURESAFE_CULTURAX_DATA", "culturesafe/culturax"),
}


@dataclass(frozen=True)
class Family:
    """One family of per-unit tasks: its group name, what it measures and how the analysis labels it.

    ``kind`` is the analysis' section (knowledge, safety, culturax); ``label`` is the family's name inside
    that section (``mc``/``gen``/``circular``, a safety variant, ``sampled``/``greedy``).
    """

    benchmark: str
    infix: str  # the part of the task name between the benchmark and the unit ("" for the plain family)
    kind: str
    label: str
    alias: str  # the task_alias suffix
    template: str
    dataset_kind: str = ""  # the dataset config prefix ("knowledge", "safety"); "" where configs are per unit
    dataset_kwargs: dict = field(default_factory=dict)
    group_metrics: tuple[str, ...] = ()

    @property
    def group(self) -> str:
        return f"{self.benchmark}_{self.infix}" if self.infix else self.benchmark

    @property
    def prefix(self) -> str:
        """Every leaf task of the family starts with this."""
        return f"{self.group}_"


_KNOWLEDGE_MC = ("acc", "acc_norm", "acc_by_description", "acc_norm_by_description")
_SAFETY = ("respectfulness", "awareness", "judge_failure_rate")
_CULTURAX = ("wr", "ss", "ti", "avg", "truthful", "informative")

FAMILIES: tuple[Family, ...] = (
    Family(
        ADACULTURESAFE,
        "knowledge",
        KNOWLEDGE,
        "mc",
        "mc",
        "_knowledge_mc_template_yaml",
        KNOWLEDGE,
        group_metrics=_KNOWLEDGE_MC,
    ),
    Family(
        ADACULTURESAFE,
        "knowledge_gen",
        KNOWLEDGE,
        "gen",
        "gen",
        "_knowledge_gen_template_yaml",
        KNOWLEDGE,
        group_metrics=("acc", "invalid_rate", "letter_with_text_rate", "acc_by_description"),
    ),
    Family(
        ADACULTURESAFE,
        "knowledge_circular",
        KNOWLEDGE,
        "circular",
        "circular",
        "_knowledge_circular_template_yaml",
        KNOWLEDGE,
        group_metrics=("circular_acc", "circular_acc_by_description", "acc"),
    ),
    Family(
        ADACULTURESAFE,
        "safety",
        SAFETY,
        "plain",
        "safety",
        "_safety_template_yaml",
        SAFETY,
        {"safety_variant": "plain"},
        _SAFETY,
    ),
    Family(
        ADACULTURESAFE,
        "safety_elicit",
        SAFETY,
        "elicit",
        "elicit",
        "_safety_template_yaml",
        SAFETY,
        {"safety_variant": "elicit"},
        _SAFETY,
    ),
    Family(
        ADACULTURESAFE,
        "safety_oracle",
        SAFETY,
        "oracle",
        "oracle",
        "_safety_template_yaml",
        SAFETY,
        {"safety_variant": "oracle"},
        _SAFETY,
    ),
    Family(
        ADACULTURESAFE,
        "safety_wrongcustom",
        SAFETY,
        "wrongcustom",
        "wrong custom",
        "_safety_template_yaml",
        SAFETY,
        {"safety_variant": "wrongcustom"},
        _SAFETY,
    ),
    Family(CULTURAX, "", CULTURAX, "sampled", "sampled x3", "_default_template_yaml", group_metrics=_CULTURAX),
    Family(CULTURAX, "greedy", CULTURAX, "greedy", "greedy", "_greedy_template_yaml", group_metrics=_CULTURAX),
)

# Labels in headline order (the paper's protocol first for knowledge).
KNOWLEDGE_FAMILIES = ("gen", "mc", "circular")
SAFETY_VARIANTS = tuple(f.label for f in FAMILIES if f.kind == SAFETY)
CULTURAX_SETTINGS = tuple(f.label for f in FAMILIES if f.kind == CULTURAX)
KINDS = (KNOWLEDGE, SAFETY, CULTURAX)


def families(benchmark: str | None = None, kind: str | None = None) -> list[Family]:
    return [f for f in FAMILIES if (benchmark is None or f.benchmark == benchmark) and (kind is None or f.kind == kind)]


def family(benchmark: str, label: str) -> Family:
    """The family of ``benchmark`` whose label (``mc``, ``elicit``, ``greedy``...) or infix is ``label``."""
    for f in families(benchmark):
        if label in (f.label, f.infix):
            return f
    raise KeyError(f"{benchmark} has no task family {label!r}; known: {[f.label for f in families(benchmark)]}")


def task_name(fam: Family, unit_slug: str) -> str:
    """The leaf task of ``fam`` for one country or domain slug."""
    return f"{fam.prefix}{unit_slug}"


def family_of(task: str) -> Family | None:
    """The family a leaf task belongs to (the longest matching prefix wins: ``knowledge_gen`` over ``knowledge``)."""
    matches = [f for f in FAMILIES if task.startswith(f.prefix)]
    return max(matches, key=lambda f: len(f.prefix)) if matches else None


def classify(task: str) -> tuple[str, str] | None:
    """``(kind, label)`` of a culturesafe leaf task, None for any other task."""
    fam = family_of(task)
    return (fam.kind, fam.label) if fam is not None else None


def unit_of(task: str) -> str | None:
    """The country or domain slug of a leaf task."""
    fam = family_of(task)
    return task[len(fam.prefix) :] if fam is not None else None


def benchmark_of(task: str) -> Benchmark | None:
    """The benchmark (and so the metadata keys) a task or group reads from."""
    for name in sorted(BENCHMARKS, key=len, reverse=True):
        if task == name or task.startswith(f"{name}_"):
            return BENCHMARKS[name]
    return None
