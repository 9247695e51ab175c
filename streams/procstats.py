"""CPU seconds and peak RSS of a process, read from /proc (Linux)."""

from __future__ import annotations

import os
from dataclasses import dataclass

_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcStats:
    cpu_s: float
    peak_rss_mb: float
    rss_mb: float


def proc_stats(pid: int) -> ProcStats:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    # utime, stime, cutime, cstime are fields 14-17 (1-based) of stat; [11:15] after the name.
    cpu = sum(int(x) for x in fields[11:15]) / _TICKS
    peak = rss = 0.0
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                peak = int(line.split()[1]) / 1024
            elif line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024
    return ProcStats(cpu, peak, rss)
