"""Child processes of the main job (agents worker, mart sink): start, watch, stop cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from streams.procstats import proc_stats
from streams.settings import Settings


def child_env(settings: Settings, home: Path) -> dict[str, str]:
    """The environment that gives a child process the same settings as ``settings``."""
    env = dict(os.environ)
    env.update(
        KAFKA_BOOTSTRAP_SERVERS=settings.kafka_bootstrap_servers,
        SPILLWAY_TOPIC_NAMESPACE=settings.topic_namespace,
        SPILLWAY_MAX_AGE_S=str(settings.max_age_s),
        SPILLWAY_RESTATEMENT_HORIZON_S=str(settings.restatement_horizon_s),
        SPILLWAY_HOME=str(home),
    )
    return env


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    peak_rss_mb: float = 0.0
    cpu_s: float = 0.0
    _closed: bool = field(default=False, repr=False)

    def sample(self) -> None:
        if self.proc.poll() is None:
            stats = proc_stats(self.proc.pid)
            self.peak_rss_mb = max(self.peak_rss_mb, stats.peak_rss_mb)
            self.cpu_s = stats.cpu_s

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout_s: float = 60.0) -> int:
        """SIGTERM (each child finishes its batch and commits), SIGKILL after ``timeout_s``."""
        if self.proc.poll() is None:
            self.sample()
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def start_child(name: str, args: list[str], env: dict[str, str], log: Path) -> Child:
    """Run ``spillway <args>`` from this interpreter's environment."""
    exe = str(Path(sys.executable).with_name("spillway"))
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(  # noqa: S603 - fixed argv
            [exe, *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return Child(name, proc, log)
