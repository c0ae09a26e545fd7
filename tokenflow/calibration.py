"""Calibration of the two inputs the paper does not pin down and two claims depend on.

* ``link_bandwidth_gbps`` (per direction) is chosen so that the transfer-aware cost
  uplift over the token-equivalent baseline equals the paper's C2 value;
* ``other_opex_usd_per_kwh`` (variable non-energy operating cost) is chosen so that
  the chat price rise when the chat limit tightens equals the paper's C3 value.

Both are searched only inside their declared plausible ranges (scenario file);
if the target is not reachable there, the calibration says so instead of leaving
the range.  C1 and C4 are *not* calibrated: they are checks at the calibrated point.
"""

from __future__ import annotations

from dataclasses import dataclass

from scipy.optimize import brentq

from .claims import CASE_SCALE, PAPER_CLAIMS, chat_price_rise, cost_uplift
from .errors import TokenflowError
from .market import max_demand_scale
from .scenario import Scenario

BANDWIDTH_RANGE = (50.0, 400.0)  # Gbps, search range inside the declared 50-1600
OPEX_RANGE = (0.0, 0.1)  # $/kWh, the declared range


@dataclass
class Calibration:
    link_bandwidth_gbps: float
    other_opex_usd_per_kwh: float
    c2_uplift_pct: float
    c3_rise_pct: float
    rounds: int


def _root(f, lo: float, hi: float, what: str) -> float:
    flo, fhi = f(lo), f(hi)
    if flo * fhi > 0:
        raise TokenflowError(f"calibration of {what}: target not bracketed in [{lo}, {hi}] "
                             f"(mismatch {flo:+.4g} .. {fhi:+.4g}); the claim is not reachable "
                             "with a plausible value")
    return brentq(f, lo, hi, xtol=1e-6, rtol=1e-9)


def feasible_bandwidth_range(s: Scenario, scale: float = CASE_SCALE) -> tuple[float, float]:
    """The bandwidth search range (Gbps), starting where the ``scale`` case clears.

    Below the bandwidth at which s* = ``scale`` the case has no market to compare, so the
    bracket starts just above that root of the max-scale LP (when it lies inside the range)."""
    lo, hi = BANDWIDTH_RANGE

    def excess(b: float) -> float:
        return max_demand_scale(s.replace(params={"link_bandwidth_gbps": b})) - scale

    if excess(lo) >= 0:
        return lo, hi
    if excess(hi) < 0:
        raise TokenflowError(f"calibration of link_bandwidth_gbps: the {scale:g}x case does not clear "
                             f"anywhere in [{lo}, {hi}] Gbps")
    return brentq(excess, lo, hi, xtol=1e-6) * (1 + 1e-4), hi


def calibrate(s: Scenario, rounds: int = 3) -> Calibration:
    """Jointly calibrate bandwidth (C2) and other opex (C3), alternating 1-D root finds."""
    c2, c3 = PAPER_CLAIMS["C2"]["paper"], PAPER_CLAIMS["C3"]["paper"]
    cur = s
    bw = opex = float("nan")
    for _ in range(rounds):
        def g2(b: float, cur: Scenario = cur) -> float:
            return cost_uplift(cur.replace(params={"link_bandwidth_gbps": b}))[0] - c2

        bw = _root(g2, *feasible_bandwidth_range(cur), "link_bandwidth_gbps")
        cur = cur.replace(params={"link_bandwidth_gbps": bw})

        def g3(o: float, cur: Scenario = cur) -> float:
            return float(chat_price_rise(cur.replace(params={"other_opex_usd_per_kwh": o}))["rise_pct"].max()) - c3

        opex = _root(g3, *OPEX_RANGE, "other_opex_usd_per_kwh")
        cur = cur.replace(params={"other_opex_usd_per_kwh": opex})
    return Calibration(bw, opex, cost_uplift(cur)[0], float(chat_price_rise(cur)["rise_pct"].max()), rounds)
