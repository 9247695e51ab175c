"""The local web dashboard (aiohttp), bound to 127.0.0.1 only.

Routes:
  /             the page (static/index.html; charts by the vendored uPlot)
  /api/state    the live snapshot (``state.snapshot``) as JSON
  /api/events   the same snapshot pushed every ``push_every_s`` (Server-Sent Events)
  /api/marts    published marts: latest settlement intervals, month to date
  /metrics      Prometheus exposition of this process's registry
  /healthz      ``ok``

``DashboardServer`` runs the app and the Kafka feed in background threads, so a test or
``spillway run`` can start it, read ``url``, and ``stop()`` it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
from aiohttp import web

from streams.observe import metrics
from streams.observe.marts import MartsReader
from streams.observe.state import ObserveState, snapshot
from streams.settings import Settings

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
HOST = "127.0.0.1"
"""Local only: the dashboard has no authentication."""

_STATE: web.AppKey[ObserveState] = web.AppKey("state", ObserveState)
_LOCK: web.AppKey[threading.Lock] = web.AppKey("lock", threading.Lock)
_MARTS: web.AppKey[MartsReader] = web.AppKey("marts", MartsReader)
_STATUS: web.AppKey[Callable[[], str | None]] = web.AppKey("status")
_STOPPING: web.AppKey[asyncio.Event] = web.AppKey("stopping", asyncio.Event)
_PUSH_S: web.AppKey[float] = web.AppKey("push_s", float)

_encoder = msgspec.json.Encoder()


def _snapshot_bytes(app: web.Application) -> bytes:
    now = time.time()
    with app[_LOCK]:
        snap = snapshot(app[_STATE], now)
    snap["feed_error"] = app[_STATUS]()
    return _encoder.encode(snap)


async def _index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "index.html")


async def _state(request: web.Request) -> web.Response:
    return web.Response(body=_snapshot_bytes(request.app), content_type="application/json")


async def _events(request: web.Request) -> web.StreamResponse:
    app = request.app
    resp = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await resp.prepare(request)
    stopping = app[_STOPPING]
    try:
        while not stopping.is_set():
            await resp.write(b"data: " + _snapshot_bytes(app) + b"\n\n")
            try:
                await asyncio.wait_for(stopping.wait(), timeout=app[_PUSH_S])
            except TimeoutError:
                pass
    except (ConnectionResetError, asyncio.CancelledError):
        pass  # the browser went away
    return resp


async def _marts(request: web.Request) -> web.Response:
    app = request.app
    with app[_LOCK]:
        state = app[_STATE]
        site_id = state.site_id
        tz = state.site.timezone if state.site is not None else "UTC"
    now = time.time()
    # Parquet reads can take a moment: keep them off the event loop.
    view = await asyncio.get_running_loop().run_in_executor(
        None, lambda: app[_MARTS].read(now_s=now, site_id=site_id, tz=tz)
    )
    if view.published_at_s is not None:
        metrics.MART_LAST_PUBLICATION.set(view.published_at_s)
    if view.generation is not None:
        metrics.MART_GENERATION.set(view.generation)
    return web.Response(body=_encoder.encode(view.as_dict()), content_type="application/json")


async def _metrics(request: web.Request) -> web.Response:
    return web.Response(
        body=metrics.metrics_text(),
        headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
    )


async def _health(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def _on_shutdown(app: web.Application) -> None:
    app[_STOPPING].set()


def build_app(
    state: ObserveState,
    lock: threading.Lock,
    marts_dir: Path,
    *,
    status: Callable[[], str | None] = lambda: None,
    push_every_s: float = 1.0,
) -> web.Application:
    """The aiohttp application over ``state`` (read under ``lock``)."""
    app = web.Application()
    app[_STATE] = state
    app[_LOCK] = lock
    app[_MARTS] = MartsReader(marts_dir)
    app[_STATUS] = status
    app[_STOPPING] = asyncio.Event()
    app[_PUSH_S] = push_every_s
    app.router.add_get("/", _index)
    app.router.add_get("/api/state", _state)
    app.router.add_get("/api/events", _events)
    app.router.add_get("/api/marts", _marts)
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/healthz", _health)
    app.router.add_static("/static/", STATIC_DIR)
    app.on_shutdown.append(_on_shutdown)
    return app


class DashboardServer:
    """The dashboard's web server in a thread with its own event loop.

    ``start()`` returns once the port is bound (``port=0``: any free port; see ``url``).
    The Kafka feed is separate (``streams.observe.feed.FeedThread``): pass its status
    function so the page can say when the feed is failing.
    """

    def __init__(
        self,
        settings: Settings,
        state: ObserveState,
        lock: threading.Lock,
        *,
        port: int = 8050,
        marts_dir: Path | None = None,
        status: Callable[[], str | None] = lambda: None,
        push_every_s: float = 1.0,
    ) -> None:
        self.state = state
        self.lock = lock
        self.requested_port = port
        self.marts_dir = marts_dir or settings.marts_dir
        self.status = status
        self.push_every_s = push_every_s
        self.port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("dashboard not started")
        return f"http://{HOST}:{self.port}/"

    def start(self, timeout_s: float = 10.0) -> str:
        self._thread = threading.Thread(target=self._run, name="spillway-dashboard", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout_s):
            raise RuntimeError(f"dashboard did not start within {timeout_s:.0f} s")
        if self._error is not None:
            raise OSError(
                f"cannot serve the dashboard on {HOST}:{self.requested_port}: {self._error}"
            ) from self._error
        return self.url

    def _run(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # noqa: BLE001 - reported to start()'s caller
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        loop.run_forever()
        loop.run_until_complete(self._cleanup())
        loop.close()

    async def _serve(self) -> None:
        app = build_app(
            self.state,
            self.lock,
            self.marts_dir,
            status=self.status,
            push_every_s=self.push_every_s,
        )
        self._runner = web.AppRunner(app, shutdown_timeout=2.0, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, HOST, self.requested_port)
        await site.start()
        addresses = self._runner.addresses
        self.port = int(addresses[0][1]) if addresses else self.requested_port
        log.info("dashboard serving", extra={"url": self.url})

    async def _cleanup(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def stop(self, timeout_s: float = 10.0) -> None:
        if self._loop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout_s)


def status_of(feed_thread: Any) -> Callable[[], str | None]:
    """A status function for ``DashboardServer`` from a ``FeedThread`` (its last error)."""
    return lambda: getattr(feed_thread, "error", None)
