"""ERCOT price bounds in force over time: pure, dated, no I/O.

A price check asks ``price_problem(price, when_s, market)``: the interval's own date picks the
rules in force, so a history replay never dead-letters a real price (February 2021 day-ahead
$8,995.26 under the $9,000 cap; September 2023 load-zone real-time $5,339.52 above the $5,000
cap), while a units error ($/MWh x 1000, a value of 1e6) still fails.

Rules and where they come from (looked up with the project's search tool; verify anything
marked *unconfirmed* before relying on it for more than a sanity bound):

- **High System-Wide Offer Cap (HCAP)**, PUCT Substantive Rule 16 TAC §25.505(g); ERCOT
  Nodal Protocols §4.4.11 (System-Wide Offer Caps):
  - $3,000/MWh before 2012-08-01 (Direct Energy regulatory update, 2012-10-25: "$4,500 per MWh
    (from $3,000). This change took effect on August 1, 2012"). *Unconfirmed*: earlier steps
    (cimview.com: "$2,250/MWh at nodal market implementation in December 2010 and rose in
    steps"); the table uses $3,000 for every earlier date, the highest value confirmed for that
    period, so a real price of those years is never rejected, at the cost of a looser check.
  - $4,500 from 2012-08-01 (same source).
  - $5,000 from 2013-06-01, $7,000 from 2014-06-01, $9,000 from 2015-06-01: PUCT Project 40268,
    order adopting amendments to §25.505 at the 2012-10-25 open meeting (energychoicematters.com
    2012-10-26; Direct Energy 2012-10-25). One Direct Energy blog (2014-06) says the cap went
    from $5,000 to $9,000 on 2014-06-01: that is the ORDC's Value of Lost Load (below), not
    HCAP.
  - $5,000 from 2022-01-01: PUCT amendment to §25.505 approved 2021-12-02, ERCOT market notice
    M-A120721-01 ("lowers the HCAP from its current value of $9,000/MWh to a value of
    $5,000/MWh with an effective date of January 1, 2022").
  The Low System-Wide Offer Cap (LCAP, $2,000) is lower and never widens a bound, so it is
  not tabled.
- **Value of Lost Load (VOLL)**, the top of the Operating Reserve Demand Curve (ORDC, NPRR568,
  Protocols §6.5.7.3): $9,000 from the ORDC's start on 2014-06-01 (ERCOT's ORDC fact sheet:
  "VOLL, which is set at $9,000 per megawatt-hour"); set equal to the system-wide offer cap in
  effect by PUCT Project 48721 (2019); $5,000 from 2022-01-01 (notice M-A120721-01 lists VOLL
  among the parameters that change with HCAP). Before 2014-06-01 there were no adders and the
  Power Balance Penalty Curve stopped at HCAP.
- **Real-time headroom above the cap.** A real-time Settlement Point Price is the LMP plus the
  Real-Time On-Line Reserve Price Adder (ORDC) and the Real-Time On-Line Reliability Deployment
  Price Adder (NPRR626, Protocols §6.5.7.3.1, §6.6.1). The adders bring the system price up to
  at most VOLL (the curve is capped at VOLL; from 2022 the Power Balance Penalty Curve is capped
  at HCAP + $1, notice M-A120721-01). A load zone or node can still settle above that through
  congestion: LZ_WEST $5,339.52 on 2023-09-06 19:30 CPT, and $5,241.48 on 2023-08-17 (both
  under a $5,000 HCAP; wattgap's ERCOT NP6-785-ER extract). *Unconfirmed*: the protocol's
  limit on that congestion component (constraint shadow-price caps) was not found, so the
  real-time ceiling here is a sanity bound: twice the system price ceiling
  (``CONGESTION_HEADROOM``), $10,002 in 2023, $18,000 in 2021.
- **Offer floor** -$250/MWh (Protocols §4.4.9.3, Energy Offer Curve; "bid as low as -$250/MWh
  and as high as $9,000/MWh", docslib summary of the IMM's figures). Settlement Point Prices,
  day-ahead and real-time, have been observed below it through congestion (ERCOT QMWG,
  2011-12-02, on NPRR385: "There have been both DAM and Real-Time prices below -$251"; NPRR385's
  administrative -$251 floor was a proposal). *Unconfirmed*: the lowest observed price; the
  sanity floor for settlement prices is ``SETTLEMENT_FLOOR_USD_PER_MWH`` (-$10,000), well below
  any load-zone or hub price we know of and still far from a units error (-$250,000).
- **Day-ahead** Settlement Point Prices are bounded above by the DAM offer cap in force (HCAP;
  the DAM has no ORDC adders).
- **Ancillary-service clearing prices (MCPC)**, $/MW per hour: *unconfirmed* rule; the DAM AS
  penalty factors follow the cap in force (notice M-A120721-01), so the same sanity ceiling as
  real-time applies, with a floor of 0 (capacity is never paid a negative price in the files
  seen here).
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal
from zoneinfo import ZoneInfo

Market = Literal["DAM", "RTM", "SCED", "AS_MCPC"]
"""Day-ahead energy, real-time settlement (15 min), SCED LMPs (5 min), AS clearing prices."""

MARKETS: tuple[Market, ...] = ("DAM", "RTM", "SCED", "AS_MCPC")

ERCOT_TZ = ZoneInfo("America/Chicago")
"""ERCOT's rules take effect on operating days in Central prevailing time."""

