"""The market's inputs as numpy arrays, and the checks of every argument that shapes them.

This is the bottom layer of the engine (``inputs -> routes -> model -> engine -> results``):
everything the LP needs from a :class:`~tokenflow.scenarios.scenario_class.Scenario`, in scenario order
(nodes ``N``, workloads ``K``, directed arcs ``L``), in the LP's units:

* costs in $/M tokens (processing) and $/GB (transfer), capacities in kW (compute) and
  GB/h (links; 1 Gbps sustained for an hour = 450 GB), demand in M tokens/h;
* link weights in GB per M tokens (= bytes per token / 1000): ``fwd_gb[k]`` counted on the
  arcs of a route origin -> processing node, ``rev_gb[k]`` on the opposite arcs of the
  same route (the response retracing the request; see CONTRACT of modelling choices).

Arc ``2 i`` is ``a->b`` and arc ``2 i + 1`` is ``b->a`` of fibre link ``i``
(the order of :func:`tokenflow.scenarios.network.arc_table`), so ``reverse(a) = a ^ 1``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import sys
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..core.errors import ScenarioError
from ..core.validate import shown
from ..scenarios.network import haversine_km
from ..scenarios.scenario_class import Scenario

GBPS_TO_GB_PER_H = 3600.0 / 8.0  # 1 Gbps sustained for an hour = 450 GB
FORMULATIONS = ("path", "arc")


# ----------------------------------------------------------------------------- argument checks

def check_scenario(s: object, name: str = "scenario") -> Scenario:
    """``s`` must be a loaded :class:`Scenario` (not a name or a path)."""
    if not isinstance(s, Scenario):
        hint = f"; load it first: tokenflow.load_scenario({s!r})" if isinstance(s, str) else ""
        raise ScenarioError(f"{name}: expected a tokenflow.Scenario, got {type(s).__name__} {s!r:.60}{hint}")
    return s


def check_bool(value: object, name: str) -> bool:
    """A real boolean (``True``/``False``; numpy booleans accepted), never a string."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise ScenarioError(f"{name}: expected True or False, got {value!r}")


def check_number(value: object, name: str, unit: str, *, allow_zero: bool = True) -> float:
    """A finite number >= 0 (> 0 when ``allow_zero`` is False)."""
    if isinstance(value, np.ndarray) and value.ndim == 0 and np.issubdtype(value.dtype, np.number):
        value = value.item()  # a 0-d numpy array is as good as its scalar
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ScenarioError(f"{name}: expected a number of {unit}, got {shown(value)}")
    need = "a finite non-negative" if allow_zero else "a finite positive"
    try:
        v = float(value)
    except (OverflowError, ValueError, TypeError):  # an int beyond a float's range (10**400)
        got = f"an integer of about {int(int(value).bit_length() * math.log10(2)) + 1} digits" \
            if isinstance(value, numbers.Integral) else type(value).__name__
        raise ScenarioError(f"{name}: must be {need} number of {unit} (at most {sys.float_info.max:.3g}), "
                            f"got {got}") from None
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        raise ScenarioError(f"{name}: must be {need} number of {unit}, got {shown(value)}")
    return v


def check_formulation(formulation: object) -> str:
    if not isinstance(formulation, str) or formulation not in FORMULATIONS:
        raise ScenarioError(f"formulation: must be one of {', '.join(FORMULATIONS)}, got {formulation!r}")
    return formulation


def per_workload(s: Scenario, values: object, name: str, unit: str, allow_zero: bool) -> dict[str, float]:
    """Check a workload -> number mapping; report every problem at once."""
    if values is None:
        return {}
    if not isinstance(values, Mapping):
        raise ScenarioError(f"{name}: expected a mapping workload -> {unit} "
                            f"(workloads: {', '.join(s.workload_ids)}), got {type(values).__name__} {values!r:.60}")
    out, problems = {}, []
    for k, v in values.items():
        if k not in s.workload_ids:
            problems.append(f"{name}: unknown workload {k!r} (workloads: {', '.join(s.workload_ids)})")
            continue
        try:
            out[k] = check_number(v, f"{name}.{k}", unit, allow_zero=allow_zero)
        except ScenarioError as exc:
            problems.append(str(exc))
    if problems:
        raise ScenarioError(problems)
    return out


def resolve_latency(s: Scenario, latency_limits_ms: object) -> np.ndarray:
    """Round-trip latency limit per workload (ms), scenario values with overrides."""
    lat = s.workloads["latency_limit_ms"].to_numpy(dtype=float).copy()
    for k, v in per_workload(s, latency_limits_ms, "latency_limits_ms", "ms", allow_zero=True).items():
        lat[s.workload_ids.index(k)] = v
    return lat


