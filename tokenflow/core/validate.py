"""Argument checks of the serving layer (queueing, simulation, traces).

One place for the checks the public functions of :mod:`tokenflow.latency.profiles`,
:mod:`tokenflow.latency.queueing`, :mod:`tokenflow.latency.market_latency`,
:mod:`tokenflow.latency.simulate` and :mod:`tokenflow.scenarios.traces` make before computing: each raises
:class:`~tokenflow.core.errors.ScenarioError` (a :class:`~tokenflow.core.errors.TokenflowError`)
naming the function and the argument.  Numbers may be Python or numpy scalars
(``np.float32(0.5)`` is as good as ``0.5``); booleans and strings are never numbers.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from .errors import ScenarioError

# Documented size limits of the discrete-event simulation (tokenflow.latency.simulate).
MAX_SIM_REQUESTS = 2_000_000  # requests per simulated pool
MAX_SIM_REPLICAS = 4096  # replicas per simulated pool
MAX_SIM_STEPS = 5_000_000  # generation steps per simulated pool (about 25 us each: two minutes)
# Bisection bounds (tokenflow.latency.queueing.max_utilisation): the tolerance is clipped below at
# MIN_TOL so a bisection of [0, 1] takes at most log2(1/MIN_TOL) ~ 40 steps.
MIN_TOL = 1e-12
MAX_BISECTION_STEPS = 60
# Queue sizes the analytic layer accepts (far beyond any data centre: 1e9 replicas of 64 slots).
MAX_REPLICAS = 10**9
MAX_SERVERS = 10**12
# Route enumeration (tokenflow.latency.market_latency.route_rtts): partial routes expanded per workload.
MAX_ROUTE_EXPANSIONS = 2_000_000


def shown(value: object, width: int = 80) -> str:
    """``repr(value)`` cut to ``width`` characters; an integer too long to print (Python refuses
    str() of more than 4300 digits) is described by its size instead."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 3000:
        return f"an integer of about {int(value.bit_length() * math.log10(2)) + 1} digits"
    try:
        return f"{value!r:.{width}}"
    except Exception:  # noqa: BLE001 - a repr that fails must not hide the refusal
        return f"a {type(value).__name__}"


def _where(fn: str, name: str) -> str:
    return f"{fn}: {name}" if fn else name


def number(value: object, name: str, fn: str = "", *, lo: float | None = None, hi: float | None = None,
           lo_open: bool = False, hi_open: bool = False, finite: bool = True, unit: str = "") -> float:
    """A real number (Python or numpy scalar, not bool) within the given bounds; returned as float."""
    what = _where(fn, name)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        if isinstance(value, np.ndarray) and value.ndim == 0 and np.issubdtype(value.dtype, np.number) \
                and not np.issubdtype(value.dtype, np.bool_):
            value = value.item()
        else:
            raise ScenarioError(f"{what}: expected a number{' of ' + unit if unit else ''}, got {shown(value)}")
    try:
        v = float(value)
    except OverflowError:
        raise ScenarioError(f"{what}: must be a finite number, got {shown(value)}") from None
    if math.isnan(v) or (finite and not math.isfinite(v)):
        raise ScenarioError(f"{what}: must be a finite number, got {shown(value)}")
    bad = ((lo is not None and (v < lo or (lo_open and v == lo)))
           or (hi is not None and (v > hi or (hi_open and v == hi))))
    if bad:
        left = "-inf" if lo is None else f"{lo:g}"
        right = "inf" if hi is None else f"{hi:g}"
        rng = f"{'(' if lo_open or lo is None else '['}{left}, {right}{')' if hi_open or hi is None else ']'}"
        raise ScenarioError(f"{what}: must be in {rng}, got {shown(value)}")
    return v


def integer(value: object, name: str, fn: str = "", *, lo: int | None = None, hi: int | None = None) -> int:
    """A whole number (int, numpy integer, or a float with no fractional part) within bounds."""
    what = _where(fn, name)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ScenarioError(f"{what}: expected a whole number, got {shown(value)}")
    if isinstance(value, numbers.Integral):
        i = int(value)
    else:
        v = float(value)
        if not math.isfinite(v) or v != int(v):
            raise ScenarioError(f"{what}: must be a whole number, got {shown(value)}")
        i = int(v)
    if lo is not None and i < lo:
        raise ScenarioError(f"{what}: must be at least {lo}, got {shown(value)}")
    if hi is not None and i > hi:
        raise ScenarioError(f"{what}: must be at most {hi} (documented limit), got {shown(value)}")
    return i


