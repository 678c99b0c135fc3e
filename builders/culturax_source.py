"""One record of the authors' CulturaX.csv as read: what the builder, the reference audit and the
generation pipeline's CulturaX step all pass around (a leaf module, so none of them imports another for it)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class SourceRow:
    """One CSV record as read, with its spreadsheet row number (the header is row 1)."""

    row: int
    question: str
    subdomain_id: int
    topic: str
    helpful: str
    harmless: str
    honest: str
