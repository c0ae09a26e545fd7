"""One validating reader for every data file the package reads (CSV tables and YAML documents).

The limits are the scenario loader's (:mod:`tokenflow.scenarios.scenario`): regular files only (a FIFO,
a device or a directory is refused before it is opened, so nothing hangs), at most
:data:`MAX_FILE_BYTES` bytes, UTF-8 text without NUL bytes; YAML nested at
most :data:`MAX_YAML_DEPTH` levels, at most
:data:`MAX_YAML_VALUES` values once aliases are expanded (an alias bomb is
refused before it is expanded), repeated mapping keys refused.  CSV tables: a header naming
every required column once, at least one row, rows of the header's width; cells are read as
text and converted by :func:`number_column` (vectorised: a hundred thousand rows take
milliseconds).  Every refusal is a :class:`~tokenflow.core.errors.ScenarioError` naming the file.
"""

from __future__ import annotations

import csv
import io
import math
import numbers
import os
import stat
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from ..core.errors import ScenarioError
from ..core.validate import shown

MAX_PROBLEMS = 20  # problems listed one by one; the rest are counted
# limits on what is read (a scenario file is a few tens of kB)
MAX_FILE_BYTES = 8 * 1024 * 1024
MAX_YAML_DEPTH = 64
MAX_YAML_VALUES = 500_000  # values after alias expansion
YAML11_BOOLS = "yes/no/on/off/y/n/true/false"


# --------------------------------------------------------------------------- reading text and YAML
# (the scenario loader's reader; here, below tokenflow.scenarios.scenario, so that every data file is read
# through this module without an import circle)

class _ReadLimit(Exception):
    """A bound on what is read was exceeded (depth, alias expansion)."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader with bounds: nesting depth, values after alias expansion; it records
    duplicate and non-text mapping keys instead of silently overwriting or converting."""

    duplicates: list[str]

    def compose_node(self, parent, index):  # type: ignore[no-untyped-def]
        self._depth = getattr(self, "_depth", 0) + 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                mark = self.peek_event().start_mark
                raise _ReadLimit(f"nested more than {MAX_YAML_DEPTH} levels deep (line {mark.line + 1})")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node, deep=False):  # type: ignore[no-untyped-def]
        if not isinstance(node, yaml.MappingNode):
            return super().construct_mapping(node, deep=deep)
        self.flatten_mapping(node)
        mapping: dict = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            if not isinstance(key, str):
                raw = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
                if isinstance(key, bool):
                    why = (f"key {raw!r} was read as the boolean {key} (YAML 1.1 reads {YAML11_BOOLS} as "
                           f"booleans); put it in quotes: '{raw}'")
                elif isinstance(key, (int, float)):
                    why = f"key {raw} was read as a number; ids and field names are text: put it in quotes: '{raw}'"
                elif key is None:
                    why = "empty mapping key"
                else:
                    why = f"a mapping key must be text, got a {type(key).__name__}"
                self.duplicates.append(f"line {line}: {why}")
                continue
            if key in mapping:
                self.duplicates.append(f"line {line}: duplicate key {key!r}")
            mapping[key] = self.construct_object(value_node, deep=deep)
        return mapping


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                                 lambda loader, node: loader.construct_mapping(node))


def _expanded_size(root: yaml.Node) -> int:
    """Number of values the document holds once aliases are expanded (bounded)."""
    memo: dict[int, int] = {}
    active: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in memo:
            return memo[key]
        if key in active:
            raise _ReadLimit("an alias refers to the collection that contains it (recursive alias)")
        active.add(key)
        if isinstance(node, yaml.SequenceNode):
            n = 1 + sum(size(c) for c in node.value)
        elif isinstance(node, yaml.MappingNode):
            n = 1 + sum(size(k) + size(v) for k, v in node.value)
        else:
            n = 1
        active.discard(key)
        memo[key] = n = min(n, MAX_YAML_VALUES + 1)
        return n

    return size(root)


def parse_yaml(text: str, label: str) -> tuple[Any, list[str]]:
    """Parse YAML text safely and within bounds.  Returns (document, problems) where the
    problems (duplicate or non-text keys) each name ``label`` and the line; raises
    :class:`ScenarioError` naming ``label`` for syntax errors and exceeded bounds."""
    loader = _UniqueKeyLoader(text)
    loader.duplicates = []
    try:
        node = loader.get_single_node()
        if node is None:
            return None, []
        n = _expanded_size(node)
        if n > MAX_YAML_VALUES:
            raise _ReadLimit(f"holds more than {MAX_YAML_VALUES:,} values once aliases are expanded "
                             "(an alias bomb?); write the values out instead of nesting aliases")
        doc = loader.construct_document(node)
    except _ReadLimit as exc:
        raise ScenarioError(f"{label}: refused: {exc}") from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{label}: not valid YAML: {exc}".replace("\n", " ")) from None
    except RecursionError:
        raise ScenarioError(f"{label}: refused: nested too deeply") from None
    finally:
        loader.dispose()
    return doc, [f"{label}: {d}" for d in loader.duplicates]