def quantile(value: object, name: str = "q", fn: str = "", *, closed: bool = False) -> float:
    """A probability level: in (0, 1) (``closed``: in [0, 1])."""
    return number(value, name, fn, lo=0.0, hi=1.0, lo_open=not closed, hi_open=not closed)


def choice(value: object, name: str, fn: str, options: tuple[str, ...]) -> str:
    """One of ``options`` exactly (a typo is refused, never mapped to a default)."""
    if not isinstance(value, str) or value not in options:
        raise ScenarioError(f"{_where(fn, name)}: must be one of {', '.join(map(repr, options))}, got {value!r:.80}")
    return value


def vector(value: object, name: str, fn: str = "", *, lo: float | None = 0.0, min_len: int = 1,
           length: int | None = None, positive_sum: bool = False, hi: float | None = None) -> np.ndarray:
    """A 1-d array of finite numbers in [``lo``, ``hi``] (length ``length`` when given)."""
    what = _where(fn, name)
    if isinstance(value, (str, bytes)):
        raise ScenarioError(f"{what}: expected a sequence of numbers, got {value!r:.80}")
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError, OverflowError):
        raise ScenarioError(f"{what}: expected a sequence of finite numbers, got {value!r:.80}") from None
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise ScenarioError(f"{what}: expected a 1-d sequence, got shape {arr.shape}")
    if len(arr) < min_len:
        raise ScenarioError(f"{what}: needs at least {min_len} value(s), got {len(arr)}")
    if length is not None and len(arr) != length:
        raise ScenarioError(f"{what}: has {len(arr)} values but must have {length} (one per route)")
    if not np.isfinite(arr).all():
        raise ScenarioError(f"{what}: values must be finite, got {value!r:.80}")
    if lo is not None and (arr < lo).any():
        raise ScenarioError(f"{what}: values must be >= {lo:g}, got {arr[arr < lo][0]:g}")
    if hi is not None and (arr > hi).any():
        raise ScenarioError(f"{what}: values must be <= {hi:g}, got {arr[arr > hi][0]:g}")
    if positive_sum and not arr.sum() > 0:
        raise ScenarioError(f"{what}: values must not all be zero")
    return arr


# What a ServiceProfile (tokenflow.latency.profiles) and a Scenario (tokenflow.scenarios.scenario_class) must have to be
# checked here: this module is the bottom of the package and imports neither (no import circle;
# see ARCHITECTURE.md), so it recognises them by their attributes, not their class.
PROFILE_ATTRS = ("gpus_per_replica", "max_batch", "step_fixed_s", "step_slope_s", "prefill_s_per_token",
                 "tokens_per_step", "limit_ms", "metric", "trace", "fixed_steps", "max_pool_utilisation",
                 "step_time", "steps_moments")
SCENARIO_ATTRS = ("name", "nodes", "workloads", "links", "params", "provenance", "modelling_choices", "with_choices")


def _has(obj: object, attrs: tuple[str, ...]) -> bool:
    return not isinstance(obj, (str, bytes, type)) and all(hasattr(obj, a) for a in attrs)


def profile(p: object, name: str = "p", fn: str = "") -> None:
    """``p`` must be a :class:`~tokenflow.latency.profiles.ServiceProfile` with a usable step model."""
    what = _where(fn, name)
    if not _has(p, PROFILE_ATTRS):
        raise ScenarioError(f"{what}: expected a tokenflow.latency.profiles.ServiceProfile, got {type(p).__name__}")
    integer(p.gpus_per_replica, "gpus_per_replica", what, lo=1)
    integer(p.max_batch, "max_batch", what, lo=1)
    for f in ("step_fixed_s", "step_slope_s", "prefill_s_per_token"):
        number(getattr(p, f), f, what, lo=0.0)
    number(p.tokens_per_step, "tokens_per_step", what, lo=0.0, lo_open=True)
    if p.step_fixed_s + p.step_slope_s <= 0:
        raise ScenarioError(f"{what}: step time t(1) = step_fixed_s + step_slope_s must be > 0")
    if p.trace is None and (p.fixed_steps is None or not isinstance(p.fixed_steps, numbers.Real)
                            or isinstance(p.fixed_steps, bool) or not (p.fixed_steps > 0)
                            or not math.isfinite(p.fixed_steps)):
        raise ScenarioError(f"{what}: a profile without a trace needs fixed_steps > 0, got {p.fixed_steps!r}")
    if p.limit_ms is not None:
        number(p.limit_ms, "limit_ms", what, lo=0.0, lo_open=True)
    if p.max_pool_utilisation is not None:
        number(p.max_pool_utilisation, "max_pool_utilisation", what, lo=0.0, hi=1.0)
    choice(p.metric, "metric", what, ("ttft", "completion"))


