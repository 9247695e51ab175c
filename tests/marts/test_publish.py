"""Publication: immutable Parquet partitions, views, gates, alerts, docs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest

from streams.marts.docs import published_docs, render_markdown
from streams.marts.frames import accept_frames, build_frames
from streams.marts.publish import VIEWS_FILE, load_manifest, publish, published_tables
from streams.marts.store import Batch, open_store, write_batch
from tests.marts.helpers import extras, gpu_frame, site_second

DAY = 1_767_225_600  # 2026-01-01 00:00 UTC


@dataclass
class FakeGate:
    ok: bool = True
    calls: list[tuple[str, int]] | None = None

    def __call__(self, mart: str, frame: pl.DataFrame) -> Any:
        if self.calls is not None:
            self.calls.append((mart, frame.height))
        ok = self.ok

        class Result:
            success = ok

            @staticmethod
            def report() -> str:
                return f"gate {mart}: {'PASS' if ok else 'FAIL'} ({frame.height} rows)"

        return Result()


def _write(con: Any, start: int, seconds: int, offset: int) -> None:
    items: list[tuple[str, Any]] = [("site.power.v1", site_second("s", start + i))
                                    for i in range(seconds)]
    items += [("telemetry.gpu.v1", gpu_frame("s", "n0", start + i, start + i + 0.5))
              for i in range(0, seconds, 30)]
    items += [(t, msgspec_decode(t, v)) for t, _, v in extras(start)]
    acc = accept_frames(items, {})
    write_batch(con, Batch(frames=build_frames(acc.items), offsets={("t", 0): offset},
                           marks=acc.marks, frames_seen=acc.frames, stale=acc.stale))


def msgspec_decode(topic: str, value: bytes) -> Any:
    import msgspec

    from schemas.registry import contract_for

    return msgspec.json.decode(value, type=contract_for(topic).type)


@pytest.fixture
def store(tmp_path: Path) -> Any:
    con = open_store(tmp_path / "sink.duckdb")
    yield con
    con.close()


def _views(marts: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(marts / VIEWS_FILE), read_only=True)


def test_publish_writes_partitions_views_and_docs(store: Any, tmp_path: Path) -> None:
    marts = tmp_path / "marts"
    _write(store, DAY, 1801, 1)  # two whole 15-minute intervals and one more second
    calls: list[tuple[str, int]] = []
    res = publish(store, marts, gate=FakeGate(calls=calls), now_s=DAY + 2000)
    assert res.generation == 1 and not res.blocked
    assert ("interval_energy", 2) in calls  # only the intervals that are over
    assert (marts / "parquet/site_power/date=2026-01-01/part-00-g000001.parquet").exists()
    assert (marts / "parquet/interval_energy/date=2026-01-01/part-g000001.parquet").exists()
    with _views(marts) as v:
        assert v.execute("SELECT count(*) FROM site_power").fetchone() == (1801,)
        got = v.execute("SELECT sum(total_mwh) FROM interval_energy").fetchall()[0][0]
        # Independent: 160 MW for 1800 s = 80 MWh.
        assert got == pytest.approx(160e6 * 1800 / 3.6e9, rel=1e-12)
        means = v.execute("SELECT min(power_mean_w * power_readings - "
                          "CAST(power_sum_w AS DOUBLE)) FROM telemetry_gpu_1m").fetchall()[0][0]
        assert means == pytest.approx(0.0, abs=1e-6)
        views = {r[0] for r in v.execute("SELECT view_name FROM duckdb_views() "
                                         "WHERE NOT internal").fetchall()}
    assert views == set(published_tables())
    assert (marts / "README.md").read_text() == render_markdown()


def test_every_published_column_is_documented(store: Any, tmp_path: Path) -> None:
    marts = tmp_path / "marts"
    _write(store, DAY, 1801, 1)
    publish(store, marts, gate=FakeGate(), now_s=DAY + 2000)
    docs = published_docs()
    readme = (marts / "README.md").read_text()
    with _views(marts) as v:
        for name in published_tables():
            cols = [r[0] for r in v.execute(f"DESCRIBE {name}").fetchall()]
            assert cols == list(docs[name].columns), name
            for col in cols:
                assert f"| `{col}` |" in readme, (name, col)
            comments = v.execute("SELECT column_name, comment FROM duckdb_columns() "
                                 "WHERE table_name = ?", [name]).fetchall()
            assert all(c for _, c in comments), name
        # Every Parquet file's columns are documented too (engines that skip the views).
        for path in (marts / "parquet").rglob("*.parquet"):
            table = path.relative_to(marts / "parquet").parts[0]
            cols = [r[0] for r in v.execute(
                "DESCRIBE SELECT * FROM read_parquet(?, hive_partitioning = false)",
                [str(path)]).fetchall()]
            assert set(cols) <= set(docs[table].columns), path


def test_empty_store_publishes_empty_typed_views(store: Any, tmp_path: Path) -> None:
    marts = tmp_path / "marts"
    publish(store, marts, gate=FakeGate(), now_s=DAY)
    with _views(marts) as v:
        for name in published_tables():
            assert v.execute(f"SELECT count(*) FROM {name}").fetchone() == (0,)
        assert v.execute("DESCRIBE interval_energy").fetchall()[1][:2] == \
            ("interval_start_s", "BIGINT")


def test_only_changed_partitions_get_new_files(store: Any, tmp_path: Path) -> None:
    marts = tmp_path / "marts"
    _write(store, DAY, 60, 1)
    _write(store, DAY + 7200, 60, 2)
    publish(store, marts, gate=FakeGate(), now_s=DAY + 8000)
    assert publish(store, marts, gate=FakeGate(), now_s=DAY + 8001).skipped
    _write(store, DAY + 7200 + 60, 60, 3)  # hour 02 changes, hour 00 does not
    res = publish(store, marts, gate=FakeGate(), now_s=DAY + 8100)
    files = load_manifest(marts).tables["site_power"]
    assert files["2026-01-01/00"].endswith("part-00-g000001.parquet")
    assert files["2026-01-01/02"].endswith("part-02-g000002.parquet")
    assert res.generation == 2
    with _views(marts) as v:
        assert v.execute("SELECT count(*), count(DISTINCT ts_s) FROM site_power").fetchone() \
            == (180, 180)


def test_old_generations_are_collected(store: Any, tmp_path: Path) -> None:
    marts = tmp_path / "marts"
    for g in range(3):
        _write(store, DAY + g * 10, 10, g + 1)
        publish(store, marts, gate=FakeGate(), keep_generations=2, now_s=DAY + 100 + g)
    parts = sorted(p.name for p in (marts / "parquet/site_power").rglob("*.parquet"))
    assert parts == ["part-00-g000002.parquet", "part-00-g000003.parquet"]
    assert len(list((marts / "_manifests").glob("gen-*.json"))) == 2
    with _views(marts) as v:
        assert v.execute("SELECT count(*) FROM site_power").fetchone() == (30,)


@pytest.mark.parametrize("gate_kind", ["fails", "raises"])
def test_failing_gate_blocks_the_partition_and_alerts(store: Any, tmp_path: Path,
                                                      gate_kind: str) -> None:
    marts = tmp_path / "marts"
    _write(store, DAY, 1801, 1)
    publish(store, marts, gate=FakeGate(), now_s=DAY + 2000)  # generation 1: passes
    _write(store, DAY + 1801, 900, 2)  # a third interval completes

    def broken(mart: str, frame: pl.DataFrame) -> Any:
        raise RuntimeError("expectation raised inside GX")

    gate = FakeGate(ok=False) if gate_kind == "fails" else broken
    sent: list[Any] = []
    res = publish(store, marts, gate=gate, alert=sent.append, now_s=DAY + 3000)
    # The day's hour 0 is not complete yet: no carbon to gate.
    assert res.blocked == ["interval_energy:2026-01-01"]
    assert [a.condition for a in sent] == ["data_quality"]
    assert sent[0].site_id == "s" and sent[0].state == "firing"
    report = Path(str(sent[0].context["report"]))
    assert report.exists() and ("FAIL" in report.read_text() or "BROKEN" in report.read_text())
    with _views(marts) as v:  # the previous (gated) version stays published
        assert v.execute("SELECT count(*) FROM interval_energy").fetchone() == (2,)
        assert v.execute("SELECT count(*) FROM site_power").fetchone() == (2701,)
    manifest = json.loads((marts / "_manifests/gen-000002.json").read_text())
    assert manifest["tables"]["interval_energy"]["2026-01-01"].endswith("g000001.parquet")


@pytest.mark.slow
def test_real_great_expectations_gate(store: Any, tmp_path: Path) -> None:
    """transforms.gates.run_gate (GX) passes clean intervals; an interval with a hole is
    published provisional (with why), the rest of its day as it is."""
    marts = tmp_path / "marts"
    _write(store, DAY, 1801, 1)
    res = publish(store, marts, now_s=DAY + 2000)
    assert not res.blocked and res.reports
    assert "PASS" in res.reports[0].read_text()
    # 15 minutes without data, then data again: the interval at 1800 has one second.
    _write(store, DAY + 2700, 1801, 2)
    sent: list[Any] = []
    res = publish(store, marts, alert=sent.append, now_s=DAY + 5000)
    assert res.blocked == [] and sent == []
    assert res.provisional == [
        f"interval_energy:s:{DAY + 1800}: poi_mwh is null; reconciled is false; "
        "poi_complete is false",
        # The hour holding the hole has no complete POI energy, so no emissions either.
        f"carbon_hourly:s:{DAY}: location_g is null; market_g is null; interval_energy "
        "provisional: poi_mwh is null; reconciled is false; poi_complete is false",
    ]
    assert "FAIL" in res.reports[-2].read_text()
    with _views(marts) as v:
        assert v.execute("SELECT count(*) FROM interval_energy").fetchone() == (5,)


def test_docs_command_prints_the_markdown(capsys: Any) -> None:
    from streams.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["sink", "docs"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == render_markdown().strip()


def test_crash_during_publication_leaves_the_last_one_intact(store: Any, tmp_path: Path,
                                                              monkeypatch: Any) -> None:
    from streams.marts import publish as pub

    marts = tmp_path / "marts"
    _write(store, DAY, 60, 1)
    publish(store, marts, gate=FakeGate(), now_s=DAY + 100)
    _write(store, DAY + 60, 60, 2)

    def crash(*args: Any, **kwargs: Any) -> Any:
        (marts / ".views-g000002-abcdef.duckdb").write_bytes(b"half a file")
        raise OSError("disk full while writing the views")

    monkeypatch.setattr(pub, "build_views", crash)
    with pytest.raises(OSError, match="disk full"):
        publish(store, marts, gate=FakeGate(), now_s=DAY + 200)
    with _views(marts) as v:  # readers still see generation 1, whole
        assert v.execute("SELECT count(*) FROM site_power").fetchone() == (60,)
    assert store.execute("SELECT count(*) FROM sink_dirty").fetchall()[0][0] > 0
    monkeypatch.undo()
    res = publish(store, marts, gate=FakeGate(), now_s=DAY + 300)
    with _views(marts) as v:
        assert v.execute("SELECT count(*) FROM site_power").fetchone() == (120,)
        assert v.execute("SELECT generation FROM marts_publication").fetchone() == \
            (res.generation,)
    assert not list(marts.rglob(".*.tmp")) and not list(marts.glob(".views-*"))


def test_carbon_is_published_when_its_intensity_arrives_later(store: Any,
                                                              tmp_path: Path) -> None:
    from schemas.grid import CarbonIntensity

    marts = tmp_path / "marts"
    power = [("site.power.v1", site_second("s", DAY + i)) for i in range(3601)]
    write_batch(store, Batch(frames=build_frames(power), offsets={("t", 0): 1}))
    publish(store, marts, gate=FakeGate(), now_s=DAY + 4000)
    with _views(marts) as v:
        assert v.execute("SELECT count(*) FROM interval_energy").fetchone() == (4,)
        assert v.execute("SELECT count(*) FROM carbon_hourly").fetchone() == (0,)
    ci = CarbonIntensity(region="ERCOT", kind="average", hour_start_s=DAY,
                         intensity_g_per_kwh=400.0, source="test")
    write_batch(store, Batch(frames=build_frames([("grid.carbon.v1", ci)]),
                             offsets={("t", 0): 2}))
    publish(store, marts, gate=FakeGate(), now_s=DAY + 4100)
    with _views(marts) as v:
        row = v.execute("SELECT total_mwh, location_g FROM carbon_hourly").fetchall()
    # Independent: 160 MW for one hour = 160 MWh; x 1000 kWh/MWh x 400 g/kWh.
    assert row == [(pytest.approx(160.0, rel=1e-12), pytest.approx(64_000_000.0, rel=1e-12))]
