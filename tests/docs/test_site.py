"""The docs/ pages build as a site with ``mkdocs build --strict``: a broken link, a missing anchor, a page left
out of the nav or a missing snippet fails the build. Built into a temporary folder, never into the checkout."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from mkdocs.commands.build import build
from mkdocs.config import load_config
from mkdocs.exceptions import Abort

REPO = Path(__file__).resolve().parents[2]


def build_site(root: Path, site_dir: Path) -> None:
    """``mkdocs build --strict -f ROOT/mkdocs.yml -d SITE_DIR`` through mkdocs' own Python API."""
    config = load_config(config_file=str(root / "mkdocs.yml"), strict=True, site_dir=str(site_dir))
    config.plugins.on_startup(command="build", dirty=False)
    try:
        build(config)
    finally:
        config.plugins.on_shutdown()


def copy_of_the_docs(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(REPO / "docs", root / "docs")
    for name in ("mkdocs.yml", "CHANGELOG.md"):
        shutil.copy(REPO / name, root / name)
    return root


def test_the_site_builds_strictly_with_every_page(tmp_path: Path):
    site = tmp_path / "site"
    build_site(REPO, site)
    pages = sorted(p.relative_to(REPO / "docs").with_suffix("") for p in (REPO / "docs").rglob("*.md"))
    for page in pages:
        html = site / ("index.html" if page.name == "index" else page / "index.html")
        assert html.is_file(), f"docs/{page}.md was not built"
    changelog = (site / "changelog" / "index.html").read_text(encoding="utf-8")
    assert "Unreleased" in changelog and "--8&lt;--" not in changelog, "CHANGELOG.md is not included"
    assert not (REPO / "site").exists(), "the build wrote into the checkout"


@pytest.mark.parametrize(
    "page, addition",
    [
        ("data.md", "\n[a page that is not there](no-such-page.md)\n"),
        ("data.md", "\n[an anchor that is not there](tasks.md#no-such-heading)\n"),
    ],
)
def test_a_broken_link_fails_the_build(tmp_path: Path, page: str, addition: str):
    root = copy_of_the_docs(tmp_path)
    with (root / "docs" / page).open("a", encoding="utf-8") as f:
        f.write(addition)
    with pytest.raises(Abort, match="strict mode"):
        build_site(root, tmp_path / "site")


def test_a_page_missing_from_the_nav_fails_the_build(tmp_path: Path):
    root = copy_of_the_docs(tmp_path)
    (root / "docs" / "orphan.md").write_text("# Not in the nav\n", encoding="utf-8")
    with pytest.raises(Abort, match="strict mode"):
        build_site(root, tmp_path / "site")


def test_a_page_in_the_nav_that_is_missing_fails_the_build(tmp_path: Path):
    root = copy_of_the_docs(tmp_path)
    (root / "docs" / "multi-gpu.md").unlink()
    with pytest.raises(Abort, match="strict mode"):
        build_site(root, tmp_path / "site")


def test_the_readme_links_to_existing_pages_and_shows_the_two_commands():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\(((?:docs/|CHANGELOG)[^)#]*)(?:#[^)]*)?\)", readme)
    assert targets, "the README links to no docs page"
    missing = [t for t in targets if not (REPO / t).is_file()]
    assert not missing, f"README.md links to missing files: {missing}"
    pages = {str(p.relative_to(REPO)) for p in (REPO / "docs").rglob("*.md")} - {"docs/index.md", "docs/changelog.md"}
    assert pages <= set(targets), f"the README's table misses {sorted(pages - set(targets))}"
    for command in ("bash scripts/demo.sh", "bash scripts/test.sh"):
        assert re.search(rf"^{re.escape(command)}(\s|$)", readme, re.M), f"README.md lost `{command}`"
    assert len(readme.splitlines()) <= 130, "README.md is meant to stay short: move details to docs/"
