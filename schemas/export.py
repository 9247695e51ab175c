"""Generate JSON Schema files (one per topic) from the msgspec contracts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec

from schemas.registry import message_types

JSON_DIR = Path(__file__).with_name("json")


def topic_schema(topic: str, kind: type[Any]) -> dict[str, Any]:
    (ref,), components = msgspec.json.schema_components([kind], ref_template="#/$defs/{name}")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"spillway/{topic}.json",
        "title": topic,
        "description": (kind.__doc__ or "").strip(),
        **ref,
        "$defs": components,
    }


def all_schemas() -> dict[str, dict[str, Any]]:
    return {topic: topic_schema(topic, kind) for topic, kind in message_types().items()}


def write_schemas(directory: Path = JSON_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for topic, schema in all_schemas().items():
        path = directory / f"{topic}.json"
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written