def resolve_voll(s: Scenario, value_of_lost_load: object) -> np.ndarray:
    """Value of lost load per workload ($/M tokens); NaN where none applies.

    ``value_of_lost_load`` is ``None`` (no lost load), one number (every workload) or a
    mapping workload -> number (the others: no lost load)."""
    K = len(s.workload_ids)
    if value_of_lost_load is None:
        return np.full(K, np.nan)
    if isinstance(value_of_lost_load, numbers.Real) and not isinstance(value_of_lost_load, (bool, np.bool_)):
        return np.full(K, check_number(value_of_lost_load, "value_of_lost_load", "$/M tokens", allow_zero=False))
    given = per_workload(s, value_of_lost_load, "value_of_lost_load", "$/M tokens", allow_zero=False)
    return np.array([given.get(k, np.nan) for k in s.workload_ids])


# ----------------------------------------------------------------------------- inputs

def link_weights_gb(s: Scenario, transfer_aware: bool) -> tuple[np.ndarray, np.ndarray]:
    """(forward, reverse) GB per M tokens per workload, as the modelling-choice contract
    defines them; uses :func:`tokenflow.scenarios.scenario_class.link_weights_gb` when the scenario module
    provides it, else today's model (forward = payload or reference payload, reverse = 0)."""
    from ..scenarios import scenario_class as _sc

    fn = getattr(_sc, "link_weights_gb", None)
    if fn is not None:
        fwd, rev = fn(s, transfer_aware)
        return np.asarray(fwd, dtype=float), np.asarray(rev, dtype=float)
    K = len(s.workload_ids)
    if transfer_aware:
        fwd = s.workloads["payload_bytes_per_token"].to_numpy(dtype=float) / 1000.0
    else:
        fwd = np.full(K, float(s.params["reference_payload_bytes_per_token"]) / 1000.0)
    return fwd, np.zeros(K)


def scenario_choices(s: Scenario) -> dict[str, str]:
    """The scenario's modelling choices (empty where the scenario module does not record them)."""
    ch = getattr(s, "choices", None)
    return dict(ch) if isinstance(ch, Mapping) else {}


@dataclass
class Inputs:
    """Everything the LP needs, as arrays (see module docstring for units and order)."""

    scenario: Scenario
    transfer_aware: bool
    node_ids: list[str]
    workload_ids: list[str]
    link_ids: list[str]  # directed arcs "a->b"
    au: np.ndarray  # arc origin node position
    av: np.ndarray  # arc target node position
    arc_latency_ms: np.ndarray  # one-way
    arc_cost: np.ndarray  # $/GB
    arc_capacity_gbh: np.ndarray  # GB/h
    fwd_gb: np.ndarray  # GB per M tokens on the route's arcs, per workload
    rev_gb: np.ndarray  # GB per M tokens on the opposite arcs, per workload
    payload_gb: np.ndarray  # physical GB per M tokens moved, per workload
    phys_fwd_gb: np.ndarray  # physical GB per M tokens on the route's arcs (transfer-aware weights)
    phys_rev_gb: np.ndarray  # physical GB per M tokens on the opposite arcs
    intensity: np.ndarray  # kWh per M tokens, per workload
    proc_cost: np.ndarray  # N x K, $/M tokens (energy + other opex)
    energy_cost: np.ndarray  # N x K, $/M tokens (electricity part)
    capacity_kw: np.ndarray  # N
    base_demand: np.ndarray  # N x K, M tokens/h at scale 1
    latency_ms: np.ndarray  # K, round-trip limit
    voll: np.ndarray  # K, $/M tokens, NaN = no lost load
    choices: dict[str, str]
    elec_price: np.ndarray | None = None  # N, $/kWh (before PUE)
    pue: np.ndarray | None = None  # N
    opex: float = 0.0  # $/kWh, other operating cost
    ai_share: float = 1.0

    @property
    def rev_arc(self) -> np.ndarray:
        return np.arange(len(self.au)) ^ 1

    @property
    def N(self) -> int:
        return len(self.node_ids)

    @property
    def K(self) -> int:
        return len(self.workload_ids)

    @property
    def L(self) -> int:
        return len(self.link_ids)

    @property
    def has_voll(self) -> bool:
        return bool(np.isfinite(self.voll).any())

    def structure_key(self) -> tuple:
        """What a persistent model cannot change in place: the sets of nodes, workloads, arcs."""
        return (tuple(self.node_ids), tuple(self.workload_ids), tuple(self.link_ids))

    def latency_json(self) -> str:
        return json.dumps({k: float(v) for k, v in zip(self.workload_ids, self.latency_ms)})

    def replace(self, **changes) -> Inputs:
        return dataclasses.replace(self, **changes)


