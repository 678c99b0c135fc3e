"""Where the checkout and the shared upstream release files are, for tests that read them."""

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
UPSTREAM = REPO.parent / "shared" / "upstream"
