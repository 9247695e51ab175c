"""Structured logs for the stdlib ``logging`` module: one JSON object per line.

``configure_logging(json=True)`` installs the handler on the root logger; fields passed
with ``extra={...}`` (topic, partition, offset, site_id ...) become keys of the object, so
a log shipper can index them without parsing the message.
"""

from __future__ import annotations

import json as jsonlib
import logging
import sys
from datetime import UTC, datetime
from typing import IO, Any

# Attributes every LogRecord has; anything else on a record came from ``extra``.
_STANDARD = frozenset(
    vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None)).keys()
) | {"message", "asctime", "taskName"}

_HANDLER_NAME = "spillway"


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "msg", ...extra, "exc"?}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        # default=str: an extra value that JSON cannot hold is logged as its text.
        return jsonlib.dumps(out, default=str, ensure_ascii=False)


def configure_logging(
    json: bool = True, level: int | str = logging.INFO, stream: IO[str] | None = None
) -> logging.Handler:
    """Log to ``stream`` (stderr by default) as JSON lines, or as plain text when
    ``json=False``. Idempotent: a second call replaces the handler the first installed."""
    root = logging.getLogger()
    for h in list(root.handlers):
        if h.get_name() == _HANDLER_NAME:
            root.removeHandler(h)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name(_HANDLER_NAME)
    if json:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level)
    return handler
