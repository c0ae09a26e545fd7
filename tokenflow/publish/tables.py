"""The book's tables: one house style for every DataFrame a chapter shows.

Built on pandas' :class:`~pandas.io.formats.style.Styler` (no extra dependency; see
``book/artifact.md`` for why not great_tables).  The rules:

- units in the column headers (``units={"price": "$/M tokens"}`` -> "price ($/M tokens)");
- numbers to a number of significant figures per column (default 4), integer-valued
  columns as integers with thousands separators, ``-0`` as ``0``; a number below the
  solver's tolerance relative to its column (:data:`NOISE_REL`: 3.1e-10 next to values of
  order 1) as ``0``; a chapter's own format (a Styler) is kept unless it rounds a value
  away (0.002 shown as "0.00", or 0.0016 and 0.0024 both as "0.002"): such values get the
  house precision instead;
- booleans as words ("yes"/"no"), missing values as "–", infinities as "unbounded";
- an optional caption;
- headers as words with units (snake-case names and unit suffixes rewritten, :func:`header`);
  pandas' default row numbers (0, 1, 2, ...) are not shown;
- long text wraps inside its cell, numbers do not, so that a table fits the 676 px text
  column at 1280 px; every table sits inside a wrapper that scrolls (sideways only as a
  last resort, which ``make check`` reports; down for long tables); a wide table of long
  text (a provenance table) is drawn as one block per row instead (:func:`blocks`).

:func:`install` makes this the default HTML rendering of DataFrames, Series and Stylers
in an IPython kernel; ``import tokenflow.publish.book`` calls it, so every table in the book gets
the house style without any notebook asking for it.
"""

from __future__ import annotations

import html
import math
import numbers
import re
from collections.abc import Mapping

import numpy as np
import pandas as pd
from pandas.io.formats.style import Styler

from ..core.errors import TokenflowError

MISSING = "–"  # en dash
UNBOUNDED = "unbounded"
YES, NO = "yes", "no"
DEFAULT_SIG = 4
# a table wider than this many characters (sum of the widest cell per column) with a long
# text column is drawn as one block per row (the text column is ~95 characters at 1280 px)
BLOCK_WIDTH_CHARS = 100
LONG_TEXT_CHARS = 40
MAX_ROWS = 400  # longer tables are cut (with a note) to keep pages light
LONG_TABLE_ROWS = 25  # longer tables scroll down inside a box of 36 lines
NOISE_REL = 1e-9  # |x| below this times max(1, the column's largest |value|) is solver round-off: shown as 0
MAX_ROUNDING = 0.05  # a chapter's format may round a value by at most this fraction of it

WRAP_STYLE = "overflow-x:auto;max-width:100%;max-height:36em;overflow-y:auto;margin:0.5em 0 1em 0"
TABLE_CSS = [
    {"selector": "", "props": "border-collapse:collapse;font-size:0.85em;font-variant-numeric:tabular-nums;"
                              "margin:0;width:auto;max-width:100%;"},
    {"selector": "caption", "props": "caption-side:top;text-align:left;font-weight:600;padding:0 0 0.4em 0;"},
    {"selector": "th", "props": "text-align:left;vertical-align:bottom;padding:0.25em 0.5em;"
                                "border-bottom:1px solid #888;white-space:normal;overflow-wrap:break-word;"
                                "hyphens:auto;"},
    {"selector": "td", "props": "padding:0.2em 0.5em;border-bottom:1px solid #e4e4e4;overflow-wrap:break-word;"},
    {"selector": "th.row_heading", "props": "font-weight:normal;border-bottom:1px solid #e4e4e4;"
                                            "vertical-align:top;"},
]


# --------------------------------------------------------------------------- values

def _is_bool(x) -> bool:
    return isinstance(x, (bool, np.bool_))


def _is_number(x) -> bool:
    return isinstance(x, numbers.Number) and not _is_bool(x)


