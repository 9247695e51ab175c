"""The sink's table definitions are derived from the msgspec contracts: the derivation
reproduces the hand-written definitions they replaced exactly (frozen copy in
``test_tables_frozen.json``), and a contract that gains a field either gains a column or
fails here, naming the field, until the mart declares it: never silently dropped.

A deliberate change of a definition: check the diff, then regenerate the frozen copy with
``.venv/bin/python -m tests.marts.test_tables_contracts``.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import types
from pathlib import Path
from typing import Any, Literal

import msgspec
import pytest

from schemas.events import SitePower
from streams.marts import tables as T
from streams.marts.docs import published_docs, render_markdown

FROZEN = Path(__file__).with_name("test_tables_frozen.json")


def _column(c: T.Column) -> dict[str, str]:
    return {"name": c.name, "sql": c.sql, "doc": c.doc}


def definitions() -> dict[str, Any]:
    """Everything the store and publication take from ``tables``, as plain data."""
    return {
        "tables": [
            {
                "name": t.name,
                "topic": t.topic,
                "doc": t.doc,
                "columns": [_column(c) for c in t.columns],
                "key": list(t.key),
                "time_col": t.time_col,
                "merge": t.merge,
                "derived": [_column(c) for c in t.derived],
                "ddl": t.ddl(),
                "publish_select": T.publish_select(t),
            }
            for t in (*T.TABLES, T.REVISIONS)
        ],
        "bookkeeping_ddl": list(T.BOOKKEEPING_DDL),
    }


def test_definitions_match_the_frozen_copy() -> None:
    frozen = json.loads(FROZEN.read_text())
    now = definitions()
    assert [t["name"] for t in now["tables"]] == [t["name"] for t in frozen["tables"]]
    for got, want in zip(now["tables"], frozen["tables"], strict=True):
        assert got == want, got["name"]
    assert now == frozen


def _extended(contract: type[msgspec.Struct], field: str) -> type[msgspec.Struct]:
    """``contract`` with one more optional float field, as a producer might add it."""

    def body(ns: dict[str, Any]) -> None:
        ns["__annotations__"] = {field: "float | None"}
        ns[field] = None

    return types.new_class(f"{contract.__name__}Plus", (contract,), {"kw_only": True}, body)


@pytest.mark.parametrize("table", sorted(T.CONTRACTS))
def test_a_new_contract_field_is_named_until_declared(table: str) -> None:
    spec = T.CONTRACTS[table]
    grown = dataclasses.replace(spec, contract=_extended(spec.contract, "new_reading_w"))
    assert grown.undeclared() == ["new_reading_w"]
    assert grown.columns() == spec.columns()  # the store is not changed behind anyone's back
    left_out = dataclasses.replace(
        grown, not_columns={**spec.not_columns, "new_reading_w": "not needed in the mart"}
    )
    assert left_out.undeclared() == []


@pytest.mark.parametrize("table", sorted(T.CONTRACTS))
def test_a_documented_new_field_becomes_a_column(table: str) -> None:
    spec = T.CONTRACTS[table]
    grown = dataclasses.replace(
        spec,
        contract=_extended(spec.contract, "new_reading_w"),
        docs={**spec.docs, "new_reading_w": "a new reading, W"},
    )
    before, after = spec.columns(), grown.columns()
    assert after[: len(before)] == before
    assert after[len(before) :] == (T.Column("new_reading_w", "DOUBLE", "a new reading, W"),)


def test_a_column_whose_field_the_contract_lacks_fails() -> None:
    spec = T.CONTRACTS["site_power"]
    stale = dataclasses.replace(spec, docs={**spec.docs, "gone_w": "a field since removed"})
    with pytest.raises(T.ContractDrift, match="gone_w"):
        stale.columns()
    both = dataclasses.replace(spec, not_columns={**spec.not_columns, "ai_w": "twice"})
    with pytest.raises(T.ContractDrift, match="ai_w"):
        both.columns()


@pytest.mark.parametrize("table", sorted(T.CONTRACTS))
def test_every_contract_field_is_a_column_or_left_out_with_a_reason(table: str) -> None:
    """The guard: a field added to a contract fails here until the mart stores it (a new
    column, which existing stores need added) or lists it in ``not_columns`` with why."""
    spec = T.CONTRACTS[table]
    assert spec.undeclared() == [], (
        f"{spec.contract.__name__} gained fields the {table} mart does not know: declare them"
        " in streams/marts/tables.py (docs: a column; not_columns: left out, with the reason)"
    )
    fields = [f.name for f in msgspec.structs.fields(spec.contract) if f.name != "v"]
    stored = [c.name for c in spec.columns()]
    assert sorted([*stored, *(f for f in spec.not_columns if f in fields)]) == sorted(fields)
    assert all(why.strip() for why in spec.not_columns.values())
    # The table really is built from the contract: its columns hold them as one run, in order.
    names = T.BY_NAME[table].names
    start = names.index(stored[0])
    assert names[start : start + len(stored)] == stored


def test_contract_columns_take_the_contract_types() -> None:
    cols = {c.name: c.sql for c in T.CONTRACTS["site_power"].columns()}
    hints = {f.name: f.type for f in msgspec.structs.fields(SitePower)}
    assert hints["ts_s"] is int and cols["ts_s"] == "BIGINT"
    assert cols["poi_meter_w"] == "DOUBLE"  # float | None: every column is nullable
    assert cols["flags"] == "VARCHAR[]"
    # A mart-specific type wins over the contract's, where declared (money as decimal).
    assert T.BY_NAME["grid_prices"].schema()["price_usd_per_mwh"] == T._POLARS["DECIMAL(18,6)"]


class _Nested(msgspec.Struct):
    x: int


@pytest.mark.parametrize(
    ("annotation", "sql"),
    [
        (str, "VARCHAR"),
        (int, "BIGINT"),
        (float, "DOUBLE"),
        (bool, "BOOLEAN"),
        (float | None, "DOUBLE"),
        (Literal["a", "b"], "VARCHAR"),
        (Literal[1, 2, 3], "BIGINT"),
        (list[str], "VARCHAR[]"),
        (list[Literal["economic", "grid"]], "VARCHAR[]"),
        (list[int | None], "BIGINT[]"),
        (list[float | None] | None, "DOUBLE[]"),
    ],
)
def test_column_type_of_contract_types(annotation: Any, sql: str) -> None:
    assert T.column_type(msgspec.inspect.type_info(annotation)) == sql


@pytest.mark.parametrize(
    "annotation",
    [dict[str, float], _Nested, int | str, Literal["a", 1], bytes],
)
def test_types_without_a_column_type_fail(annotation: Any) -> None:
    with pytest.raises(T.ContractDrift, match="no column type"):
        T.column_type(msgspec.inspect.type_info(annotation))


def test_docs_name_the_contract_and_what_it_leaves_out() -> None:
    docs = published_docs()
    assert "`SitePower` (`schemas.events`)" in docs["site_power"].contract
    for field, why in T.CONTRACTS["site_power"].not_columns.items():
        assert f"`{field}` ({why})" in docs["site_power"].contract
    assert docs["mart_revisions"].contract == ""
    text = render_markdown()
    assert all(d.contract in text for d in docs.values())


if __name__ == "__main__":
    FROZEN.write_text(json.dumps(definitions(), indent=1, ensure_ascii=False) + "\n")
    sys.stdout.write(f"wrote {FROZEN}\n")
