"""Which language a text is in: py3langid (langid.py's model, maintained, numpy only), ISO 639-1 codes.

Why here: a fetched page's language is decided where its text is extracted, in the extraction worker
(:mod:`extract_pool`), and kept with the passage (:attr:`Passage.language`); a pipeline that filters passages
by language reads it instead of classifying on its event loop between replies, and classifies itself only
what has none (a local corpus, a page cached before).
"""

from __future__ import annotations

LANGUAGE_CHARS = 4000  # a page's language is that of its opening: what a generator is shown of it


def language_of(text: str) -> str:
    import py3langid

    return py3langid.classify(text)[0]


def page_language(text: str) -> str:
    """The language of a page's first :data:`LANGUAGE_CHARS` characters."""
    return language_of(text[:LANGUAGE_CHARS])
