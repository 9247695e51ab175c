"""The live terminal view of `spillway run` (the observer's rich renderable), or plain
progress lines when the output is not a terminal."""

from __future__ import annotations

import threading
import time
from typing import Any

from streams.commands import say as plain_say
from streams.settings import Settings
from streams.sim.model import Step
from streams.site_file import SiteFile


class LiveView:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.live: Any = None
        self.feed_thread: Any = None
        self.last_line = 0.0
        self.steps = 0
        self.readings = 0

    def say(self, message: str) -> None:
        if self.live is not None:
            self.live.console.print(f"• {message}")
        else:
            plain_say(message)

    def start(self, settings: Settings, site_file: SiteFile) -> None:
        if not self.enabled:
            return
        from rich.live import Live

        from streams.observe.feed import Feed, FeedThread
        from streams.observe.state import ObserveState
        from streams.observe.terminal import render

        lock = threading.Lock()
        state = ObserveState(site_id=site_file.site.site_id)
        self.feed_thread = FeedThread(Feed(settings, state, lookback_s=60, lock=lock))
        self.feed_thread.start()

        def renderable() -> Any:
            with lock:
                return render(state)

        self.live = Live(get_renderable=renderable, refresh_per_second=2, transient=False)
        self.live.start()

    def on_step(self, step: Step) -> None:
        self.steps += 1
        self.readings += step.readings
        now = time.monotonic()
        if self.live is None and now - self.last_line >= 10:
            self.last_line = now
            stamp = time.strftime("%H:%M", time.gmtime(step.ts_s))
            t = step.truth
            plain_say(
                f"sim {stamp}Z: AI {t.ai_w / 1e6:.2f} MW, mining {t.mining_w / 1e6:.2f} MW,"
                f" {self.readings:,} readings so far"
            )

    def stop(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None
        if self.feed_thread is not None:
            self.feed_thread.stop()
            self.feed_thread = None
