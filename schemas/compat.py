"""Compatibility of a contract change for existing consumers, judged on JSON Schemas.

Breaking: removing a field, changing its type, making an optional field required, adding a
required field (old messages lack it), or removing a struct. Adding an optional field with a
default is fine. Pure: two schema dicts in, a list of problems out.
"""

from __future__ import annotations

import json
from typing import Any

_IGNORED = {"description", "default", "title", "examples"}


def _shape(prop: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in prop.items() if k not in _IGNORED}, sort_keys=True)


def breaking_changes(topic: str, old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    old_defs: dict[str, Any] = old.get("$defs", {})
    new_defs: dict[str, Any] = new.get("$defs", {})
    for name, old_def in old_defs.items():
        where = f"{topic}: {name}"
        new_def = new_defs.get(name)
        if new_def is None:
            problems.append(f"{where} was removed")
            continue
        old_props = old_def.get("properties", {})
        new_props = new_def.get("properties", {})
        if "enum" in old_def:
            gone = set(old_def["enum"]) - set(new_def.get("enum", []))
            if gone:
                problems.append(f"{where}: enum values removed: {sorted(gone)}")
        for field, prop in old_props.items():
            if field not in new_props:
                problems.append(f"{where}.{field} was removed")
            elif _shape(prop) != _shape(new_props[field]):
                problems.append(
                    f"{where}.{field} changed type: {_shape(prop)} -> {_shape(new_props[field])}"
                )
        old_required = set(old_def.get("required", []))
        for field in set(new_def.get("required", [])) - old_required:
            problems.append(f"{where}.{field} is newly required; old messages lack it")
    return problems