OFFER_FLOOR_USD_PER_MWH = -250.0
SETTLEMENT_FLOOR_USD_PER_MWH = -10_000.0
CONGESTION_HEADROOM = 2.0
"""Real-time ceiling = this x the system price ceiling (a sanity margin, see the docstring)."""


@dataclass(frozen=True, slots=True)
class Step:
    """Values in force from ``start`` (an operating day, CPT) until the next step."""

    start: date
    hcap_usd_per_mwh: float
    voll_usd_per_mwh: float | None
    """None before the ORDC (2014-06-01): no real-time adders."""
    source: str


STEPS: tuple[Step, ...] = (
    Step(date.min, 3000.0, None, "16 TAC §25.505 before 2012-08-01; earlier steps unconfirmed"),
    Step(date(2012, 8, 1), 4500.0, None, "PUCT June 2012 amendment to §25.505"),
    Step(date(2013, 6, 1), 5000.0, None, "PUCT Project 40268 (2012-10-25)"),
    Step(date(2014, 6, 1), 7000.0, 9000.0, "Project 40268; ORDC (NPRR568) VOLL $9,000"),
    Step(date(2015, 6, 1), 9000.0, 9000.0, "Project 40268"),
    Step(date(2022, 1, 1), 5000.0, 5000.0, "PUCT §25.505 amendment 2021-12-02, M-A120721-01"),
)
_STARTS = [s.start for s in STEPS]


@dataclass(frozen=True, slots=True)
class Bounds:
    low: float
    high: float
    rule: str
    """Why these bounds, for the dead-letter reason."""


def step_on(day: date) -> Step:
    """The step in force on an operating day."""
    return STEPS[bisect.bisect_right(_STARTS, day) - 1]


def operating_day(when_s: float) -> date:
    """The ERCOT operating day (CPT) of a UTC instant."""
    return datetime.fromtimestamp(when_s, ERCOT_TZ).date()


def bounds_on(day: date, market: Market) -> Bounds:
    """The plausible range of a price of ``market`` on ``day``."""
    s = step_on(day)
    if market == "DAM":
        return Bounds(SETTLEMENT_FLOOR_USD_PER_MWH, s.hcap_usd_per_mwh,
                      f"DAM offer cap ${s.hcap_usd_per_mwh:,.0f} ({s.source})")
    system = max(s.hcap_usd_per_mwh + 1.0, s.voll_usd_per_mwh or 0.0)
    high = system * CONGESTION_HEADROOM
    if market == "AS_MCPC":
        return Bounds(0.0, high, f"AS clearing price sanity ceiling {CONGESTION_HEADROOM:g} x "
                      f"${system:,.0f} ({s.source})")
    return Bounds(SETTLEMENT_FLOOR_USD_PER_MWH, high,
                  f"{market} ceiling {CONGESTION_HEADROOM:g} x system price cap ${system:,.0f} "
                  f"for congestion above HCAP/VOLL ({s.source})")


def bounds_at(when_s: float, market: Market) -> Bounds:
    return bounds_on(operating_day(when_s), market)


def price_problem(price: float, when_s: float, market: Market) -> str | None:
    """None if ``price`` is plausible for ``market`` at ``when_s`` (UTC), else why not."""
    if not math.isfinite(price):
        return f"price {price} is not a finite number"
    if not math.isfinite(when_s):
        return f"interval time {when_s} is not a finite number"
    try:
        b = bounds_at(when_s, market)
    except (OverflowError, OSError, ValueError):
        return f"interval time {when_s} is not a date"
    if b.low <= price <= b.high:
        return None
    return (f"{market} price {price} on {operating_day(when_s)} is outside [{b.low:g}, "
            f"{b.high:g}]: {b.rule}; a units error ($/kWh, x1000)?")


def widest(markets: tuple[Market, ...] = ("DAM", "RTM", "SCED")) -> tuple[float, float]:
    """The loosest range over all history: for checks that do not know the date."""
    all_bounds = [bounds_on(s.start, m) for s in STEPS for m in markets]
    return min(b.low for b in all_bounds), max(b.high for b in all_bounds)
