"""An aiohttp server on 127.0.0.1 in a background thread: the one server loop every stand-in runs on.

Subclasses set ``max_lifetime`` and add their endpoints in :meth:`install`; ``with Server(...) as s`` starts it on
a free port (``s.base_url``) and stops it on exit. It stops by itself after ``max_lifetime`` seconds.
"""

from __future__ import annotations

import asyncio
import threading

from aiohttp import web


class LoopbackServer:
    name = "loopback-standin"
    max_lifetime: float = 300.0
    client_max_size = 1024**2  # aiohttp's default request body limit
    backlog = 4096

    def _init_server(self) -> None:
        self.port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def install(self, app: web.Application) -> None:
        """The server's endpoints."""
        raise NotImplementedError

    def start(self, timeout: float = 30.0):
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout) or self._error is not None:
            raise RuntimeError(f"the {self.name} did not start: {self._error!r}")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            asyncio.run(self.serve())
        except BaseException as err:  # surfaced by start()
            self._error = err
            self._ready.set()

    async def serve(self, port: int = 0, announce: bool = False) -> None:
        """Serve until stopped or ``max_lifetime`` passes."""
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        app = web.Application(client_max_size=self.client_max_size)
        self.install(app)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port, backlog=self.backlog)
        await site.start()
        self.port = runner.addresses[0][1]
        if announce:
            print(f"PORT {self.port}", flush=True)
        self._ready.set()
        try:
            await asyncio.wait_for(self._stop.wait(), self.max_lifetime)
        except asyncio.TimeoutError:
            pass
        finally:
            await runner.cleanup()
