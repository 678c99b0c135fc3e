"""Arrows point down: which culturesafe package may import which, checked on the installed package.

The rooms (README "Layout") form layers: a package imports only packages of lower layers or its own, so
no two packages import each other and nothing low reaches up to builders, analysis or the CLI. A new
upward import fails here, naming the file and the line.
"""

from __future__ import annotations

import ast
from pathlib import Path

import culturesafe_ext

ROOT = Path(culturesafe_ext.__file__).resolve().parent
# lowest first; a room may import rooms of lower layers (and itself); deprecated aliases load lazily
LAYERS = [
    {"paths", "plugin", "near_duplicates"},
    {"lm_eval_internals", "llm", "demo_model"},
    {"data", "sources"},  # sources: search, fetching, provenance (uses llm only)
    {"parsing", "grounding", "probing"},
    {"judge", "routing"},
    {"tasks", "models"},
    {"training", "builders", "analysis", "lm_eval_tasks"},  # lm_eval_tasks: the YAML generators
    {"demo", "routing_compare", "cli", "_startup", "__init__"},
]
LAYER = {room: n for n, rooms in enumerate(LAYERS) for room in rooms}


def room_of(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return parts[0]


def imported_rooms(path: Path) -> list[tuple[int, str]]:
    """(line, room) of every culturesafe_ext import in the file, relative ones resolved."""
    package = ["culturesafe_ext", *path.relative_to(ROOT).parent.parts]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            names = [".".join(base + ([node.module] if node.module else []))]
            if not node.module:
                names = [f"{names[0]}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "culturesafe_ext" and len(parts) > 1:
                target = parts[1]
                if target in ("__version__",):
                    continue
                out.append((node.lineno, target))
    return out


def test_every_room_has_a_layer() -> None:
    rooms = {room_of(p) for p in ROOT.rglob("*.py")}
    assert rooms <= set(LAYER), f"rooms without a layer: {sorted(rooms - set(LAYER))}"


def test_imports_point_down() -> None:
    upward = []
    for path in sorted(ROOT.rglob("*.py")):
        here = room_of(path)
        for line, target in imported_rooms(path):
            if target != here and target in LAYER and LAYER[target] >= LAYER[here]:
                upward.append(f"{path.relative_to(ROOT)}:{line}: {here} imports {target}")
    assert not upward, "\n".join(upward)