def flag(value: object, name: str, fn: str = "") -> bool:
    """A real boolean (numpy booleans accepted), never a string or a number."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise ScenarioError(f"{_where(fn, name)}: expected True or False, got {value!r:.80}")


def scenario(s: object, name: str = "s", fn: str = ""):
    """``s`` must be a loaded :class:`~tokenflow.scenarios.scenario_class.Scenario`."""
    if not _has(s, SCENARIO_ATTRS):
        hint = f"; load it first: tokenflow.load_scenario({s!r})" if isinstance(s, str) else ""
        raise ScenarioError(f"{_where(fn, name)}: expected a tokenflow.Scenario, got {type(s).__name__}{hint}")
    return s


def result_of(result: object, s: object | None, fn: str, name: str = "result", *,
              need_scenario: bool = True) -> None:
    """``result`` must be a cleared market result (``.dataset``) and (``need_scenario``) ``s`` a
    scenario with the same nodes and workloads (a result of another scenario is refused)."""
    ds = getattr(result, "dataset", None)
    if ds is None or not hasattr(ds, "coords") or "node" not in ds.coords or "workload" not in ds.coords:
        raise ScenarioError(f"{_where(fn, name)}: expected a market result (tokenflow.solve(...)), "
                            f"got {type(result).__name__}")
    if not need_scenario:
        return
    scenario(s, "s", fn)
    nodes, wls = [str(n) for n in ds["node"].values], [str(w) for w in ds["workload"].values]
    s_nodes, s_wls = [str(n) for n in s.nodes.index], [str(w) for w in s.workloads.index]
    if set(nodes) != set(s_nodes) or set(wls) != set(s_wls):
        diff = [f"{axis} {sorted(set(a) - set(b))[:4]} not in the scenario" for axis, a, b in
                (("nodes", nodes, s_nodes), ("workloads", wls, s_wls)) if set(a) - set(b)]
        diff += [f"scenario {axis} {sorted(set(b) - set(a))[:4]} not in the result" for axis, a, b in
                 (("nodes", nodes, s_nodes), ("workloads", wls, s_wls)) if set(b) - set(a)]
        raise ScenarioError(f"{fn}: the result is not a result of scenario {getattr(s, 'name', '?')!r}: "
                            + "; ".join(diff))


def profiles(value: object, name: str, fn: str) -> dict:
    """A mapping workload -> :class:`~tokenflow.latency.profiles.ServiceProfile` (each checked)."""
    if not hasattr(value, "items"):
        raise ScenarioError(f"{_where(fn, name)}: expected a mapping workload -> ServiceProfile, "
                            f"got {type(value).__name__}")
    for w, p in value.items():
        profile(p, f"{name}[{w!r}]", fn)
    return dict(value)


def _labels(got, want, what: str, axis: str, *, complete: bool) -> None:
    got, want = [str(x) for x in got], [str(x) for x in want]
    extra = [x for x in got if x not in want]
    if extra:
        raise ScenarioError(f"{what}: unknown {axis} {extra[:5]} (the result's are {want[:8]})")
    missing = [x for x in want if x not in got]
    if complete and missing:
        raise ScenarioError(f"{what}: missing {axis} {missing[:5]}")


def frame(df: object, name: str, fn: str, ds, *, hi: float | None = None, complete: bool = False) -> None:
    """``None`` or a node x workload DataFrame of finite values >= 0 (<= ``hi``) or NaN (no pool)
    over the result's labels (with ``complete``, every node and workload present)."""
    if df is None:
        return
    import pandas as pd

    what = _where(fn, name)
    if not isinstance(df, pd.DataFrame):
        raise ScenarioError(f"{what}: expected a pandas DataFrame (node x workload), got {type(df).__name__}")
    _labels(df.index, ds["node"].values, what, "nodes", complete=complete)
    _labels(df.columns, ds["workload"].values, what, "workloads", complete=complete)
    try:
        vals = df.to_numpy(dtype=float)
    except (TypeError, ValueError):
        raise ScenarioError(f"{what}: values must be numbers") from None
    vals = vals[~np.isnan(vals)]  # NaN: no pool (skipped where there is no flow)
    if not np.isfinite(vals).all() or (vals < 0).any() or (hi is not None and (vals > hi).any()):
        rng = f"[0, {hi:g}]" if hi is not None else ">= 0"
        raise ScenarioError(f"{what}: values must be finite numbers {rng} (or NaN for no pool)")


