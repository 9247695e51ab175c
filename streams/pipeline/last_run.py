"""What ``spillway run`` made, found again by the commands a user runs next.

``spillway run`` keeps its topics in a namespace and its marts in a folder of its own, so a
run never mixes with a production pipeline on the same broker. It records both in
``<home>/last-run.json``; ``sql``, ``report``, ``doctor``, ``watch`` and ``dashboard`` read
that run when the user named no namespace and the home has no published marts of its own,
and say so.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from streams.marts.publish import VIEWS_FILE
from streams.settings import Settings

FILE = "last-run.json"


def record(base: Settings, run: Settings) -> Path:
    path = base.home / FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"namespace": run.topic_namespace, "home": str(run.home), "max_age_s": run.max_age_s}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    tmp.replace(path)
    return path


def reading_settings(settings: Settings, *, quiet: bool = False) -> Settings:
    """``settings``, or those of the last ``spillway run`` where the user chose nothing."""
    chosen = "SPILLWAY_TOPIC_NAMESPACE" in os.environ or settings.topic_namespace
    if chosen or (settings.marts_dir / VIEWS_FILE).exists():
        return settings
    try:
        doc = json.loads((settings.home / FILE).read_text())
        run = settings.model_copy(
            update={
                "topic_namespace": str(doc["namespace"]),
                "home": Path(doc["home"]),
                "max_age_s": float(doc["max_age_s"]),
            }
        )
    except (OSError, ValueError, KeyError):
        return settings
    if not quiet:
        print(
            f"spillway: reading the last `spillway run` (topics {run.topic_namespace}.*, marts "
            f"{run.marts_dir}); set SPILLWAY_TOPIC_NAMESPACE or SPILLWAY_HOME to choose",
            file=sys.stderr,
        )
    return run
