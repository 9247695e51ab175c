"""Settlement and carbon for real days, checked against an independent plain-Python ledger.

The reference side uses only ``csv``, ``zoneinfo`` and ``decimal``: its own parsing of the
shared data files, its own interval bucketing and its own arithmetic. Nothing from
``transforms`` is imported by the reference functions.

The site profile is synthetic but deterministic, at 1-minute resolution, with every power a
multiple of 60 W, so each sample is a whole number of Wh and quantities are exact 6-decimal
MWh on both sides (the transforms' float->Wh rounding never meets a tie). Hashrates are
multiples of 9 TH/s, which makes PH-days exact at 9 decimals.
"""

from __future__ import annotations

import csv
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from transforms.carbon import build_carbon_hourly
from transforms.energy import interval_energy
from transforms.settlement import build_settlement
from transforms.sources import SHARED_DATA, read_emaps_carbon_hourly, read_ercot_rtm_spp_15min

DATA = SHARED_DATA
RTM = DATA / "ercot_rtm_spp_15min/ERCOT_RTM_SPP_hubs_loadzones_15min_2025-07-01_to_2025-07-03.csv"
EMAPS = DATA / "ercot_carbon_intensity_hourly_emaps/US-TEX-ERCO_2023_hourly.csv"
CHICAGO = ZoneInfo("America/Chicago")
SITE = "site-a"
CONTRACT_W = 300_000_000
J_PER_TH = Decimal("17.5")
CENT = Decimal("0.01")


# ---------------------------------------------------------------- synthetic site (shared input)


