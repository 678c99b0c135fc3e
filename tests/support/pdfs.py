"""Real PDF files for tests, and a 127.0.0.1 server that serves files with the content type given.

:func:`text_pdf` draws lines of text with matplotlib's PDF backend (a real producer: TrueType fonts embedded, a text
layer pypdf reads back); :func:`blank_pdf` is a page without text, as a scanned page is to a text extractor.
"""

from __future__ import annotations

import io
from collections import Counter

from aiohttp import web

from support.loopback import LoopbackServer


def text_pdf(lines: list[str], title: str | None = None) -> bytes:
    """One page holding ``lines`` (each a line of text), with ``title`` in the document's metadata."""
    import matplotlib
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8.5, 11))
    for i, line in enumerate(lines):
        fig.text(0.05, 0.95 - 0.03 * i, line, fontsize=9)
    out = io.BytesIO()
    with matplotlib.rc_context({"pdf.fonttype": 42}):
        fig.savefig(out, format="pdf", metadata={"Title": title} if title else None)
    return out.getvalue()


def blank_pdf() -> bytes:
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


class FileServer(LoopbackServer):
    """``GET /<name>`` answers ``files[name]`` = (body, content type); ``requests`` counts them per name."""

    name = "file-server"

    def __init__(self, files: dict[str, tuple[bytes, str]], max_lifetime: float = 120.0) -> None:
        self.files = files
        self.max_lifetime = max_lifetime
        self.requests: Counter[str] = Counter()
        self._init_server()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, name: str) -> str:
        return f"{self.base_url}/{name}"

    def install(self, app: web.Application) -> None:
        app.router.add_get("/{name}", self._file)

    async def _file(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        self.requests[name] += 1
        if name not in self.files:
            return web.Response(status=404, text="Not Found")
        body, content_type = self.files[name]
        return web.Response(body=body, headers={"Content-Type": content_type})
