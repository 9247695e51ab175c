"""Miner replies -> readings. Expected values are read from the recorded JSON files in the
test and converted with the unit rules of each firmware (GH/s or MH/s -> TH/s)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from streams.collectors.asic_parse import (
    COMMANDS,
    MinerReading,
    ParseError,
    avalon_fields,
    check_status,
    decode_reply,
    parse,
    to_frame,
)
from streams.replay.asic_scrapes import command_file
from transforms.sources import SHARED_DATA

ASIC = SHARED_DATA / "asic_miner_api"


def replies(folder: str, kind: str) -> dict[str, Any]:
    return {c: json.loads((ASIC / folder / command_file(c)).read_text()) for c in COMMANDS[kind]}


def j(folder: str, name: str) -> Any:
    return json.loads((ASIC / folder / f"{name}.json").read_text())


S19 = "antminer_s19pro_stock_bmminer"
AVA = "avalon_cgminer"
LUX = "luxos_antminer_s19kpro"
WM = "whatsminer_btminer_api_v1"
BOS = "braiins_os_v25_07_rest"


def expected() -> list[tuple[str, str, MinerReading]]:
    s19 = j(S19, "stats")["STATS"][1]
    wm = j(WM, "summary")["SUMMARY"][0]
    bos = j(BOS, "miner_stats")
    return [
        (
            S19,
            "antminer",
            MinerReading(
                "m",
                "Antminer S19 Pro",
                j(S19, "summary")["SUMMARY"][0]["GHS 5s"] / 1000,
                None,
                # hottest chip among temp_chipN "a-b-c-d" strings; slowest of 4 fans
                78.0,
                min(s19["fan1"], s19["fan2"], s19["fan3"], s19["fan4"]),
                "hashing",
            ),
        ),
        (
            AVA,
            "avalon",
            MinerReading(
                # idle Avalon Q: 0 MH/s, TMax 0 -> board outlet temp HBOTemp[27], fans 0, asleep;
                # MPO[800] is its power limit as pyasic reads it
                "m",
                "Avalon Q",
                0.0,
                None,
                27.0,
                0,
                "sleeping",
                800.0,
            ),
        ),
        (
            LUX,
            "luxos",
            MinerReading(
                "m",
                "Antminer S19k Pro",
                j(LUX, "summary")["SUMMARY"][0]["GHS 5s"] / 1000,
                float(j(LUX, "power")["POWER"][0]["Watts"]),
                47.0,
                1920,
                "hashing",
            ),
        ),
        (
            WM,
            "whatsminer",
            MinerReading(
                "m",
                "Whatsminer",
                wm["MHS 5s"] / 1e6,
                float(wm["Power"]),
                wm["Chip Temp Max"],
                min(wm["Fan Speed In"], wm["Fan Speed Out"]),
                "hashing",
                float(wm["Power Limit"]),
            ),
        ),
        (
            BOS,
            "braiins",
            MinerReading(
                "m",
                "Antminer S19 XP",
                bos["miner_stats"]["real_hashrate"]["last_5s"]["gigahash_per_second"] / 1000,
                float(bos["power_stats"]["approximated_consumption"]["watt"]),
                70.5,
                5874,
                "hashing",
                float(j(BOS, "configuration_miner")["tuner"]["power_target"]["watt"]),
            ),
        ),
    ]


@pytest.mark.parametrize(("folder", "kind", "want"), expected(), ids=lambda x: str(x)[:12])
def test_recorded_scrapes(folder: str, kind: str, want: MinerReading) -> None:
    got = parse(kind, "m", replies(folder, kind))
    assert got.hashrate_ths == pytest.approx(want.hashrate_ths)
    assert got == MinerReading(
        got.miner_id,
        want.model,
        got.hashrate_ths,
        want.power_w,
        want.temp_c,
        want.fan_rpm,
        want.state,
        want.power_limit_w,
        missing=got.missing,  # reasons are checked in test_conformance.py
    )


def test_whatsminer_switched_off_is_sleeping() -> None:
    r = replies(WM, "whatsminer")
    r["status"] = {"STATUS": "S", "Msg": {"btmineroff": "true"}}
    assert parse("whatsminer", "m", r).state == "sleeping"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{"a": 1}\x00', {"a": 1}),
        (b'{"a": 1}', {"a": 1}),
        (b'{"a": 1}\r\n\x00', {"a": 1}),
        (b'{"a": 1,}\x00', {"a": 1}),  # a trailing comma some firmwares emit
        (b'{"a": "x\x01y"}', {"a": "x y"}),  # raw control characters
    ],
)
def test_decode_reply(raw: bytes, expected: dict[str, Any]) -> None:
    assert decode_reply(raw) == expected


@pytest.mark.parametrize(
    ("raw", "match"),
    [(b"", "empty"), (b"\x00", "empty"), (b"[1, 2]", "not an object"), (b'{"a": ', "not JSON")],
)
def test_decode_bad_replies(raw: bytes, match: str) -> None:
    with pytest.raises(ParseError, match=match):
        decode_reply(raw)


@pytest.mark.parametrize(
    ("body", "fails"),
    [
        ({"STATUS": [{"STATUS": "E", "Code": 14, "Msg": "Invalid command"}]}, True),
        ({"STATUS": [{"STATUS": "S"}]}, False),
        ({"STATUS": "E", "Code": 23, "Msg": "invalid JSON"}, True),  # Whatsminer's flat form
        ({"STATUS": "S", "Msg": {}}, False),
        ({}, False),
    ],
)
def test_error_status(body: dict[str, Any], fails: bool) -> None:
    if fails:
        with pytest.raises(ParseError, match="error"):
            check_status("summary", body)
    else:
        check_status("summary", body)


@pytest.mark.parametrize(
    ("kind", "broken", "match"),
    [
        ("antminer", {"stats": {"STATUS": [{"STATUS": "S"}]}}, "STATS"),
        ("antminer", {"stats": {"STATUS": [{"STATUS": "E", "Msg": "x"}]}}, "error"),
        ("braiins", {"miner/stats": {}}, "real_hashrate"),
        ("fpga", {}, "unknown miner kind"),
    ],
)
def test_bad_shapes_raise_parse_error(kind: str, broken: dict[str, Any], match: str) -> None:
    base = (
        replies(S19, "antminer")
        if kind == "antminer"
        else (replies(BOS, "braiins") if kind == "braiins" else {})
    )
    with pytest.raises(ParseError, match=match):
        parse(kind, "m", base | broken)


def test_missing_required_reply() -> None:
    with pytest.raises(ParseError, match="no reply to 'stats'"):
        parse("luxos", "m", {k: v for k, v in replies(LUX, "luxos").items() if k != "stats"})


def test_missing_optional_reply_leaves_its_fields_none_with_the_reason() -> None:
    got = parse("luxos", "m", {k: v for k, v in replies(LUX, "luxos").items() if k != "power"})
    assert got.power_w is None and got.reason("power_w") == "no usable reply to 'power'"
    assert got.state == "hashing"


def test_no_summary_but_stats_say_hashing() -> None:
    r = replies(S19, "antminer")
    stats = r["stats"]["STATS"][1]
    without = parse("antminer", "m", {"stats": r["stats"]})
    errored = parse("antminer", "m", r | {"summary": {"STATUS": [{"STATUS": "E", "Msg": "x"}]}})
    for got in (without, errored):
        assert got.state == "hashing"
        assert got.hashrate_ths == pytest.approx(stats["GHS 5s"] / 1000)


@pytest.mark.parametrize(
    ("summary", "why"),
    [
        ({"Power": -1, "MHS 5s": 1.0e8}, "no Power or Power_RT"),  # -1: not available
        ({"MHS 5s": 1.0e8}, "no Power or Power_RT"),
    ],
)
def test_whatsminer_unreported_power_is_none_with_reason(summary: dict[str, Any], why: str) -> None:
    got = parse("whatsminer", "m", {"summary": {"SUMMARY": [summary]}})
    assert got.power_w is None and why in (got.reason("power_w") or "")


def test_zero_hashrate_without_a_sleep_flag_is_unknown_with_reason() -> None:
    got = parse("whatsminer", "m", {"summary": {"SUMMARY": [{"MHS 5s": 0}]}})
    assert got.hashrate_ths == 0.0 and got.state == "unknown"
    assert "no sleep" in (got.reason("state") or "")


def test_unread_hashrate_is_none_not_zero_and_the_frame_says_why() -> None:
    got = parse("whatsminer", "m", {"summary": {"SUMMARY": [{"Power": 3000}]}})
    assert got.hashrate_ths is None and got.state == "unknown"
    frame = to_frame([got], "s", "r", 1.0, 1)
    assert frame.hashrate_ths == [0.0] and frame.state == ["unknown"]
    assert frame.error is not None and "MHS 5s" in (frame.error[0] or "")


def test_avalon_packed_fields() -> None:
    got = avalon_fields(
        "Ver[Q-1] TMax[0] Fan1[1200] PS[0 1221 4 0 0 2245 146] "
        "SYSTEMSTATU[Work: In Idle, Hash Board: 1]"
    )
    assert got["Fan1"] == "1200" and got["PS"] == "0 1221 4 0 0 2245 146"
    assert got["SYSTEMSTATU"] == "Work: In Idle, Hash Board: 1"


def test_frame_keeps_error_reasons_and_drops_empty_columns() -> None:
    ok = MinerReading("a", "S19", 100.0, None, 60.0, 5000, "hashing")
    bad = MinerReading("b", "", 0.0, None, None, None, "offline", None, "timeout")
    f = to_frame([ok, bad], "s", "rack-1", 5.0, 3)
    assert f.state == ["hashing", "offline"]
    assert f.error == [None, "timeout"]
    assert f.power_limit_w is None
    assert to_frame([ok], "s", "r", 5.0, 3).error is None