def site_profile(start_s: int, minutes: int, curtail: set[int]) -> list[dict[str, Any]]:
    """1-minute SitePower rows: AI varies (LCG + daily shape), mining absorbs the surplus up
    to 100 MW unless the interval is curtailed, overhead 6 % of AI. All W multiples of 60."""
    rows: list[dict[str, Any]] = []
    seed = 12345
    for k in range(minutes):
        ts = start_s + 60 * k
        seed = (seed * 1103515245 + 12345) % 2**31
        daily = (k % 1440) / 1440
        ai = 180_000_000 + int(90_000_000 * (1 - abs(2 * daily - 1))) + (seed % 400_000) * 60
        if seed % 97 == 0:  # an AI spike that pushes the site over its contract
            ai += 60_000_000
        ai -= ai % 60
        overhead = (ai * 6 // 100) // 60 * 60
        surplus = CONTRACT_W - ai - overhead
        mining = 0 if (ts - ts % 900) in curtail else max(0, min(surplus, 100_000_000))
        mining -= mining % 60
        ths = int(Decimal(mining) / J_PER_TH / 9) * 9
        total = ai + mining + overhead
        rows.append({"site_id": SITE, "ts_s": ts, "ai_w": float(ai), "mining_w": float(mining),
                     "overhead_w": float(overhead), "total_w": float(total),
                     "poi_meter_w": float(total), "contract_w": float(CONTRACT_W),
                     "surplus_w": float(surplus), "hashrate_ths": float(ths)})
    return rows


# ---------------------------------------------------------------- independent reference


def ref_prices(point: str) -> dict[int, Decimal]:
    out: dict[int, Decimal] = {}
    with RTM.open(newline="") as fh:
        for row in csv.DictReader(fh):
            local = datetime.strptime(row["Time"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=CHICAGO)
            out[int(local.timestamp())] = Decimal(row[point])
    return out


def ref_intensity(day_utc_start: int, hours: int) -> dict[int, Decimal]:
    out: dict[int, Decimal] = {}
    with EMAPS.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        t_col = header.index("Datetime (UTC)")
        lca_col = next(i for i, h in enumerate(header) if h.endswith("(LCA)"))
        for row in reader:
            t = datetime.strptime(row[t_col], "%Y-%m-%d %H:%M:%S").replace(tzinfo=ZoneInfo("UTC"))
            s = int(t.timestamp())
            if day_utc_start <= s < day_utc_start + 3600 * hours:
                out[s] = Decimal(row[lca_col])
    return out


def ref_interval_sums(rows: list[dict[str, Any]]) -> dict[int, dict[str, Decimal]]:
    """Exact per-interval energy (MWh) and PH-days; each 1-minute sample held 60 s."""
    acc: dict[int, dict[str, Decimal]] = {}
    for r in rows:
        ts = int(r["ts_s"])
        iv = ts // 900 * 900
        a = acc.setdefault(iv, {k: Decimal(0) for k in ("ai", "mining", "overhead", "poi", "th_s")})
        for k, col in (("ai", "ai_w"), ("mining", "mining_w"), ("overhead", "overhead_w"),
                       ("poi", "poi_meter_w")):
            a[k] += Decimal(int(r[col])) * 60 / Decimal(3_600_000_000)
        a["th_s"] += Decimal(int(r["hashrate_ths"])) * 60
    for a in acc.values():
        a["ph_days"] = (a.pop("th_s") / Decimal(86_400_000)).quantize(Decimal("1e-9"))
    return acc


def overlap_h(a0: int, a1: int, b0: int, b1: int) -> Decimal:
    return Decimal(max(0, min(a1, b1) - max(a0, b0))) / 3600


def cents(x: Decimal) -> Decimal:
    return x.quantize(CENT, rounding=ROUND_HALF_EVEN)


Block = tuple[int, int, int, Decimal]
Credit = tuple[str, int, int, int, Decimal]


def ref_settlement(rows: list[dict[str, Any]], prices: dict[int, Decimal], blocks: list[Block],
                   hashprices: list[tuple[int, Decimal]], credits: list[Credit],
                   cp_intervals: set[int], cp_rate: Decimal) -> dict[int, dict[str, Decimal]]:
    ledger: dict[int, dict[str, Decimal]] = {}
    for iv, e in sorted(ref_interval_sums(rows).items()):
        fwd_mwh = Decimal(0)
        fwd_usd = Decimal(0)
        for b0, b1, mw, px in blocks:
            q = (Decimal(mw) * overlap_h(iv, iv + 900, b0, b1)).quantize(Decimal("1e-6"))
            fwd_mwh += q
            fwd_usd += q * px
        price = prices[iv]
        net = fwd_mwh - e["poi"]
        sell, buy = max(net, Decimal(0)), max(-net, Decimal(0))
        hp = [p for s, p in hashprices if s <= iv][-1]
        dr = anc = Decimal(0)
        for kind, c0, c1, mw, px in credits:
            q = (Decimal(mw) * overlap_h(iv, iv + 900, c0, c1)).quantize(Decimal("1e-6"))
            if kind == "dr":
                dr += q * px
            else:
                anc += q * px
        four_cp = e["poi"] * 1000 * cp_rate if iv in cp_intervals else Decimal(0)
        comp = {
            "forward_usd": cents(-fwd_usd),
            "rt_sell_back_usd": cents(sell * price),
            "rt_purchase_usd": cents(-buy * price),
            "mining_revenue_usd": cents(e["ph_days"] * hp),
            "dr_credit_usd": cents(dr),
            "ancillary_credit_usd": cents(anc),
            "four_cp_usd": cents(-four_cp),
        }
        comp["net_usd"] = sum(comp.values(), Decimal(0))
        comp.update(poi_mwh=e["poi"], forward_mwh=fwd_mwh, sell_back_mwh=sell, purchase_mwh=buy,
                    hashrate_ph_days=e["ph_days"], ai_mwh=e["ai"], mining_mwh=e["mining"])
        ledger[iv] = comp
    return ledger


def local_s(y: int, mo: int, d: int, h: int, mi: int = 0) -> int:
    return int(datetime(y, mo, d, h, mi, tzinfo=CHICAGO).timestamp())


# ---------------------------------------------------------------- the test


def test_settlement_three_real_days_match_plain_python_to_the_cent() -> None:
    prices = ref_prices("LZ_WEST")
    start = local_s(2025, 7, 1, 0)
    assert min(prices) == start and len(prices) == 288
    hp_day1, hp_day2 = Decimal("55.000000"), Decimal("48.250000")
    breakeven = hp_day1 / (Decimal("0.024") * J_PER_TH)  # USD/MWh, ~131
    curtail = {iv for iv, p in prices.items() if p > breakeven}
    assert curtail, "the 2025-07-01 evening spike must curtail mining"
    rows = site_profile(start, 3 * 1440, curtail)

    blocks = [(start, start + 3 * 86400, 300, Decimal("45.50")),
              (local_s(2025, 7, 1, 14), local_s(2025, 7, 1, 20), 20, Decimal("80.25"))]
    hashprices = [(start, hp_day1), (start + 86400, hp_day2)]
    credits = [("dr", local_s(2025, 7, 1, 20, 5), local_s(2025, 7, 1, 21, 30), 50,
                Decimal("120.00")),
               ("ancillary", local_s(2025, 7, 2, 9), local_s(2025, 7, 2, 12), 10,
                Decimal("5.25"))]
    cp = {local_s(2025, 7, 1, 16, 30), local_s(2025, 7, 2, 17, 0)}
    cp_rate = Decimal("60.00")
    expected = ref_settlement(rows, prices, blocks, hashprices, credits, cp, cp_rate)

    energy = interval_energy(pl.DataFrame(rows), max_gap_s=120, period_s=60)
    rt = read_ercot_rtm_spp_15min(RTM).filter(pl.col("settlement_point") == "LZ_WEST")
    got = build_settlement(
        energy, rt,
        pl.DataFrame([{"site_id": SITE, "start_s": b0, "end_s": b1, "mw": float(mw),
                       "price_usd_per_mwh": str(px)} for b0, b1, mw, px in blocks])
        .with_columns(pl.col("price_usd_per_mwh").cast(pl.Decimal(18, 6))),
        hashprice=pl.DataFrame({"start_s": [s for s, _ in hashprices],
                                "hashprice_usd_per_ph_day": [p for _, p in hashprices]}),
        credits=pl.DataFrame([{"site_id": SITE, "kind": k, "start_s": c0, "end_s": c1,
                               "mw": float(mw), "price_usd_per_mw_h": float(px)}
                              for k, c0, c1, mw, px in credits]),
        four_cp_intervals=pl.DataFrame({"interval_start_s": sorted(cp)}),
        four_cp_rate_usd_per_kw_year=cp_rate,
    )
    assert got.height == 288
    got_by_iv = {r["interval_start_s"]: r for r in got.iter_rows(named=True)}
    assert set(got_by_iv) == set(expected)
    mismatches = [(iv, k, got_by_iv[iv][k], v) for iv, exp in expected.items()
                  for k, v in exp.items() if got_by_iv[iv][k] != v]
    assert not mismatches, mismatches[:5]
    # Every kind of money moved somewhere in the three days.
    totals = {k: sum((e[k] for e in expected.values()), Decimal(0))
              for k in ("rt_sell_back_usd", "rt_purchase_usd", "dr_credit_usd",
                        "ancillary_credit_usd", "four_cp_usd", "mining_revenue_usd")}
    assert all(v != 0 for v in totals.values()), totals
    assert sum(got["net_usd"].to_list(), Decimal(0)) == sum(
        (e["net_usd"] for e in expected.values()), Decimal(0))


@pytest.mark.parametrize("day", [(2023, 8, 10), (2023, 1, 15)])
def test_carbon_real_day_matches_plain_python_to_the_gram(day: tuple[int, int, int]) -> None:
    start = local_s(*day, 0)
    rows = site_profile(start, 1440, curtail=set())
    # Hours are UTC; a Central local day spans parts of 25 UTC hours at most.
    hour0 = start // 3600 * 3600
    ci = ref_intensity(hour0, 25)
    cfe = {h: Decimal(150) if 15 <= (h // 3600) % 24 <= 23 else Decimal(40) for h in ci}
    marginal = {h: Decimal(600) + (h // 3600) % 7 for h in list(ci)[:6]}
    curtailed = {h: Decimal("12.5") for h in ci}

    ref: dict[int, dict[str, Decimal]] = {}
    avoided: dict[int, Decimal | None] = {}
    for r in rows:
        h = int(r["ts_s"]) // 3600 * 3600
        a = ref.setdefault(h, {"ai": Decimal(0), "mining": Decimal(0), "overhead": Decimal(0)})
        for k in a:
            a[k] += Decimal(int(r[f"{k}_w"])) * 60 / Decimal(3_600_000_000)
    for h, a in ref.items():
        total = a["ai"] + a["mining"] + a["overhead"]
        loc = total * 1000 * ci[h]
        matched = min(cfe[h], total)
        market = (total - matched) * 1000 * ci[h]
        share_ai = a["ai"] / (a["ai"] + a["mining"])
        a.update(location_g=loc, ai_location_g=loc * share_ai, market_g=market,
                 ai_market_g=market * share_ai, mining_market_g=market * (1 - share_ai),
                 mining_location_g=loc * (1 - share_ai), cfe_matched_mwh=matched)
        avoided[h] = curtailed[h] * 1000 * marginal[h] if h in marginal else None

    energy = interval_energy(pl.DataFrame(rows), max_gap_s=120, period_s=60)
    intensity = read_emaps_carbon_hourly(EMAPS)

    def frame(d: dict[int, Decimal], col: str, site: bool = False) -> pl.DataFrame:
        f = pl.DataFrame({"hour_start_s": list(d), col: [float(v) for v in d.values()]})
        return f.with_columns(pl.lit(SITE).alias("site_id")) if site else f

    got = build_carbon_hourly(energy, intensity, intensity_col="ci_lca_g_per_kwh",
                              cfe=frame(cfe, "cfe_mwh", site=True),
                              marginal=frame(marginal, "marginal_g_per_kwh"),
                              curtailed=frame(curtailed, "curtailed_mwh", site=True))
    assert got.height == len(ref) == 24
    for r in got.iter_rows(named=True):
        exp = ref[r["hour_start_s"]]
        for k in ("location_g", "ai_location_g", "mining_location_g", "market_g",
                  "ai_market_g", "mining_market_g"):
            assert abs(Decimal(r[k]) - exp[k]) < Decimal("0.5"), (r["hour_start_s"], k)
        assert abs(Decimal(r["cfe_matched_mwh"]) - exp["cfe_matched_mwh"]) < Decimal("1e-9")
        want = avoided[r["hour_start_s"]]
        if want is None:
            assert r["avoided_g"] is None
        else:
            assert abs(Decimal(r["avoided_g"]) - want) < Decimal("0.5")
    day_total = sum((a["location_g"] for a in ref.values()), Decimal(0))
    assert abs(Decimal(got["location_g"].sum()) - day_total) < Decimal("0.5")


def test_reference_helpers_sanity() -> None:
    """The reference's own time handling: 2025-07-01 00:00 CDT is 05:00 UTC."""
    assert local_s(2025, 7, 1, 0) == int(datetime(2025, 7, 1, 5, tzinfo=ZoneInfo("UTC"))
                                         .timestamp())
    assert local_s(2025, 7, 1, 0) + 86400 == local_s(2025, 7, 2, 0)
    assert timedelta(seconds=900 * 288) == timedelta(days=3)