def read_text_file(path: str | Path, what: str = "scenario file") -> str:
    """Read a small UTF-8 text file: regular files only, at most ``MAX_FILE_BYTES``,
    no NUL bytes.  Every refusal is a :class:`ScenarioError` naming the file."""
    path = Path(path)
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            kind = "a directory" if stat.S_ISDIR(st.st_mode) else "a device, pipe or socket"
            raise ScenarioError(f"{path}: not a regular file ({kind}); give a YAML {what}")
        if st.st_size > MAX_FILE_BYTES:
            raise ScenarioError(f"{path}: {st.st_size:,} bytes is more than a {what} may hold "
                                f"({MAX_FILE_BYTES:,} bytes)")
        with open(path, "rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise ScenarioError(f"{what} not found: {path}") from None
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read the {what}: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise ScenarioError(f"{path}: more than {MAX_FILE_BYTES:,} bytes; not a {what}")
    if b"\x00" in data:
        line = data[:data.index(b"\x00")].count(b"\n") + 1
        raise ScenarioError(f"{path}: contains a NUL byte (line {line}); a {what} is UTF-8 text")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ScenarioError(f"{path}: not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line}); "
                            f"save the {what} as UTF-8") from None
    return text.removeprefix("\ufeff")


def packaged(name: str) -> str:
    """Label of a data file shipped with the package (``tokenflow/data/<name>``)."""
    return f"tokenflow/data/{name}"


def read_text(source: str | os.PathLike | None, packaged_name: str | None = None, what: str = "data file") -> str:
    """The text of ``source`` (a path), or of the packaged file ``packaged_name`` when ``source``
    is None; regular files only, size-limited, UTF-8 (see the module docstring)."""
    if source is None:
        if packaged_name is None:
            raise ScenarioError(f"{what}: no file given")
        res = resources.files("tokenflow").joinpath("data", packaged_name)
        with resources.as_file(res) as p:
            return read_text_file(p, what)
    if not isinstance(source, (str, os.PathLike)) or not str(source).strip():
        raise ScenarioError(f"{what}: expected a file path (str or pathlib.Path), got "
                            f"{type(source).__name__} {source!r:.80}")
    require_regular_file(Path(source), what)
    return read_text_file(Path(source), what)


def require_regular_file(path: Path, what: str) -> None:
    """Refuse, before opening it, anything but a regular file (a FIFO would block the reader)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ScenarioError(f"{what} not found: {path}") from None
    except (OSError, ValueError) as exc:
        raise ScenarioError(f"{path}: cannot read the {what}: {getattr(exc, 'strerror', None) or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        kind = "a directory" if stat.S_ISDIR(st.st_mode) else "a device, pipe or socket"
        raise ScenarioError(f"{path}: not a regular file ({kind}); give the {what} as a file")


def limit_problems(problems: list[str]) -> list[str]:
    """The first :data:`MAX_PROBLEMS` problems and a count of the rest."""
    if len(problems) <= MAX_PROBLEMS:
        return problems
    return problems[:MAX_PROBLEMS] + [f"... and {len(problems) - MAX_PROBLEMS:,} more problems"]


def read_csv(source: str | os.PathLike | None, *, columns: Sequence[str], label: str,
             packaged_name: str | None = None, what: str = "data file", comment: str | None = None,
             allow_empty: bool = False) -> pd.DataFrame:
    """A CSV table as text cells (``dtype=str``, empty cells as ``""``), checked: the header
    names each required column in ``columns`` (extra columns kept) and no column twice;
    at least one row unless ``allow_empty``; every row as wide as the header."""
    text = read_text(source, packaged_name, what)
    lines = [ln for ln in text.splitlines() if ln.strip() and not (comment and ln.lstrip().startswith(comment))]
    if not lines:
        raise ScenarioError(f"{label}: empty file; expected a header with {', '.join(columns)}")
    try:
        header = next(csv.reader([lines[0]]))
    except csv.Error as exc:
        raise ScenarioError(f"{label}: cannot read the header: {exc}") from None
    header = [h.strip() for h in header]
    # every record as wide as the header (pandas would take extra leading fields as an index
    # and silently shift the columns)
    try:
        for k, rec in enumerate(csv.reader(io.StringIO(text))):
            if not rec or (len(rec) == 1 and not rec[0].strip()):
                continue
            if comment and rec[0].lstrip().startswith(comment):
                continue
            if len(rec) != len(header) and not (comment and any(comment in f for f in rec)):
                raise ScenarioError(f"{label}: record {k + 1} has {len(rec)} fields, the header {len(header)}")
    except csv.Error as exc:
        raise ScenarioError(f"{label}: not a readable CSV table: {exc}") from None
    dup = sorted({h for h in header if header.count(h) > 1})
    if dup:
        raise ScenarioError(f"{label}: column(s) {', '.join(map(repr, dup))} given more than once")
    missing = [c for c in columns if c not in header]
    if missing:
        raise ScenarioError(f"{label}: missing columns {missing} (need {', '.join(columns)})")
    try:
        df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, comment=comment,
                         skip_blank_lines=True, on_bad_lines="error", engine="c")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError, csv.Error) as exc:
        raise ScenarioError(f"{label}: not a readable CSV table: {str(exc).strip()[:200]}") from None
    df.columns = [str(c).strip() for c in df.columns]
    if df.empty and not allow_empty:
        raise ScenarioError(f"{label}: no rows (a header only)")
    return df


def _one(x: Any, text: bool) -> tuple[float, str | None]:
    """(value, None) for a real number, (nan, reason) otherwise; text is parsed as a number
    when ``text`` (cells of a file), else refused."""
    if isinstance(x, (bool, np.bool_)):
        return math.nan, "expected a number"
    if isinstance(x, str) and text:
        t = x.strip()
        if not t:
            return math.nan, "missing"
        try:
            v = float(t)
        except ValueError:
            return math.nan, "expected a number"
        return v, None
    if not isinstance(x, numbers.Real):
        return math.nan, "expected a number"
    try:
        return float(x), None
    except (OverflowError, ValueError, TypeError):
        return math.inf, None  # an integer beyond a float: refused as not finite


def number_column(values: object, where: Sequence[str] | None, col: str, unit: str, *, lo: float = 0.0,
                  lo_open: bool = False, hi: float | None = None, whole: bool = False,
                  missing_ok: bool = False, text: bool = True) -> tuple[np.ndarray, list[str]]:
    """Check a column of numbers at once: each a real number (not a boolean), finite, >= ``lo``
    (> ``lo`` with ``lo_open``), <= ``hi``, whole (``whole``); text cells are parsed.  Returns
    (floats, problems), each problem naming ``where[i]`` (the row) and ``col``; missing cells
    are NaN and (unless ``missing_ok``) a problem.  ``text=False``: a string is not a number
    (values given in Python rather than read from a file)."""
    arr = values.to_numpy() if isinstance(values, (pd.Series, pd.Index)) else np.asarray(values, dtype=object)
    n = len(arr)
    if arr.dtype.kind in "fiu":
        out = arr.astype(float)
        reason = np.full(n, None, dtype=object)
        if arr.dtype.kind == "f":
            reason[np.isnan(out)] = "missing" if missing_ok else "expected a finite number"
    else:
        pairs = [_one(x, text) for x in arr]
        out = np.fromiter((p[0] for p in pairs), dtype=float, count=n)
        reason = np.array([p[1] for p in pairs], dtype=object)
    problems: list[str] = []
    with np.errstate(invalid="ignore"):
        fin = np.isfinite(out)
        bad_range = fin & ((out < lo) | ((out == lo) if lo_open else False))
        if hi is not None:
            bad_range |= fin & (out > hi)
        not_whole = fin & whole & (out != np.round(out))
    bad = (reason != None) | ~fin | bad_range | not_whole  # noqa: E711 - elementwise
    if missing_ok:
        bad &= reason != "missing"
    if not bad.any():
        return out, problems
    if lo == 0 and hi is None:
        need = "positive" if lo_open else "non-negative"
    else:
        need = f"{'>' if lo_open else '>='} {lo:g}" + (f" and <= {hi:g}" if hi is not None else "")
    for i in np.flatnonzero(bad)[:MAX_PROBLEMS + 1]:
        w = f"{where[i]}: " if where is not None else f"row {i + 1}: "
        raw = arr[i]
        if reason[i] == "missing":
            problems.append(f"{w}{col}: missing ({unit})")
        elif reason[i] is not None:
            problems.append(f"{w}{col}: expected a finite number of {unit}, got {shown(raw, 60)}")
        elif not fin[i]:
            problems.append(f"{w}{col}: expected a finite number of {unit}, got {shown(raw, 60)}")
        elif not_whole[i]:
            problems.append(f"{w}{col}: must be a whole number, got {shown(raw, 60)}")
        else:
            problems.append(f"{w}{col}: must be {need} ({unit}), got {shown(raw, 60)}")
    if bad.sum() > MAX_PROBLEMS + 1:
        problems.append(f"... and {int(bad.sum()) - MAX_PROBLEMS - 1:,} more problems in {col}")
    return out, problems


def duplicate_rows(df: pd.DataFrame, key: Sequence[str], label: str, *,
                   what: str = "rows") -> list[str]:
    """Problems for rows that repeat the ``key`` columns (1 = first data row)."""
    dup = df.duplicated(list(key), keep=False)
    if not dup.any():
        return []
    groups: dict[tuple, list[int]] = {}
    for i, k in zip(df.index[dup], df.loc[dup, list(key)].itertuples(index=False, name=None)):
        groups.setdefault(k, []).append(i)
    out = []
    for k, idx in list(groups.items())[:MAX_PROBLEMS]:
        out.append(f"{label}: {what} {', '.join(f'{c}={v!r}' for c, v in zip(key, k))} given more than once "
                   f"(rows {', '.join(str(int(i) + 1) for i in idx)}); keep one")
    return out


def scan_yaml(text: str, label: str, *, max_values: int = MAX_YAML_VALUES, max_depth: int = MAX_YAML_DEPTH) -> int:
    """Walk the YAML event stream once (libyaml when available) and refuse, before anything is
    built, a document nested deeper than ``max_depth`` or holding more than ``max_values``
    values once aliases are expanded (an alias bomb stops at the first alias past the bound;
    a large file at the value past it).  Returns the number of values."""
    import yaml

    loader_cls = yaml.CSafeLoader if getattr(yaml, "__with_libyaml__", False) else yaml.SafeLoader
    loader = loader_cls(text)
    stack: list[list] = []  # open collections: [size, anchor]
    sizes: dict[str, int] = {}
    total = 0
    try:
        while loader.check_event():
            ev = loader.get_event()
            if isinstance(ev, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                if len(stack) >= max_depth:
                    raise ScenarioError(f"{label}: refused: nested more than {max_depth} levels deep "
                                        f"(line {ev.start_mark.line + 1})")
                stack.append([1, ev.anchor])
                total += 1
                continue
            if isinstance(ev, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                size, anchor = stack.pop()
                if anchor is not None:
                    sizes[anchor] = size
                if stack:
                    stack[-1][0] += size
                continue
            if isinstance(ev, yaml.ScalarEvent):
                n = 1
                if ev.anchor is not None:
                    sizes[ev.anchor] = 1
            elif isinstance(ev, yaml.AliasEvent):
                if ev.anchor not in sizes and any(a == ev.anchor for _, a in stack):
                    raise ScenarioError(f"{label}: refused: an alias refers to the collection that contains it "
                                        "(recursive alias)")
                n = sizes.get(ev.anchor, 1)
            else:
                continue
            total += n
            if stack:
                stack[-1][0] += n
            if total > max_values:
                raise ScenarioError(f"{label}: refused: holds more than {max_values:,} values once aliases are "
                                    f"expanded (line {ev.start_mark.line + 1}); an alias bomb, or a file too "
                                    "large for YAML: give large tables as CSV files")
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{label}: not valid YAML: {exc}".replace("\n", " ")) from None
    finally:
        loader.dispose()
    return total


def _unique_loader():
    """A safe YAML loader (libyaml when available) that records repeated and non-text keys
    (the scenario loader's rule) instead of keeping the last one."""
    base = yaml.CSafeLoader if getattr(yaml, "__with_libyaml__", False) else yaml.SafeLoader

    class _Loader(base):  # type: ignore[misc, valid-type]
        duplicates: list[str]
        construct_mapping = _UniqueKeyLoader.construct_mapping

    _Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                            lambda loader, node: loader.construct_mapping(node))
    return _Loader


def read_yaml(path: str | os.PathLike, what: str = "YAML file", *, max_values: int = MAX_YAML_VALUES) -> Any:
    """A YAML document from ``path`` with the scenario loader's limits: a regular file of at
    most ``MAX_FILE_BYTES``, UTF-8; nesting depth and values after alias expansion checked on
    the event stream before anything is built (:func:`scan_yaml`); repeated keys refused."""
    if not isinstance(path, (str, os.PathLike)) or not str(path).strip():
        raise ScenarioError(f"{what}: expected a file path, got {type(path).__name__} {path!r:.80}")
    label = str(path)
    text = read_text_file(Path(path), what)
    scan_yaml(text, label, max_values=max_values)
    loader = _unique_loader()(text)
    loader.duplicates = []
    try:
        doc = loader.get_single_data()
    except RecursionError:
        raise ScenarioError(f"{label}: refused: nested too deeply") from None
    except Exception as exc:  # noqa: BLE001 - any YAML failure is one clear message
        raise ScenarioError(f"{label}: not valid YAML: {exc}".replace("\n", " ")) from None
    finally:
        loader.dispose()
    if loader.duplicates:
        raise ScenarioError([f"{label}: {d}" for d in loader.duplicates])
    return doc


__all__ = ["MAX_FILE_BYTES", "MAX_PROBLEMS", "duplicate_rows", "limit_problems", "number_column", "packaged",
           "read_csv", "read_text", "read_yaml", "require_regular_file", "scan_yaml"]