def significant(x: float, sig: int = DEFAULT_SIG) -> str:
    """``x`` to ``sig`` significant figures in plain notation (scientific only below 1e-4
    or from 1e15), thousands separated, trailing zeros dropped; ``-0`` as ``0``."""
    if sig < 1:
        raise TokenflowError(f"significant figures must be at least 1, got {sig}")
    x = float(x)
    if x == 0:
        return "0"
    mag = math.floor(math.log10(abs(x)))
    if mag < -4 or mag >= 15:
        mant, exp = f"{x:.{sig - 1}e}".split("e")
        mant = mant.rstrip("0").rstrip(".") if "." in mant else mant
        return (mant + "e" + exp).replace("-", "−", 1) if x < 0 else mant + "e" + exp
    decimals = max(sig - 1 - mag, 0)
    rounded = round(x, decimals)
    if rounded == 0:
        return "0"
    text = f"{rounded:,.{decimals}f}"
    if "." in text:  # up to ``sig`` figures: 2.500 -> 2.5 (a column then reads cleanly)
        text = text.rstrip("0").rstrip(".")
    return "−" + text[1:] if text.startswith("-") else text


def noise_tolerance(values) -> float:
    """Below this absolute value a number of this column is solver round-off (shown as 0):
    :data:`NOISE_REL` times the column's largest finite magnitude, at least 1."""
    vals = [abs(float(v)) for v in values if _is_number(v) and not isinstance(v, complex)]
    fin = [v for v in vals if math.isfinite(v)]
    return NOISE_REL * max([1.0, *fin])


def cell(x, sig: int = DEFAULT_SIG, integer: bool = False, tol: float = 0.0) -> str:
    """The house text of one value: words for booleans, "–" for missing, "unbounded" for
    infinities, numbers within ``tol`` of 0 as 0, integers as integers, other numbers to
    ``sig`` significant figures."""
    if x is None:
        return MISSING
    if _is_bool(x):
        return YES if x else NO
    if _is_number(x):
        if isinstance(x, complex):
            return str(x)
        v = float(x)
        if math.isnan(v):
            return MISSING
        if math.isinf(v):
            return UNBOUNDED if v > 0 else f"−{UNBOUNDED}"
        if abs(v) <= tol:
            return "0"
        if integer or (isinstance(x, (numbers.Integral, np.integer))):
            return f"{int(round(v)):,}".replace("-", "−")
        return significant(v, sig)
    if x is pd.NA or x is pd.NaT:
        return MISSING
    if isinstance(x, str):
        return {"nan": MISSING, "NaN": MISSING, "inf": UNBOUNDED, "True": YES, "False": NO}.get(x, x)
    if isinstance(x, (list, tuple)):
        return ", ".join(cell(v, sig) for v in x) if x else MISSING
    return str(x)


def integer_valued(col: pd.Series) -> bool:
    """True if every finite value of a numeric column is a whole number (counts stored as float)."""
    if col.dtype == bool or not (pd.api.types.is_numeric_dtype(col.dtype) or col.dtype == object):
        return False
    vals = [v for v in col if _is_number(v) and not isinstance(v, complex)]
    if not vals or len(vals) < len(col.dropna()):
        return False
    arr = np.asarray(vals, dtype=float)
    fin = arr[np.isfinite(arr)]
    return fin.size > 0 and bool(np.all(fin == np.round(fin))) and bool(np.all(np.abs(fin) < 1e15))


TAG_RE = re.compile(r"<[^>]+>")


def text_length(x) -> int:
    """Characters a cell shows (a link's HTML tags do not count)."""
    return len(TAG_RE.sub("", cell(x)))


def with_unit(name, unit: str | None) -> str:
    return f"{name} ({unit})" if unit else str(name)


# snake-case unit suffixes of column names -> (unit shown in the header)
UNIT_SUFFIXES = (
    ("_usd_per_gbps_yr", "$/Gbps-yr"), ("_usd_per_mw_yr", "$/MW-yr"), ("_usd_per_gb", "$/GB"),
    ("_usd_per_mtok", "$/M tokens"), ("_usd_per_kwh", "$/kWh"), ("_usd_per_h", "$/h"), ("_usd_per_yr", "$/yr"),
    ("_usd", "$"), ("_us_per_km", "µs/km"), ("_per_h", "per h"), ("_mtok", "M tokens"), ("_mwh", "MWh"),
    ("_mtok_per_h", "M tokens/h"), ("_gbps", "Gb/s"), ("_km", "km"), ("_ms", "ms"), ("_mw", "MW"),
    ("_kw", "kW"), ("_kwh", "kWh"), ("_pct", "%"), ("_gb", "GB"), ("_s", "s"),
)


