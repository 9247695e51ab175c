"""The conformance corpus (tests/collectors/corpus): one folder per firmware/model/version
with the replies as the device sends them and an ``expected.json`` (see corpus/README.md)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streams.collectors.asic_parse import COMMANDS

CORPUS = Path(__file__).parent / "corpus"


def reply_file(command: str) -> str:
    """Command -> file name: ``miner/stats`` -> ``miner_stats.json``, ``get.device.info`` ->
    ``get_device_info.json`` (the replay's naming, extended to Whatsminer v3's dots)."""
    name = command
    for ch in "/-.:":
        name = name.replace(ch, "_")
    return name + ".json"


@dataclass(frozen=True)
class Entry:
    name: str
    kind: str
    origin: str
    no_reply: tuple[str, ...]
    expected: dict[str, Any]
    reasons: dict[str, str]

    @property
    def folder(self) -> Path:
        return CORPUS / self.name

    def replies(self) -> dict[str, Any]:
        """The replies the miner gave (commands it did not answer are left out)."""
        return {
            c: json.loads((self.folder / reply_file(c)).read_text())
            for c in COMMANDS[self.kind]
            if c not in self.no_reply
        }


def entries() -> list[Entry]:
    out = []
    for f in sorted(CORPUS.glob("*/expected.json")):
        doc = json.loads(f.read_text())
        out.append(
            Entry(
                f.parent.name,
                doc["kind"],
                doc["origin"],
                tuple(doc["no_reply"]),
                doc["expected"],
                doc["reasons"],
            )
        )
    if not out:
        raise FileNotFoundError(f"no corpus entries (*/expected.json) under {CORPUS}")
    return out
