"""Every real file in ``shared/data`` that a reader exists for, end to end: read, encode as the
replay publishes it, decode and check with the topic's contract. No real record may be
rejected: a real price is within the bounds in force on its own date
(``schemas.market_bounds``), whatever today's cap.

Files with no reader, and why:

- ``ercot_market/events/kylejones_4CP_dates.csv``: 4CP interval dates; no topic carries them
  (the 4CP schedule is site configuration), and its licence allows reading only.
- ``ercot_public_api_format_samples/np6-345-cd_actual_load_by_weather_zone_two_hours.csv``:
  system load by weather zone; no topic contract for system load yet.
- ``gpu/h100_info.json``: the capture's device description, not a series.
- ``gpu_power_traces/dcgm_exporter_tesla_t4_scrape.prom``: one Prometheus scrape; the
  replay reads NVML and nvidia-smi CSV traces, not exposition text.
- ``ercot_market/rt_spp/wattgap_PROVENANCE.md``, ``wattgap_LICENSE``, ``SOURCES.md``: text.

Ancillary-service clearing prices have no topic yet: they are read by ``read_as_mcpc`` and
checked against the dated ``AS_MCPC`` bounds. The Bitcoin network files feed the marts only
(no topic): read and checked for a full, null-free hashprice input.

February 2021 (Winter Storm Uri) prices are not in ``shared/data`` (``test_which_history_is
_here`` fails if that changes without a case here); the real scarcity price above the cap in
force is 2023-08-17 LZ_WEST $5,241.48 under the $5,000 HCAP (September 2023's $5,339.52 is
named in the wattgap provenance but that month was not kept), and the unit table in
``tests/transforms/test_market_bounds.py`` covers the February 2021 and September 2023 values.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import msgspec
import pytest

from schemas.market_bounds import price_problem
from schemas.registry import CONTRACTS
from schemas.validation import Limits, Rejection
from streams.collectors.asic_parse import parse, to_frame
from streams.collectors.grid_feeds import read_as_mcpc
from streams.replay.asic_scrapes import read_scrape_dir
from streams.replay.files import file_sources
from transforms.sources import read_braiins_insights, read_coinmetrics_btc_daily

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
if not (DATA / "SOURCES.md").is_file():
    pytest.fail(f"the real data is missing: expected {DATA.resolve()} (shared/ beside the "
                "checkout, as CI places it)", pytrace=False)

REPLAYED = [
    "ercot_rtm_spp_15min/ERCOT_RTM_SPP_hubs_loadzones_15min_2025-07-01_to_2025-07-03.csv",
    "ercot_dam_hb_hubavg_hourly/ERCOT_DAM_HB_HUBAVG_2022.csv",
    "ercot_dam_hb_hubavg_hourly/ERCOT_DAM_HB_HUBAVG_2023.csv",
    "ercot_public_api_format_samples/np6-905-cd_rt_spp_one_interval.csv",
    "ercot_public_api_format_samples/np4-190-cd_dam_spp_two_hours.csv",
    "ercot_market/rt_spp/wattgap_rtm_spp_lz_2023-07_08.csv",
    "ercot_market/dam_spp/wattgap_dam_spp_lz_2023-07_08.csv",
    "ercot_market/dam_spp/hb_north_2023_07.csv",
    "ercot_market/dam_spp/hb_north_2023_03_12_raw.csv",
    "ercot_market/dam_spp/hb_north_2023_11_05_raw.csv",
    "ercot_market/long_series/interval_analysis_20240601.csv",
    "ercot_market/as_mcpc/mpcbess_All_2025_with_AS_2025-07-01_hourly.csv",
    "ercot_market/sced_lmp/np6788_lmp_20260625_004018_hubs_lz_slice.csv",
    "ercot_carbon_intensity_hourly_emaps/US-TEX-ERCO_2023_hourly.csv",
    "ercot_hourly_fuelmix_carbon_2022/ERCO_NG_avgCI_2022.csv",
    "ercot_fuel_mix_15min/IntGenByFuel202107.tsv",
    "ercot_fuel_mix_15min/IntGenByFuel202108.tsv",
    "ercot_fuel_mix_15min/IntGenByFuel202111.tsv",
    "gpu/h100_nvml_trace.csv",
    "gpu_power_traces/h100_8gpu_gpt_training_nvidia_smi_100ms_part1.csv",
    "asic_miner_api/antminer_s19pro_stock_bmminer",
    "asic_miner_api/avalon_cgminer",
    "asic_miner_api/luxos_antminer_s19kpro",
    "asic_miner_api/whatsminer_btminer_api_v1",
]
AS_MCPC = [
    "ercot_market/as_mcpc/as_mcpc_2023_07.csv",
    "ercot_market/as_mcpc/as_2023_03_12_raw.csv",
    "ercot_market/as_mcpc/as_2023_11_05_raw.csv",
    "ercot_market/as_mcpc/mpcbess_All_2025_with_AS_2025-07-01_hourly.csv",
    "ercot_public_api_format_samples/np4-188-cd_dam_as_mcpc_two_hours.csv",
    "ercot_public_api_format_samples/np6-331-cd_rt_as_mcpc_one_interval.csv",
]
NO_READER = {
    "ercot_market/events/kylejones_4CP_dates.csv",
    "ercot_public_api_format_samples/np6-345-cd_actual_load_by_weather_zone_two_hours.csv",
    "gpu/h100_info.json",
    "gpu_power_traces/dcgm_exporter_tesla_t4_scrape.prom",
}
NETWORK = [
    "bitcoin_network/coinmetrics_btc_daily_2020-02-23_to_2020-03-29.csv",
    "bitcoin_network/braiins_insights_hashrate-stats.json",
    "bitcoin_network/braiins_insights_price-stats.json",
]

# History replays run with a clock past every recording and no age limit.
LIMITS = Limits(now_s=2.0e9, max_age_s=1e10, max_clock_skew_s=0.0)


def replay_and_check(rel: str) -> tuple[Counter[str], list[str]]:
    """Records per topic, and every rejection as 'topic: reason (value)'."""
    counts: Counter[str] = Counter()
    rejected: list[str] = []
    # The nvidia-smi trace has no GPU index column: 8 rows per sample (SOURCES.md).
    gpus = 8 if "nvidia_smi" in rel else None
    for records in file_sources([DATA / rel], site_id="real", trace_gpus=gpus).values():
        for rec in records:
            counts[rec.topic] += 1
            got = CONTRACTS[rec.topic].decode(rec.value, LIMITS)
            if isinstance(got, Rejection):
                rejected.append(f"{rec.topic}: {got.reason} ({rec.value[:200]!r})")
    return counts, rejected


@pytest.mark.parametrize("rel", REPLAYED)
def test_real_file_replays_with_no_rejection(rel: str) -> None:
    counts, rejected = replay_and_check(rel)
    assert sum(counts.values()) > 0, f"{rel}: no records"
    assert not rejected, f"{rel}: {len(rejected)} real records rejected, first: {rejected[:3]}"


@pytest.mark.parametrize("rel", AS_MCPC)
def test_real_as_clearing_prices_are_within_their_dated_bounds(rel: str) -> None:
    prices = read_as_mcpc(DATA / rel)
    assert prices
    bad = [(p.service, p.interval_start_s, p.mcpc_usd_per_mw_h) for p in prices
           if price_problem(float(p.mcpc_usd_per_mw_h), p.interval_start_s, "AS_MCPC")]
    assert not bad, f"{rel}: {bad[:3]}"


def test_bitcoin_network_files_read_in_full() -> None:
    notes: list[str] = []
    daily = read_coinmetrics_btc_daily(DATA / NETWORK[0], notes)
    assert daily.height == 36 and notes == []
    needed = daily.select("hashrate_ths", "issuance_btc", "price_usd_per_btc")
    assert needed.null_count().sum_horizontal()[0] == 0
    snapshot = read_braiins_insights(DATA / NETWORK[1], DATA / NETWORK[2])
    assert snapshot.height == 1 and snapshot.null_count().sum_horizontal()[0] == 0


def test_a_braiins_scrape_has_no_time_of_its_own_but_its_frame_is_accepted() -> None:
    # Braiins OS REST replies carry no STATUS.When: replay places them in a scenario's time.
    folder = DATA / "asic_miner_api/braiins_os_v25_07_rest"
    replies = read_scrape_dir(folder, "braiins")
    frame = to_frame([parse("braiins", folder.name, replies)], "real", folder.name,
                     LIMITS.now_s - 60.0, 0)
    got = CONTRACTS["telemetry.asic.v1"].decode(msgspec.json.encode(frame), LIMITS)
    assert not isinstance(got, Rejection), got


def test_every_data_file_is_replayed_checked_or_listed() -> None:
    covered = set(REPLAYED) | set(AS_MCPC) | NO_READER | set(NETWORK)
    covered.add("asic_miner_api/braiins_os_v25_07_rest")
    skip_names = {"SOURCES.md", "wattgap_PROVENANCE.md", "wattgap_LICENSE"}
    unlisted = []
    for path in sorted(DATA.rglob("*")):
        rel = path.relative_to(DATA).as_posix()
        if path.is_dir() or path.name in skip_names:
            continue
        if rel.startswith("asic_miner_api/"):
            rel = "/".join(rel.split("/")[:2])  # a scrape folder is one recording
        if rel not in covered:
            unlisted.append(rel)
    assert not unlisted, f"real files with no test and no reason given: {unlisted}"


def test_a_real_scarcity_price_above_the_cap_in_force_is_published() -> None:
    # 2023-08-17 19:30 CDT LZ_WEST 5,241.48 $/MWh: above the $5,000 HCAP (scarcity adders
    # plus congestion); the old fixed $5,000 check dead-lettered it.
    rel = "ercot_market/rt_spp/wattgap_rtm_spp_lz_2023-07_08.csv"
    found = []
    for records in file_sources([DATA / rel], site_id="real", settlement_points=["LZ_WEST"]
                                ).values():
        for rec in records:
            msg = msgspec.json.decode(rec.value)
            if msg["price_usd_per_mwh"] > 5000.0:
                found.append(msg)
                assert not isinstance(CONTRACTS[rec.topic].decode(rec.value, LIMITS), Rejection)
    assert any(m["price_usd_per_mwh"] == 5241.48 for m in found), found


def test_which_history_is_here() -> None:
    """Fails if February 2021 prices arrive in shared/data: then name them in a case above."""
    price_files = [DATA / r for r in REPLAYED if r.startswith("ercot")]
    with_uri = [str(p) for p in price_files
                if p.is_file() and re.search(r"2021-02-|02/\d\d/2021", p.read_text())]
    assert with_uri == [], f"February 2021 prices now present: add them to the cases: {with_uri}"