def header(name):
    """A column name with its snake-case unit suffix written as a unit:
    ``"latency_ms"`` -> ``"latency (ms)"``, ``"electricity_usd_per_kwh"`` -> ``"electricity ($/kWh)"``."""
    if not isinstance(name, str) or " " in name or "(" in name:
        return name
    for suffix, unit in UNIT_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return f"{name[: -len(suffix)].replace('_', ' ')} ({unit})"
    return name.replace("_", " ") if "_" in name else name


# --------------------------------------------------------------------------- tables

def table(df: pd.DataFrame | pd.Series, *, caption: str | None = None, units: Mapping[str, str] | None = None,
          sig: int | Mapping[str, int] = DEFAULT_SIG, index: bool = True) -> Styler:
    """``df`` as a house-style :class:`Styler`: ``units`` (column -> unit) go into the
    headers, ``sig`` (one number, or column -> number) sets significant figures."""
    if isinstance(df, pd.Series):
        df = df.to_frame(name=df.name if df.name is not None else "value")
    if not isinstance(df, pd.DataFrame):
        raise TokenflowError(f"table() takes a DataFrame or Series, got {type(df).__name__}")
    units = dict(units or {})
    unknown = set(units) - {str(c) for c in df.columns}
    if unknown:
        raise TokenflowError(f"units given for columns not in the table: {sorted(unknown)}")
    if (index and df.index.nlevels == 1 and df.index.name is not None and not isinstance(df.columns, pd.MultiIndex)
            and str(df.index.name) not in {str(c) for c in df.columns}):
        # the index's name heads its own column (pandas would give it a header row of its own)
        df = df.reset_index()
        index = False
    if len(df) > MAX_ROWS:
        df = df.iloc[:MAX_ROWS]
        caption = f"{caption + ' ' if caption else ''}(first {MAX_ROWS} rows)"
    if units:
        if isinstance(sig, Mapping):
            sig = {with_unit(k, units.get(k)): v for k, v in sig.items()}
        df = df.rename(columns={c: with_unit(c, units.get(str(c))) for c in df.columns})
    if not isinstance(df.columns, pd.MultiIndex) and not df.columns.duplicated().any():
        new = {c: header(c) for c in df.columns}
        if len(set(new.values())) == len(new):
            if isinstance(sig, Mapping):
                sig = {str(new.get(k, k)): v for k, v in sig.items()}
            df = df.rename(columns=new)
    st = df.style
    if df.columns.duplicated().any():  # Styler formats by label: one format for all
        st = st.format(lambda x: cell(x, sig if isinstance(sig, int) else DEFAULT_SIG))
    else:
        for j, c in enumerate(df.columns):
            s = sig.get(str(c), DEFAULT_SIG) if isinstance(sig, Mapping) else sig
            integer = integer_valued(df.iloc[:, j])
            tol = noise_tolerance(df.iloc[:, j])
            st = st.format(lambda x, s=s, integer=integer, tol=tol: cell(x, s, integer, tol),
                           subset=pd.IndexSlice[:, [c]])
            if pd.api.types.is_numeric_dtype(df.iloc[:, j].dtype):  # a number is not broken over lines
                st = st.set_properties(subset=pd.IndexSlice[:, [c]], **{"white-space": "nowrap",
                                                                        "overflow-wrap": "normal"})
    for j, c in enumerate(df.columns):  # long text gets room to wrap in, not a one-word column
        col = df.iloc[:, j]
        if not pd.api.types.is_numeric_dtype(col.dtype) and not df.columns.duplicated().any():
            longest = max((text_length(v) for v in col.iloc[:60]), default=0)
            if longest > LONG_TEXT_CHARS:  # (and a long token such as a URL may break anywhere)
                st = st.set_properties(subset=pd.IndexSlice[:, [c]], **{"min-width": "12em",
                                                                        "overflow-wrap": "anywhere"})
    st = st.format_index(lambda x: cell(x), axis=0).format_index(lambda x: cell(x), axis=1)
    st = st.set_table_styles(TABLE_CSS).set_table_attributes('class="tf-table"')
    if caption:
        st = st.set_caption(caption)
    if not index or row_numbers(df.index):
        st = st.hide(axis="index")
    return st


