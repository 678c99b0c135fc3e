"""Arrows point down: ``lint-imports`` keeps the import-linter contracts of pyproject.toml on the installed
package (rooms in layers, and the insides of analysis/, leaderboard/ and builders/), and breaks on an upward
import (shown on a copy of the package with one added)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import culturesafe_ext

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
LINT_IMPORTS = str(Path(sys.executable).parent / "lint-imports")


def lint_imports(cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LINT_IMPORTS, "--config", str(PYPROJECT), "--no-cache"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **env},
    )


def test_contracts_kept(tmp_path: Path) -> None:
    done = lint_imports(tmp_path)
    assert done.returncode == 0 and "Contracts: 4 kept, 0 broken." in done.stdout, done.stdout + done.stderr


def test_an_upward_import_breaks_the_contract(tmp_path: Path) -> None:
    copy = tmp_path / "site" / "culturesafe_ext"
    shutil.copytree(Path(culturesafe_ext.__file__).parent, copy, ignore=shutil.ignore_patterns("bundled", "*.pyc"))
    with (copy / "llm" / "__init__.py").open("a", encoding="utf-8") as f:
        f.write("\nfrom culturesafe_ext.analysis import runs  # noqa: E402 - the upward import under test\n")
    done = lint_imports(tmp_path, PYTHONPATH=str(copy.parent))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "rooms in layers, no upward import, every room placed BROKEN" in " ".join(done.stdout.split())
    assert "culturesafe_ext.llm -> culturesafe_ext.analysis.runs" in done.stdout
