"""Values of lost load ($/M tokens) derived from sourced list prices.

``tokenflow/data/value_of_lost_load.csv`` holds, per workload, a public list price, the unit
it is quoted per (and how many tokens that unit is), a factor (e.g. the batch discount) and
its source.  The value of lost load is ``list_price_usd x factor x 1e6 / tokens_per_unit``:
what a user would pay elsewhere for a million tokens, so the most the market can charge
before that user is better off unserved.
"""

from __future__ import annotations

from importlib import resources

import pandas as pd

from .errors import ScenarioError

COLUMNS = ["workload", "list_price_usd", "per", "tokens_per_unit", "factor", "source", "note"]


def voll_table() -> pd.DataFrame:
    """The sourced table (index ``workload``) with the derived ``voll_usd_per_mtok``."""
    with resources.as_file(resources.files("tokenflow") / "data" / "value_of_lost_load.csv") as f:
        t = pd.read_csv(f)
    missing = [c for c in COLUMNS if c not in t]
    if missing:
        raise ScenarioError(f"value_of_lost_load.csv: missing columns {missing}")
    bad = t[(t["list_price_usd"] <= 0) | (t["tokens_per_unit"] <= 0) | (t["factor"] <= 0)
            | ~t["source"].astype(str).str.startswith("http")]
    if len(bad):
        raise ScenarioError(f"value_of_lost_load.csv: rows {list(bad['workload'])} need a positive price, "
                            "unit size and factor and a source URL")
    t = t.set_index("workload")
    t["voll_usd_per_mtok"] = t["list_price_usd"] * t["factor"] * 1e6 / t["tokens_per_unit"]
    return t


def value_of_lost_load(workloads: list[str] | None = None) -> dict[str, float]:
    """{workload: $/M tokens} for ``workloads`` (default: every row of the table)."""
    t = voll_table()
    names = list(t.index) if workloads is None else list(workloads)
    unknown = [w for w in names if w not in t.index]
    if unknown:
        raise ScenarioError(f"value of lost load: no sourced list price for workload(s) {unknown}")
    return {w: float(t.loc[w, "voll_usd_per_mtok"]) for w in names}