def series(sr: object, name: str, fn: str, ds) -> None:
    """``None`` or a Series indexed by every node of the result, finite values >= 0."""
    if sr is None:
        return
    import pandas as pd

    what = _where(fn, name)
    if not isinstance(sr, pd.Series):
        raise ScenarioError(f"{what}: expected a pandas Series indexed by node, got {type(sr).__name__}")
    _labels(sr.index, ds["node"].values, what, "nodes", complete=True)
    try:
        vals = sr.to_numpy(dtype=float)
    except (TypeError, ValueError):
        raise ScenarioError(f"{what}: values must be numbers") from None
    if not np.isfinite(vals).all() or (vals < 0).any():
        raise ScenarioError(f"{what}: values must be finite numbers >= 0")


def names(value: object, name: str, fn: str = "", *, allowed=None, min_len: int = 0, kind: str = "names",
          unique: bool = True) -> list:
    """A list of names (strings) from a list, tuple, set, generator or other iterable, read
    once (a generator is materialised).  Refused, naming the argument: a single string (a
    name is not a list of its characters), a non-iterable (``None``, a number), an element
    that is not a string (unhashable ones included), a repeated name (``unique``), fewer than
    ``min_len`` names, and (``allowed`` given) a name not in ``allowed``."""
    what = _where(fn, name)
    if isinstance(value, (str, bytes)):
        raise ScenarioError(f"{what}: expected a list of {kind}, got the string {value!r:.80} "
                            f"(write [{value!r:.60}] for one)")
    if hasattr(value, "items") and not hasattr(value, "__array__"):
        raise ScenarioError(f"{what}: expected a list of {kind}, got a mapping ({type(value).__name__})")
    try:
        items = list(value)  # type: ignore[arg-type]
    except TypeError:
        raise ScenarioError(f"{what}: expected a list of {kind}, got {type(value).__name__} {value!r:.80}") from None
    bad = [x for x in items if not isinstance(x, (str, np.str_))]
    if bad:
        raise ScenarioError(f"{what}: {kind} must be strings, got {bad[0]!r:.80} ({type(bad[0]).__name__})")
    items = [str(x) for x in items]
    if len(items) < min_len:
        raise ScenarioError(f"{what}: needs at least {min_len} {kind}, got {len(items)}")
    if unique:
        seen: set = set()
        dup = [x for x in items if x in seen or seen.add(x)]  # type: ignore[func-returns-value]
        if dup:
            raise ScenarioError(f"{what}: repeated {kind} {sorted(set(dup))[:5]} (give each once)")
    if allowed is not None:
        allowed = [str(x) for x in allowed]
        unknown = [x for x in items if x not in allowed]
        if unknown:
            raise ScenarioError(f"{what}: unknown {kind} {unknown[:5]} (known: {', '.join(allowed[:25])}"
                                f"{', ...' if len(allowed) > 25 else ''})")
    return items


def items_of(value: object, name: str, fn: str = "", *, kind: str = "values", min_len: int = 0) -> list:
    """Any non-string iterable read once into a list (a generator is materialised); a single
    string, a mapping or a non-iterable is refused naming the argument."""
    what = _where(fn, name)
    if isinstance(value, (str, bytes)) or (hasattr(value, "items") and not hasattr(value, "__array__")):
        raise ScenarioError(f"{what}: expected a list of {kind}, got {type(value).__name__} {value!r:.80}")
    try:
        items = list(value)  # type: ignore[arg-type]
    except TypeError:
        raise ScenarioError(f"{what}: expected a list of {kind}, got {type(value).__name__} {value!r:.80}") from None
    if len(items) < min_len:
        raise ScenarioError(f"{what}: needs at least {min_len} {kind}, got {len(items)}")
    return items
