"""Site files: the shipped ones load; bad input is refused naming the file and the field."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from streams.decisions.fleet import fleet_roster
from streams.site_file import SiteFileError, load_site_file, parse_site
from tests.sim.helpers import REFERENCE, SMALL, small_raw

Raw = dict[str, Any]


def test_reference_site_has_the_design_scale() -> None:
    sf = load_site_file(REFERENCE)
    site = sf.site
    assert sum(m.count for m in site.asic_models) == 45_000
    assert sum(p.nodes for p in site.gpu_pools) == 29_000
    assert sum(p.nodes * p.gpus_per_node for p in site.gpu_pools) == 232_000
    assert site.interconnection_limit_mw == 420.0
    assert {m.role for m in site.meters} >= {"poi", "ai", "mining"}
    # 2026-07-01 10:00 CDT = 15:00Z: the 07-15 local block, 400 MW.
    noon = dt.datetime(2026, 7, 1, 15, tzinfo=dt.UTC).timestamp()
    assert site.contracted_mw(noon) == 400.0
    # 2026-07-01 16:00 CDT = 21:00Z: the 15-21 local block, 380 MW.
    assert site.contracted_mw(noon + 6 * 3600) == 380.0
    # Every miner id of the controller's roster is unique.
    ids = [i for m in fleet_roster(site).models for i in m.miner_ids]
    assert len(ids) == len(set(ids)) == 45_000


def test_small_site_loads() -> None:
    sf = load_site_file(SMALL)
    assert sf.site.site_id == "small"
    assert 200 <= sum(m.count for m in sf.site.asic_models) <= 1000


@pytest.mark.parametrize(
    ("day", "hours"),
    [
        (dt.date(2026, 3, 8), 23.0),  # spring forward in America/Chicago
        (dt.date(2026, 11, 1), 25.0),  # fall back
        (dt.date(2026, 7, 1), 24.0),
    ],
)
def test_contract_days_follow_dst(day: dt.date, hours: float) -> None:
    raw = small_raw()
    raw["contract"] = {
        "first_day": day,
        "last_day": day,
        "blocks": [
            {"from_hour": 0, "to_hour": 7, "mw": 1.0, "price_usd_per_mwh": 30.0},
            {"from_hour": 7, "to_hour": 24, "mw": 2.0, "price_usd_per_mwh": 50.0},
        ],
    }
    blocks = parse_site(raw, "x.toml").site.contract
    assert len(blocks) == 2
    assert blocks[0].end_s == blocks[1].start_s
    assert (blocks[-1].end_s - blocks[0].start_s) / 3600 == hours


def test_fixed_block_is_kept_in_utc() -> None:
    raw = small_raw()
    raw["contract"] = {
        "fixed": [
            {
                "start": dt.datetime(2026, 7, 1, 5, tzinfo=dt.UTC),
                "end": dt.datetime(2026, 7, 1, 6, tzinfo=dt.UTC),
                "mw": 1.5,
                "price_usd_per_mwh": 99.0,
            }
        ]
    }
    (block,) = parse_site(raw, "x.toml").site.contract
    assert block.start_s == 1_782_882_000.0  # 2026-07-01T05:00:00Z
    assert block.end_s - block.start_s == 3600
    assert block.mw == 1.5


def _set(path: str, value: Any) -> Callable[[Raw], None]:
    """Set a dotted path (``asic_models.1.j_per_th``) in the raw document."""

    def apply(raw: Raw) -> None:
        *parents, last = path.split(".")
        node: Any = raw
        for p in parents:
            node = node[int(p)] if p.isdigit() else node.setdefault(p, {})
        if last.isdigit():
            node[int(last)] = value
        else:
            node[last] = value

    return apply


def _delete(path: str) -> Callable[[Raw], None]:
    def apply(raw: Raw) -> None:
        *parents, last = path.split(".")
        node: Any = raw
        for p in parents:
            node = node[int(p)] if p.isdigit() else node[p]
        del node[int(last) if last.isdigit() else last]

    return apply


def _second_poi(raw: Raw) -> None:
    raw["meters"][1]["role"] = "poi"


def _duplicate_model(raw: Raw) -> None:
    raw["asic_models"][1]["model"] = raw["asic_models"][0]["model"]


def _overlapping_blocks(raw: Raw) -> None:
    raw["contract"]["blocks"] = [
        {"from_hour": 0, "to_hour": 12, "mw": 1.0, "price_usd_per_mwh": 30.0},
        {"from_hour": 10, "to_hour": 24, "mw": 1.0, "price_usd_per_mwh": 30.0},
    ]


BAD: list[tuple[str, Callable[[Raw], None], str]] = [
    (
        "zero efficiency",
        _set("asic_models.1.j_per_th", 0),
        "asic_models[1].j_per_th: expected a number > 0",
    ),
    (
        "negative hashrate",
        _set("asic_models.0.hashrate_ths", -5.0),
        "asic_models[0].hashrate_ths: expected a number > 0",
    ),
    (
        "text efficiency",
        _set("asic_models.0.j_per_th", "fast"),
        "asic_models[0].j_per_th: expected float, got str",
    ),
    (
        "bad firmware",
        _set("asic_models.0.firmware", "magic"),
        "asic_models[0].firmware: invalid enum value 'magic'",
    ),
    (
        "negative count",
        _set("asic_models.0.count", -1),
        "asic_models[0].count: expected a whole number >= 0",
    ),
    (
        "ramp zero",
        _set("asic_models.0.ramp_down_s", 0),
        "asic_models[0].ramp_down_s: expected a number > 0",
    ),
    (
        "dash in model",
        _set("asic_models.0.model", "S-21"),
        "asic_models[0].model: expected a non-empty name",
    ),
    ("duplicate model", _duplicate_model, "asic_models[1]: duplicate name"),
    ("missing site id", _delete("site_id"), "object missing required field site_id"),
    ("typo key", _set("interconection_limit_mw", 3.0), "interconection_limit_mw: unknown key"),
    ("typo in table", _set("asic_models.0.jpth", 3.0), "asic_models[0].jpth: unknown key"),
    ("typo in staleness", _set("max_staleness.asic", 60.0), "max_staleness.asic: unknown key"),
    (
        "zero limit",
        _set("interconnection_limit_mw", 0),
        "interconnection_limit_mw: expected a number > 0",
    ),
    ("overhead share", _set("overhead_fraction", 1.5), "overhead_fraction: expected 0 <= x < 1"),
    (
        "gpus per node",
        _set("gpu_pools.0.gpus_per_node", 0),
        "gpu_pools[0].gpus_per_node: expected 1..16",
    ),
    (
        "gpu limit",
        _set("gpu_pools.1.gpu_power_limit_w", -700),
        "gpu_pools[1].gpu_power_limit_w: expected a number > 0",
    ),
    ("meter role", _set("meters.0.role", "grid"), "meters[0].role: invalid enum value 'grid'"),
    ("no poi", _delete("meters.0"), 'exactly one meter with role = "poi"'),
    ("two poi", _second_poi, 'exactly one meter with role = "poi"'),
    ("bad timezone", _set("timezone", "Mars/Olympus"), "timezone: unknown time zone"),
    (
        "hour 25",
        _set("contract.blocks.0.to_hour", 25),
        "contract.blocks[0].to_hour: expected a whole hour",
    ),
    ("hour text", _set("contract.blocks.0.from_hour", "noon"), "contract.blocks[0].from_hour"),
    (
        "negative mw",
        _set("contract.blocks.0.mw", -1),
        "contract.blocks[0].mw: expected a number >= 0",
    ),
    ("overlap", _overlapping_blocks, "contract.blocks: hours 0-12 and 10-24 overlap"),
    ("no first day", _delete("contract.first_day"), "contract.first_day: expected a local date"),
    ("days reversed", _set("contract.last_day", "2025-01-01"), "contract.last_day"),
    ("unknown contract key", _set("contract.price", 3), "contract.price: unknown key"),
    (
        "above interconnection",
        _set("contract.blocks.0.mw", 50.0),
        "above the interconnection limit",
    ),
    ("job pool", _set("sim.jobs.0.pool", "nope"), "sim.jobs[0].pool: no GPU pool named 'nope'"),
    ("job too big", _set("sim.jobs.0.nodes", 1000), "sim.jobs[0].nodes: jobs use 1000 nodes"),
    ("job kind", _set("sim.jobs.0.kind", "gaming"), "sim.jobs[0].kind: invalid enum value"),
    ("late share", _set("sim.late_share", 2.0), "sim.late_share: expected a share 0..1"),
    (
        "rack size",
        _set("sim.miners_per_rack", 0),
        "sim.miners_per_rack: expected a whole number >= 1",
    ),
    ("sim typo", _set("sim.seeds", 3), "sim.seeds: unknown key"),
]


@pytest.mark.parametrize(("label", "mutate", "expected"), BAD, ids=[b[0] for b in BAD])
def test_bad_site_is_refused_naming_file_and_field(
    label: str, mutate: Callable[[Raw], None], expected: str
) -> None:
    raw = small_raw()
    mutate(raw)
    with pytest.raises(SiteFileError) as info:
        parse_site(raw, "infra/sites/x.toml")
    message = str(info.value)
    assert message.startswith("infra/sites/x.toml: ")
    assert expected in message


def test_unreadable_and_invalid_files(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(SiteFileError, match=r"nope\.toml: cannot read"):
        load_site_file(missing)
    broken = tmp_path / "broken.toml"
    broken.write_text("site_id = \n")
    with pytest.raises(SiteFileError, match=r"broken\.toml: not valid TOML"):
        load_site_file(broken)


def test_several_problems_are_reported_together() -> None:
    raw = small_raw()
    raw["asic_models"][0]["j_per_th"] = 0
    raw["gpu_pools"][0]["gpus_per_node"] = 99
    with pytest.raises(SiteFileError) as info:
        parse_site(raw, "x.toml")
    message = str(info.value)
    assert message.startswith("x.toml: 2 problems")
    assert "asic_models[0].j_per_th" in message
    assert "gpu_pools[0].gpus_per_node" in message
