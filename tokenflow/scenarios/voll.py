"""Values of lost load ($/M generated tokens) derived from sourced list prices.

``tokenflow/data/value_of_lost_load.csv`` holds, per workload, a public list price, the unit
it is quoted per (and how many tokens that unit is), the input (prompt) price per M tokens,
a factor (e.g. the batch discount) and its source.

**Unit.** The market's demand is counted in generated tokens, and every generated token
arrives with the prompt tokens of its request (the bundled traces give the prompt tokens
per generated token, :func:`tokenflow.scenarios.traces.trace_stats`; chat about 5, code review about
70).  A user who goes elsewhere for the same answer pays the provider's output price for the
generated token *and* its input price for those prompt tokens, so the value of lost load per
generated token is

    ``voll = factor x (list_price_usd x 1e6 / tokens_per_unit
    + prompt_per_generated x input_price_usd_per_mtok)``

with ``prompt_per_generated`` from the workload's trace (:data:`tokenflow.scenarios.serving.WORKLOAD_SERVING`;
0 for a workload without a prompt trace, and a per-image price already covers its prompt).
This does not depend on the ``energy_accounting`` choice: that choice is about what
processing a token *costs* (whether the prompt's prefill energy is counted); what the
served request is *worth* to its user includes the prompt either way.  Counting the output
price alone (``with_prompt=False``, the rule before this was settled) understates the value
of prompt-heavy work: under ``prefill_and_decode`` a code-review token then costs more to
process than it is worth and the whole workload is shed, an artefact of mixing units.
"""

from __future__ import annotations

import pandas as pd

from ..core.errors import ScenarioError

COLUMNS = ["workload", "list_price_usd", "per", "tokens_per_unit", "input_price_usd_per_mtok", "factor",
           "source", "note"]


def _prompt_per_generated(workload: str) -> float:
    """Prompt tokens per generated token of ``workload``'s trace (0 without a trace)."""
    from .serving import WORKLOAD_SERVING
    from .traces import trace_stats

    if workload not in WORKLOAD_SERVING:
        return 0.0
    t = trace_stats(WORKLOAD_SERVING[workload][0])
    return float(t.prompt_mean / t.generated_mean)


def voll_table(with_prompt: bool = True) -> pd.DataFrame:
    """The sourced table (index ``workload``) with ``prompt_per_generated``, the output-only
    value ``output_voll_usd_per_mtok`` and the derived ``voll_usd_per_mtok`` ($/M generated
    tokens; the output-only value when ``with_prompt`` is False)."""
    from .datafiles import duplicate_rows, limit_problems, number_column, read_csv

    label = "tokenflow/data/value_of_lost_load.csv"
    t = read_csv(None, columns=COLUMNS, label=label, packaged_name="value_of_lost_load.csv")
    where = [f"{label}: {w}" for w in t["workload"]]
    problems = duplicate_rows(t, ["workload"], label, what="workload")
    for c in ("list_price_usd", "tokens_per_unit", "input_price_usd_per_mtok", "factor"):
        t[c], more = number_column(t[c], where, c, "(the column's unit)", lo=-float("inf"))
        problems += more
    if problems:
        raise ScenarioError(limit_problems(problems))
    bad = t[(t["list_price_usd"] <= 0) | (t["tokens_per_unit"] <= 0) | (t["factor"] <= 0)
            | ~(t["input_price_usd_per_mtok"] >= 0) | ~t["source"].astype(str).str.startswith("http")]
    if len(bad):
        raise ScenarioError(f"value_of_lost_load.csv: rows {list(bad['workload'])} need a positive price, "
                            "unit size and factor, an input price >= 0 and a source URL")
    t = t.set_index("workload")
    t["prompt_per_generated"] = [_prompt_per_generated(str(w)) for w in t.index]
    t["output_voll_usd_per_mtok"] = t["list_price_usd"] * t["factor"] * 1e6 / t["tokens_per_unit"]
    prompt = t["factor"] * t["prompt_per_generated"] * t["input_price_usd_per_mtok"]
    t["voll_usd_per_mtok"] = t["output_voll_usd_per_mtok"] + (prompt if with_prompt else 0.0)
    return t


def value_of_lost_load(workloads: list[str] | None = None, *, with_prompt: bool = True) -> dict[str, float]:
    """{workload: $/M generated tokens} for ``workloads`` (default: every row of the table);
    ``with_prompt=False`` gives the output price alone (see the module docstring)."""
    from ..core.validate import flag

    t = voll_table(flag(with_prompt, "with_prompt", "value_of_lost_load"))
    names = list(t.index) if workloads is None else list(workloads)
    unknown = [w for w in names if w not in t.index]
    if unknown:
        raise ScenarioError(f"value of lost load: no sourced list price for workload(s) {unknown}")
    return {w: float(t.loc[w, "voll_usd_per_mtok"]) for w in names}