def row_numbers(index: pd.Index) -> bool:
    """True for pandas' default row numbers (an unnamed 0, 1, 2, ... index): no reader needs them."""
    return isinstance(index, pd.RangeIndex) and index.name is None and index.start == 0 and index.step == 1


def _wrap(inner: str, rows: int = 0, kind: str = "tf-table-wrap") -> str:
    """The table in a box that scrolls sideways when it must (and down from
    :data:`LONG_TABLE_ROWS` rows)."""
    style = WRAP_STYLE if rows > LONG_TABLE_ROWS else WRAP_STYLE.replace("max-height:36em;overflow-y:auto;", "")
    return f'<div class="{kind}" style="{style}">{inner}</div>'


def render(df: pd.DataFrame | pd.Series | Styler, **kw) -> str:
    """House-style HTML of a table (a Styler is restyled, keeping its own formats for
    ordinary values); wide tables of long text become :func:`blocks`."""
    if isinstance(df, Styler):
        return _wrap(restyle(df).to_html(), len(df.data))
    frame = df.to_frame() if isinstance(df, pd.Series) else df
    if isinstance(frame, pd.DataFrame) and too_wide(frame):
        return blocks(frame, caption=kw.get("caption"))
    return _wrap(table(df, **kw).to_html(), len(frame))


def too_wide(df: pd.DataFrame) -> bool:
    """True when the table cannot fit the text column and has a long text column, so that
    one block per row reads better than a sideways scroll."""
    if df.empty or isinstance(df.columns, pd.MultiIndex):
        return False
    widths = [max([len(str(c))] + [text_length(v) for v in df.iloc[:60, j]]) for j, c in enumerate(df.columns)]
    idx = max([len(str(v)) for v in df.index[:60]] + [0])
    long_text = any(w > LONG_TEXT_CHARS and not pd.api.types.is_numeric_dtype(df.iloc[:, j].dtype)
                    for j, w in enumerate(widths))
    return long_text and sum(min(w, 60) for w in widths) + min(idx, 40) > BLOCK_WIDTH_CHARS


def blocks(df: pd.DataFrame, *, caption: str | None = None, title: str | None = None,
           sig: int = DEFAULT_SIG) -> str:
    """One block per row (the row's label as a heading, then ``column: value`` lines): the
    rendering of wide tables of long text, such as the provenance table."""
    if not isinstance(df, pd.DataFrame):
        raise TokenflowError(f"blocks() takes a DataFrame, got {type(df).__name__}")
    if title is not None and title not in df.columns:
        raise TokenflowError(f"blocks(): no column {title!r} to title the blocks with")
    if title is None and isinstance(df.index, pd.RangeIndex):  # row numbers are no heading
        text_cols = [c for c in df.columns if not pd.api.types.is_numeric_dtype(df[c].dtype)]
        title = text_cols[0] if text_cols else None
    parts = []
    if caption:
        parts.append(f'<p class="tf-blocks-caption" style="font-weight:600;margin:0 0 0.4em 0">'
                     f'{html.escape(caption)}</p>')
    ints = {c: integer_valued(df[c]) for c in df.columns} if not df.columns.duplicated().any() else {}
    for label, row in df.iloc[:MAX_ROWS].iterrows():
        head = cell(row[title]) if title is not None else cell(label)
        items = "".join(
            f'<dt style="font-weight:600;float:left;clear:left;min-width:9em;padding-right:0.8em">'
            f"{html.escape(str(c))}</dt>"
            f'<dd style="margin:0 0 0.15em 10em">{html.escape(cell(v, sig, ints.get(c, False)) or "–")}</dd>'
            for c, v in row.items() if c != title)
        parts.append(f'<div class="tf-block" style="border-left:3px solid #0072B2;padding:0.3em 0 0.3em 0.8em;'
                     f'margin:0 0 0.8em 0;break-inside:avoid;clear:both;display:flow-root">'
                     f'<div style="font-weight:700">{html.escape(head)}'
                     f'</div><dl style="margin:0.2em 0 0 0;font-size:0.85em">{items}</dl></div>')
    return f'<div class="tf-blocks" style="max-width:100%;overflow-wrap:anywhere">{"".join(parts)}</div>'


def _shown_number(text: str) -> float | None:
    """The number a formatted cell shows ("1,234.5", "−0.002", "12.5%" -> 0.125), or None."""
    s = str(text).strip().replace(",", "").replace("−", "-")
    scale = 1.0
    if s.endswith("%"):
        s, scale = s[:-1].strip(), 0.01
    try:
        return float(s) * scale
    except ValueError:
        return None