def derived_from_demand(inp: Inputs) -> bool:
    """Whether some input of ``inp`` other than demand is computed from demand, so that a
    change of demand must rebuild the inputs: the token-equivalent baseline's link weight
    with ``baseline_payload="mean_payload"`` (the demand-weighted mean payload).  Keep this
    in step with :func:`build_inputs` and :func:`tokenflow.scenarios.scenario_class.link_weights_gb`."""
    return not inp.transfer_aware and inp.choices.get("baseline_payload") == "mean_payload"


def build_inputs(s: Scenario, *, transfer_aware: bool = True, latency_limits_ms: object = None,
                 value_of_lost_load: object = None) -> Inputs:
    """Arrays of scenario ``s`` for the LP (arguments checked, each error naming it)."""
    s = check_scenario(s)
    transfer_aware = check_bool(transfer_aware, "transfer_aware")
    nodes = s.node_ids
    pos = {n: i for i, n in enumerate(nodes)}
    links = s.links
    a = np.array([pos[x] for x in links["a"]], dtype=np.int64)
    b = np.array([pos[x] for x in links["b"]], dtype=np.int64)
    au = np.empty(2 * len(a), dtype=np.int64)
    av = np.empty_like(au)
    au[0::2], av[0::2], au[1::2], av[1::2] = a, b, b, a
    lat_n, lon_n = s.nodes["lat"].to_numpy(float), s.nodes["lon"].to_numpy(float)
    km = haversine_km(lat_n[a], lon_n[a], lat_n[b], lon_n[b])
    one_way = km * float(s.params["route_factor"]) * float(s.params["fiber_delay_us_per_km"]) / 1000.0
    par = s.params
    lk = s.links
    bw = lk["bandwidth_gbps"].to_numpy(dtype=float, na_value=np.nan) if len(lk) else np.zeros(0)
    bw = np.where(np.isnan(bw), float(par["link_bandwidth_gbps"]), bw)
    tc = lk["transfer_cost_usd_per_gb"].to_numpy(dtype=float, na_value=np.nan) if len(lk) else np.zeros(0)
    tc = np.where(np.isnan(tc), float(par["transfer_cost_usd_per_gb"]), tc)
    link_ids = []
    for x, y in zip(lk["a"], lk["b"]):
        link_ids += [f"{x}->{y}", f"{y}->{x}"]
    wl = s.workloads
    g = wl["energy_kwh_per_mtok"].to_numpy(float)
    fwd, rev = link_weights_gb(s, transfer_aware)
    pf, pr = link_weights_gb(s, True) if not transfer_aware else (fwd, rev)
    nd = s.nodes
    pue = nd["pue"].to_numpy(dtype=float, na_value=np.nan) if "pue" in nd else np.full(len(nd), np.nan)
    pue = np.where(np.isnan(pue), float(par["pue"]), pue)
    elec = pue * nd["electricity_usd_per_kwh"].to_numpy(float)
    demand = np.outer(nd["population"].to_numpy(float) / 1e6, wl["demand_mtok_per_h_per_mpeople"].to_numpy(float))
    if s.demand_override is not None:
        ov = s.demand_override.reindex(index=nd.index, columns=wl.index).to_numpy(dtype=float, na_value=np.nan)
        demand = np.where(np.isnan(ov), demand, ov)
    capacity = nd["capacity_mw"].to_numpy(float) * float(par["ai_share"]) * 1000.0
    return Inputs(
        scenario=s, transfer_aware=transfer_aware, node_ids=list(nodes), workload_ids=list(s.workload_ids),
        link_ids=link_ids, au=au, av=av, arc_latency_ms=np.repeat(one_way, 2), arc_cost=np.repeat(tc, 2),
        arc_capacity_gbh=np.repeat(bw, 2) * GBPS_TO_GB_PER_H, fwd_gb=fwd, rev_gb=rev,
        payload_gb=pf + pr, phys_fwd_gb=pf, phys_rev_gb=pr, intensity=g,
        proc_cost=np.outer(elec + float(par["other_opex_usd_per_kwh"]), g), energy_cost=np.outer(elec, g),
        capacity_kw=capacity, base_demand=demand,
        latency_ms=resolve_latency(s, latency_limits_ms), voll=resolve_voll(s, value_of_lost_load),
        choices=scenario_choices(s), elec_price=nd["electricity_usd_per_kwh"].to_numpy(float), pue=pue,
        opex=float(par["other_opex_usd_per_kwh"]), ai_share=float(par["ai_share"]),
    )
