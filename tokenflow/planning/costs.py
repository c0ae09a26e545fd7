"""Capital costs of the long-run plan: the sourced table (``tokenflow/data/capital_costs.csv``, read
through one validating loader, units checked or converted), the annuity, and
:class:`CapitalCosts`, the annualised costs :func:`tokenflow.planning.plan.plan` charges for a
Gbps of fibre and a MW of AI compute.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..core import validate as _v
from ..core.errors import ScenarioError
from ..lp.inputs import check_number

HOURS_PER_YEAR = 8760.0
HOURS_PER_LEAP_YEAR = 8784.0  # the most hours a representative hour can stand for
COST_FILE = Path(__file__).resolve().parents[1] / "data" / "capital_costs.csv"
COST_FIELDS = ("link_usd_per_gbps_km_year", "dc_facility_usd_per_mw", "dc_facility_life_years",
               "it_equipment_usd_per_mw", "it_equipment_life_years", "discount_rate")


LIFE_RANGE_YEARS = (0.5, 200.0)  # asset lives the plan accepts
RATE_RANGE = (0.0, 1.0)  # discount rates per year the plan accepts (0 .. 100 %)


def annuity(rate: float, years: float) -> float:
    """Capital recovery factor: the yearly payment per $ of capital at ``rate`` (per year,
    in [0, 1]) over ``years`` (in [0.5, 200]).  Computed as ``rate / (1 - (1 + rate)^-years)``
    with ``expm1``/``log1p`` (no overflow, no cancellation at small rates)."""
    rate = _v.number(rate, "discount_rate", "annuity", lo=RATE_RANGE[0], hi=RATE_RANGE[1], unit="per year")
    years = _v.number(years, "life", "annuity", lo=LIFE_RANGE_YEARS[0], hi=LIFE_RANGE_YEARS[1], unit="years")
    if rate == 0:
        return 1.0 / years
    return rate / -math.expm1(-years * math.log1p(rate))


COST_COLUMNS = ("parameter", "value", "low", "high", "unit", "source", "note")
# the unit the code reads each input in (the file's unit column must say it, or one that converts)
COST_UNITS = {"link_usd_per_gbps_km_year": "$ per Gbps (duplex) per route-km per year",
              "dc_facility_usd_per_mw": "$ per MW of critical (IT) load",
              "dc_facility_life_years": "years",
              "it_equipment_usd_per_mw": "$ per MW of IT power",
              "it_equipment_life_years": "years",
              "discount_rate": "per year (real)"}
# power prefixes a $ per MW input may be given in, and the factor to $ per MW
_POWER_PER_MW = {"W": 1e6, "kW": 1e3, "MW": 1.0, "GW": 1e-3}


def _unit_factor(field: str, unit: str) -> float | None:
    """Factor from ``unit`` to the unit the code expects for ``field`` (None: not convertible)."""
    want = COST_UNITS[field]
    norm = " ".join(unit.split())
    if norm == want:
        return 1.0
    if field.endswith("_usd_per_mw"):
        head, _, rest = want.partition(" per MW")
        for prefix, factor in _POWER_PER_MW.items():
            if norm == f"{head} per {prefix}{rest}":
                return factor
    if field.endswith("_life_years") and norm == "months":
        return 1.0 / 12.0
    return None


def load_cost_table(path: str | Path | None = None) -> pd.DataFrame:
    """The capital-cost table (default: ``tokenflow/data/capital_costs.csv``), validated through
    :mod:`tokenflow.scenarios.datafiles`: columns ``parameter, value, low, high, unit, source, note``; one row
    per input of :data:`COST_FIELDS` (a missing, repeated or unknown row is refused); value, low
    and high finite numbers with low <= value <= high, costs >= 0, lives and the discount rate in
    the ranges :func:`annuity` accepts; the unit the code expects (:data:`COST_UNITS`) or one it
    converts ($ per kW/GW of power, lives in months), converted.  Every problem is reported at
    once as a :class:`ScenarioError` naming the file and the row."""
    from ..scenarios.datafiles import duplicate_rows, limit_problems, number_column, read_csv

    src = Path(path) if path is not None else Path(COST_FILE)
    bundled = src == Path(__file__).resolve().parents[1] / "data" / "capital_costs.csv"
    label = f"capital costs {'tokenflow/data/capital_costs.csv' if bundled else src}"
    raw = read_csv(src, columns=COST_COLUMNS, label=label,
                   what="capital-cost file (CSV)")
    raw["parameter"] = raw["parameter"].str.strip()
    problems = duplicate_rows(raw, ["parameter"], label, what="parameter")
    unknown = sorted(set(raw["parameter"]) - set(COST_FIELDS))
    if unknown:
        problems.append(f"{label}: unknown parameter(s) {', '.join(map(repr, unknown))}; "
                        f"known: {', '.join(COST_FIELDS)}")
    missing = [f for f in COST_FIELDS if f not in set(raw["parameter"])]
    if missing:
        problems.append(f"{label}: missing parameter row(s) {', '.join(missing)}")
    if problems:
        raise ScenarioError(limit_problems(problems))
    t = raw.set_index("parameter").loc[list(COST_FIELDS)].copy()
    where = [f"{label}: {f}" for f in COST_FIELDS]
    factors = []
    for f, unit in zip(COST_FIELDS, t["unit"]):
        k = _unit_factor(f, unit)
        if k is None:
            problems.append(f"{label}: {f}: unit {unit!r} is not the unit the plan reads ({COST_UNITS[f]!r})"
                            + (" or $ per kW/GW" if f.endswith("_usd_per_mw") else ""))
        factors.append(1.0 if k is None else k)
    cols = {}
    for c in ("value", "low", "high"):
        vals, more = number_column(t[c], where, c, "(the row's unit)", lo=-np.inf)
        problems += more
        cols[c] = vals * np.array(factors)
    if problems:
        raise ScenarioError(limit_problems(problems))
    for i, f in enumerate(COST_FIELDS):
        lo, v, hi = cols["low"][i], cols["value"][i], cols["high"][i]
        if f.endswith("_life_years"):
            rng = LIFE_RANGE_YEARS
        elif f == "discount_rate":
            rng = RATE_RANGE
        else:
            rng = (0.0, math.inf)
        for name, x in (("value", v), ("low", lo), ("high", hi)):
            if not rng[0] <= x <= rng[1]:
                problems.append(f"{label}: {f}: {name} {x:g} {COST_UNITS[f]} outside [{rng[0]:g}, {rng[1]:g}]")
        if not lo <= v <= hi:
            problems.append(f"{label}: {f}: needs low <= value <= high, got {lo:g}, {v:g}, {hi:g}")
    if problems:
        raise ScenarioError(limit_problems(problems))
    for c in ("value", "low", "high"):
        t[c] = cols[c]
    t["unit"] = [COST_UNITS[f] for f in COST_FIELDS]
    return t


@functools.lru_cache(maxsize=1)
def _cost_table() -> pd.DataFrame:
    return load_cost_table()


def cost_table() -> pd.DataFrame:
    """The sourced capital-cost inputs (value, low, high, unit, source, note) by parameter."""
    return _cost_table().copy()


def _check_cost(k: str, v: object) -> float:
    """One capital-cost input checked (an integer too large for a float included)."""
    if k.endswith("life_years"):
        return _v.number(v, k, "capital costs", lo=LIFE_RANGE_YEARS[0], hi=LIFE_RANGE_YEARS[1], unit="years")
    if k == "discount_rate":
        return _v.number(v, k, "capital costs", lo=RATE_RANGE[0], hi=RATE_RANGE[1], unit="per year")
    return check_number(v, k, COST_UNITS[k])


@dataclass(frozen=True)
class CapitalCosts:
    """Capital-cost inputs of the plan (defaults: the ``value`` column of :func:`cost_table`)."""

    link_usd_per_gbps_km_year: float
    dc_facility_usd_per_mw: float
    dc_facility_life_years: float
    it_equipment_usd_per_mw: float
    it_equipment_life_years: float
    discount_rate: float

    def __post_init__(self) -> None:
        # every way of making one (the constructor, default(), scaled(), dataclasses.replace)
        # checks the numbers: costs finite >= 0, lives and the rate in annuity()'s ranges
        for k in COST_FIELDS:
            object.__setattr__(self, k, _check_cost(k, getattr(self, k)))

    @classmethod
    def default(cls, column: str = "value", **overrides: float) -> CapitalCosts:
        """From the sourced table (``column``: value, low or high) with ``overrides``."""
        if not isinstance(column, str) or column not in ("value", "low", "high"):
            raise ScenarioError(f"column: one of value, low, high, got {column!r:.80}")
        t = _cost_table()
        unknown = sorted(map(str, set(overrides) - set(COST_FIELDS)))
        if unknown:
            raise ScenarioError(f"capital costs: unknown input(s) {', '.join(unknown)}; "
                                f"known: {', '.join(COST_FIELDS)}")
        vals = {f: float(t.loc[f, column]) for f in COST_FIELDS}
        vals.update(overrides)
        return cls(**vals)

    @property
    def node_usd_per_mw_year(self) -> float:
        """Annualised cost of one MW of AI compute: facility and IT equipment, $/MW-year."""
        return (self.dc_facility_usd_per_mw * annuity(self.discount_rate, self.dc_facility_life_years)
                + self.it_equipment_usd_per_mw * annuity(self.discount_rate, self.it_equipment_life_years))

    def scaled(self, factor: float) -> CapitalCosts:
        """Every capital cost (not lives or rate) times ``factor`` (a finite number >= 0)."""
        factor = check_number(factor, "factor", "(multiplier)")
        return dataclasses.replace(self, link_usd_per_gbps_km_year=self.link_usd_per_gbps_km_year * factor,
                                   dc_facility_usd_per_mw=self.dc_facility_usd_per_mw * factor,
                                   it_equipment_usd_per_mw=self.it_equipment_usd_per_mw * factor)


def _costs(costs: CapitalCosts | Mapping | None) -> CapitalCosts:
    if costs is None:
        return CapitalCosts.default()
    if isinstance(costs, CapitalCosts):
        return costs
    if isinstance(costs, Mapping):
        return CapitalCosts.default(**costs)
    raise ScenarioError(f"costs: expected CapitalCosts, a mapping or None, got {type(costs).__name__}")