def rounds_away(v: float, text: str) -> bool:
    """True if ``text`` (a chapter's format of ``v``) loses the value: a non-zero shown as 0,
    or rounded by more than :data:`MAX_ROUNDING` of it (0.0016 as "0.002").  A format that
    rescales (shows millions, or percent without a sign) is left alone."""
    shown = _shown_number(text)
    if shown is None or v == 0:
        return False
    if shown == 0:
        return True
    ratio = shown / v
    return 0.1 < ratio < 10 and abs(shown - v) > MAX_ROUNDING * abs(v)


def _guard(func, integer: bool = False, tol: float = 0.0):
    """A Styler display function that leaves house words for booleans, missing and
    unbounded values (and integer-valued columns), 0 for solver round-off (within ``tol``),
    house precision where ``func`` would round a value away, and ``func`` for the rest."""
    if getattr(func, "_tf_guard", False):
        return func

    def guarded(x):
        if x is None or _is_bool(x) or isinstance(x, str) and x in {"nan", "NaN", "inf", "True", "False"}:
            return cell(x)
        if _is_number(x) and not isinstance(x, complex):
            v = float(x)
            if not math.isfinite(v) or integer:
                return cell(x, integer=integer)
            if abs(v) <= tol:
                return "0"
            out = func(x)
            return cell(x, DEFAULT_SIG) if rounds_away(v, out) else out
        if x is pd.NA or x is pd.NaT:
            return MISSING
        return func(x)
    guarded._tf_guard = True
    return guarded


def _worded(func):
    """A column-label display function whose snake-case labels read as words with units
    (:func:`header`)."""
    if getattr(func, "_tf_worded", False):
        return func

    def worded(x):
        out = func(x)
        return header(out) if isinstance(out, str) else out
    worded._tf_worded = True
    return worded


def restyle(st: Styler) -> Styler:
    """Apply the house style to a Styler a chapter made itself (``df.style.format(...)``):
    its formats are kept, but booleans, missing and unbounded values, integer-valued
    columns and the table's CSS follow the house rules."""
    data = st.data
    funcs = getattr(st, "_display_funcs", None)
    if isinstance(funcs, dict):
        ints = [integer_valued(data.iloc[:, j]) for j in range(data.shape[1])]
        tols = [noise_tolerance(data.iloc[:, j]) for j in range(data.shape[1])]
        for r in range(data.shape[0]):
            for c in range(data.shape[1]):
                funcs[(r, c)] = _guard(funcs[(r, c)], ints[c], tols[c])
    for name in ("_display_funcs_index", "_display_funcs_columns"):
        f = getattr(st, name, None)
        if isinstance(f, dict):
            shape = data.index.nlevels if name.endswith("index") else data.columns.nlevels
            n = data.shape[0] if name.endswith("index") else data.shape[1]
            for r in range(n):
                for lev in range(shape):
                    key = (r, lev) if name.endswith("index") else (lev, r)
                    f[key] = _guard(f[key]) if name.endswith("index") else _worded(_guard(f[key]))
    if not getattr(st, "_tf_styled", False):
        if row_numbers(data.index):
            st.hide(axis="index")
        st.set_table_styles(TABLE_CSS, overwrite=False)
        st.set_table_attributes('class="tf-table"')
        st._tf_styled = True
    return st


# --------------------------------------------------------------------------- IPython

def _frame_html(obj) -> str | None:
    try:
        return render(obj)
    except Exception:  # never break a page over a table's looks: fall back to pandas' own HTML
        own = getattr(obj, "_repr_html_", None)
        return own() if own is not None else None


def install(ip=None) -> bool:
    """Make :func:`render` the HTML rendering of DataFrames, Series and Stylers in the
    running IPython kernel; False when not in IPython."""
    if ip is None:
        try:
            from IPython import get_ipython
        except ImportError:  # pragma: no cover - IPython is a dependency of the book
            return False
        ip = get_ipython()
    if ip is None:
        return False
    fmt = ip.display_formatter.formatters["text/html"]
    for cls in (pd.DataFrame, pd.Series, Styler):
        fmt.for_type(cls, _frame_html)
    return True
