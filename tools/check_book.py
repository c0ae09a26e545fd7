"""Headless-browser check of the built book, with the network off (run by CI after `make book`).

Opens every HTML page of `_build/html` in Debian's Chromium (driven by chromedriver through
Selenium) with every network request sent to a dead proxy, waits for MathJax, and fails on:

- a request for anything but a local file (script, stylesheet, font, image: the book must be
  offline-complete; every request the browser made is read from its network log);
- raw TeX left in the rendered text (``\\(``, ``\\[``, ``$$`` outside code), or a page whose
  math elements did not all render (and the model page must have math at all);
- an image that did not load, or fewer figures than a reproduced-figure page must show;
- stderr output, a warning, an error or a traceback on a page or in an executed notebook;
- an absolute path of this machine (the repository root, /home, /tmp, site-packages ...);
- a glue reference left unrendered;
- layout at 1280 px: an element wider than the text column (unless inside a scrolling
  wrapper), a table cell reading nan, inf, True or False, a figure displayed narrower than
  its intended width (its pixel width at :data:`tokenflow.publish.style.DISPLAY_DPI`, or the column).

Readability rules (issue 29), each with a name, so that :data:`ALLOW` can name it:

- ``console``: an error or warning in the browser console;
- ``wide``: an element wider than the text column (as above);
- ``hscroll``: a table or figure in a box that scrolls sideways at 1280 px (the box fits,
  its content does not);
- ``font``: figure text under :data:`MIN_SHOWN_PT` pt as displayed, from the figure's own
  metadata (the PNG text chunk :func:`tokenflow.publish.style.figure_metadata` writes: the smallest
  font at the drawn size and the dpi) against the width the browser shows it at; a figure
  without that metadata fails too (its text size cannot be judged);
- ``noise``: a table cell showing solver round-off (a non-zero number below
  :data:`NOISE_ABS` in absolute value, e.g. 3.1e-10);
- ``unit``: a numeric table column whose header has no unit (see :func:`has_unit`), or
  has no header at all (a raw 0/1/2 index);
- ``screens``: a page longer than :data:`MAX_SCREENS` screens (1280 x 1000 window) with its
  folds closed. Every page's count is printed.

:data:`ALLOW` (page -> rule -> reason) lists the violations accepted for now, on pages whose
owners have not yet fixed them; an allowed violation is printed, not failed, and an entry no
longer needed is printed so that it can be removed. Shrink it; never grow it silently.

``--pdf FILE`` checks the PDF instead (poppler-utils): at least one page per book chapter,
at least as many embedded images as the HTML pages' required figures, no raw TeX, no
stderr or absolute path in its text, no code-cell toggle text, no figure or table label
without its caption text, a page number on every page and a contents list with page numbers
(tables that overflow the page make ``tools/build_pdf.py`` fail before a PDF is written).

Usage: python tools/check_book.py [_build/html] [book/generated] [--pdf _build/pdf/book.pdf]
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REQUIRED_FIGURES = {  # page -> number of figures (PNG outputs) it must show at least
    "book/generated/us5_market.html": 2,  # Figure 2 and the link map
    "book/generated/us5_demand_growth.html": 1,
    "book/generated/transfer_vs_token.html": 2,  # Figure 4 and the link map
    "book/generated/latency.html": 1,
    "book/generated/us20_scaleup.html": 3,  # Figure 1, the sweep and the link map
    "book/generated/formulations_settlement.html": 1,
    "book/generated/robustness.html": 2,
    "book/generated/choices.html": 1,
    "book/generated/scorecard.html": 1,
    "book/generated/referees.html": 1,
}
MATH_PAGES = {"book/model.html"}  # pages that must carry rendered math
INTERACTIVE = {"book/generated/us20_scaleup.html": ".tf-map .tf-node"}  # page -> hoverable element
BAD_TEXT = ["Traceback (most recent call last)", "{glue", "glue:text", "glue:md", "NameError", "KeyError",
            "map layers unavailable"]
WARNING_RE = re.compile(r"\b[A-Z][A-Za-z]*Warning\b")
RAW_TEX_RE = re.compile(r"\\\(|\\\[|\$\$")
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:", "chrome:", "devtools:")

MIN_SHOWN_PT = 8.0  # smallest figure text as displayed (the artifact page promises it)
NOISE_ABS = 1e-7  # a non-zero table number below this is solver round-off, not a value
MAX_SCREENS = 10.0  # a chapter reads in at most this many 1280 x 1000 screens, folds closed
RULES = ("console", "wide", "hscroll", "font", "noise", "unit", "screens")

# page -> rule -> why it is accepted for now. Only pages whose owners had not fixed them by the
# readability pass (issue 29); each entry names what is wrong. Remove an entry when its page is
# fixed (the check prints entries that are no longer needed).
ALLOW: dict[str, dict[str, str]] = {}


# --------------------------------------------------------------------------- pure rules

NUMBER_RE = re.compile(r"^[+\-−]?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?(?:[eE][+\-−]?\d+)?\s*%?$")
MISSING_CELLS = {"", "–", "-", "—", "unbounded", "−unbounded"}
# words that make a header's quantity dimensionless or say what it counts
UNITLESS_WORDS = {"count", "number", "rank", "ratio", "share", "fraction", "factor", "id", "year", "years",
                  "links", "nodes", "draws", "iterations", "iteration", "round", "rounds", "k", "n",
                  "correlation", "spearman", "elasticity", "multiple", "times", "scale", "cases", "sets",
                  "workloads", "points", "runs", "solves", "lps", "rows", "columns", "pools", "servers",
                  "gpus", "tokens", "seed", "index", "pairs", "metros", "claims", "x", "requests", "replicas",
                  "utilisation", "utilization"}
# unit symbols written as words ("MW added", "J per prompt token")
UNIT_WORDS = {"mw", "kw", "gw", "w", "mwh", "kwh", "j", "kj", "gbps", "gb/s", "gb", "mb", "tb", "pb", "ms", "µs", "us",
              "s", "h", "km", "usd", "eur", "b", "bytes"}


def parse_number(text: str) -> float | None:
    """The number a table cell shows ("1,234.5", "−3.1e-10", "12 %"), or None for text."""
    s = text.strip()
    if not s or not NUMBER_RE.match(s) or not any(ch.isdigit() for ch in s):
        return None
    try:
        return float(s.replace(",", "").replace("−", "-").rstrip("%").strip())
    except ValueError:
        return None


def is_noise(text: str) -> bool:
    """A cell that shows solver round-off: a non-zero number below :data:`NOISE_ABS`."""
    v = parse_number(text)
    return v is not None and v != 0 and abs(v) < NOISE_ABS


def has_unit(header: str) -> bool:
    """A header names its unit: a parenthesised part ("price ($/M tokens)", "C1 (links)"), a
    unit sign (%, $, /, ×), a unit symbol as a word (:data:`UNIT_WORDS`, as written or in capitals:
    "MW added", "J per prompt token"), or a word that says what is counted or that the quantity
    is a pure number (:data:`UNITLESS_WORDS`: "saturated links", "rank", "share", "k")."""
    h = header.strip()
    if re.search(r"\(.+\)|\[.+\]|[%$/×]", h):
        return True
    words = {w.strip(".,:;*").lower() for w in re.split(r"[\s_]+", h)}
    tokens = [w.strip(".,:;*") for w in re.split(r"[\s_]+", h)]
    return bool(words & UNITLESS_WORDS) or any(w.lower() in UNIT_WORDS if len(w) > 1 else w in {"J", "W", "B", "s", "h"}
                                               for w in tokens)


def column_problems(headers: list[str], columns: list[list[str]]) -> tuple[list[str], list[str]]:
    """(noise cells, numeric headers without a unit) of one table: ``headers[j]`` is column
    j's header text (all header rows joined), ``columns[j]`` its cells' texts."""
    noise = [c for col in columns for c in col if is_noise(c)]
    unitless = []
    for h, col in zip(headers, columns):
        vals = [c for c in col if c.strip() not in MISSING_CELLS]
        if not vals or any(parse_number(c) is None for c in vals):
            continue
        if not h.strip():
            unitless.append("(no header: " + ", ".join(vals[:3]) + ")")
        elif not has_unit(h):
            unitless.append(h.strip())
    return noise, unitless


def shown_font_pt(min_font_pt: float, dpi: float, natural_px: float, shown_px: float) -> float:
    """The smallest text of a figure as the reader sees it (pt): a PNG ``natural_px`` wide
    at ``dpi`` is ``natural_px / dpi`` inches as drawn, shown ``shown_px / 96`` inches wide."""
    return min_font_pt * (shown_px / 96.0) / (natural_px / dpi)


def png_text(path: Path) -> dict[str, str]:
    """The tEXt chunks of a PNG file (keyword -> text); empty for anything else."""
    import struct

    out: dict[str, str] = {}
    try:
        data = Path(path).read_bytes()
    except OSError:
        return out
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return out
    i = 8
    while i + 8 <= len(data):
        n, kind = struct.unpack(">I4s", data[i:i + 8])
        body = data[i + 8:i + 8 + n]
        if kind == b"tEXt" and b"\0" in body:
            k, v = body.split(b"\0", 1)
            out[k.decode("latin-1")] = v.decode("latin-1")
        elif kind == b"IEND":
            break
        i += 12 + n
    return out


def figure_font_problem(meta: dict[str, str], natural_px: float, shown_px: float) -> str | None:
    """Why a figure's text is too small as shown (None if it is not)."""
    from tokenflow.publish.style import FIGURE_META_KEY

    if FIGURE_META_KEY not in meta:
        return "figure without text-size metadata (not drawn through tokenflow.publish.style)"
    m = json.loads(meta[FIGURE_META_KEY])
    pt = shown_font_pt(float(m["min_font_pt"]), float(m["dpi"]), natural_px, shown_px)
    if pt < MIN_SHOWN_PT - 0.05:
        return (f"figure text {pt:.1f} pt as shown (drawn at {m['min_font_pt']:g} pt, "
                f"{natural_px / float(m['dpi']):.1f} in wide, shown {shown_px / 96:.1f} in wide)")
    return None


def screens(height_px: float, viewport_px: float) -> float:
    """Screens a page takes: its height over the window's."""
    return height_px / viewport_px if viewport_px > 0 else float("inf")


def apply_allow(problems: list[tuple[str, str, str]], allow: dict[str, dict[str, str]] | None = None
                ) -> tuple[list[str], list[str], list[str]]:
    """Split (page, rule, message) problems into (failures, allowed, unused allow entries)."""
    allow = ALLOW if allow is None else allow
    failed, allowed, used = [], [], set()
    for page, rule, msg in problems:
        reason = allow.get(page, {}).get(rule)
        if reason:
            allowed.append(f"{page}: [{rule}] {msg} (allowed: {reason})")
            used.add((page, rule))
        else:
            failed.append(f"{page}: [{rule}] {msg}" if rule != "base" else f"{page}: {msg}")
    unused = [f"{p}: {r}" for p, rules in allow.items() for r in rules if (p, r) not in used]
    return failed, allowed, unused


def absolute_path_patterns() -> list[re.Pattern]:
    """Machine paths that must not appear in a page: this checkout and common roots."""
    pats = [re.escape(str(ROOT)), r"/home/\w", r"/Users/\w", r"/tmp/", r"/root/", r"/work/",
            r"site-packages", r"dist-packages", r"[A-Z]:\\\\Users"]
    return [re.compile(p) for p in pats]


def notebook_problems(folder: Path) -> list[str]:
    """Error outputs, any stderr stream, warnings or machine paths in executed notebooks."""
    problems = []
    paths = absolute_path_patterns()
    for nb in sorted(folder.glob("*.ipynb")):
        data = json.loads(nb.read_text())
        for i, cell in enumerate(data["cells"]):
            src = "".join(cell.get("source", ""))
            for p in paths:
                if p.search(src):
                    problems.append(f"{nb.name}: cell {i}: source shows a machine path ({p.pattern})")
            for out in cell.get("outputs", []):
                kind = out.get("output_type")
                if kind == "error":
                    problems.append(f"{nb.name}: cell {i}: error output {out.get('ename')}: {out.get('evalue')}")
                    continue
                if kind == "stream":
                    text = "".join(out.get("text", ""))
                    if out.get("name") == "stderr":
                        problems.append(f"{nb.name}: cell {i}: stderr output: {text.strip()[:200]}")
                else:
                    text = "".join(out.get("data", {}).get("text/plain", ""))
                for p in paths:
                    if p.search(text):
                        problems.append(f"{nb.name}: cell {i}: output shows a machine path ({p.pattern})")
                m = WARNING_RE.search(text)
                if m:
                    problems.append(f"{nb.name}: cell {i}: output shows a warning ({m.group(0)})")
    return problems


def chromium(log_network: bool = True):
    """Headless Chromium with all network traffic sent to a closed local port."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    from tokenflow.core.errors import TokenflowError

    binary = os.environ.get("CHROMIUM") or next(
        (p for p in map(shutil.which, ("chromium", "google-chrome", "chromium-browser")) if p), None)
    driver = os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver")
    if not binary or not driver:
        raise TokenflowError("Chromium and chromedriver are needed (Debian: apt-get install chromium "
                             "chromium-driver; or set CHROMIUM and CHROMEDRIVER)")
    opts = Options()
    opts.binary_location = binary
    profile = tempfile.mkdtemp(prefix="tokenflow-chromium-")
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--proxy-server=http://127.0.0.1:9",
                "--proxy-bypass-list=<-loopback>", "--allow-file-access-from-files",
                "--window-size=1280,1000", f"--user-data-dir={profile}"):
        opts.add_argument(arg)
    if log_network:
        opts.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    return webdriver.Chrome(service=Service(driver), options=opts)


WAIT_MATH_JS = """
const done = arguments[arguments.length - 1];
const t0 = Date.now();
(function wait() {
  if (!document.querySelector('span.math, div.math')) { done('no math');
  } else if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    MathJax.startup.promise.then(() => done('ok')).catch(e => done('error: ' + e));
  } else if (Date.now() - t0 > 15000) { done('no MathJax');
  } else { setTimeout(wait, 50); }
})();
"""

PAGE_FACTS_JS = """
const skip = el => el.closest('pre, code, script, style, mjx-container, .highlight, textarea');
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
const raw = [];
while (walker.nextNode()) {
  const n = walker.currentNode;
  if (n.parentElement && !skip(n.parentElement) && /\\\\\\(|\\\\\\[|\\$\\$/.test(n.textContent)) {
    raw.push(n.textContent.trim().slice(0, 80));
  }
}
const main = document.querySelector('main') || document.body;
return {
  raw_tex: raw,
  math_src: main.querySelectorAll('span.math, div.math').length,
  math_done: main.querySelectorAll('mjx-container').length,
  mathjax_error: main.querySelectorAll('mjx-merror, [data-mjx-error]').length,
  broken: Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src),
  figures: Array.from(document.images).filter(i => i.naturalWidth > 200).length,
  stderr: document.querySelectorAll('.output.stderr, .stderr').length,
  text: document.body.innerText,
};
"""


LAYOUT_JS = """
const art = document.querySelector('article.bd-article') || document.querySelector('main') || document.body;
const box = art.getBoundingClientRect();
const scrolls = el => { for (let a = el.parentElement; a && a !== art; a = a.parentElement) {
  const o = getComputedStyle(a).overflowX; if (o === 'auto' || o === 'scroll' || o === 'hidden') return true; }
  return false; };
const name = el => el.tagName.toLowerCase() + (el.className && typeof el.className === 'string' ?
  '.' + el.className.trim().split(/\\s+/).slice(0, 2).join('.') : '');
const wide = [];
for (const el of art.querySelectorAll('*')) {
  const r = el.getBoundingClientRect();
  if (!r.width || getComputedStyle(el).visibility === 'hidden') continue;
  if (r.right > box.right + 2 && !scrolls(el) && !el.closest('mjx-container, .MathJax, pre, .highlight')) {
    wide.push(name(el) + ' ' + Math.round(r.width) + ' px > ' + Math.round(box.width) + ' px');
    if (wide.length > 5) break;
  }
}
const BAD = new Set(['nan', 'NaN', 'inf', '-inf', 'True', 'False', 'None', '<NA>']);
const cells = Array.from(art.querySelectorAll('td, th')).map(c => c.innerText.trim()).filter(t => BAD.has(t));
const narrow = [];
for (const img of art.querySelectorAll('.cell_output img, .output img')) {
  if (!img.naturalWidth) continue;
  const shown = img.getBoundingClientRect().width;
  const avail = img.parentElement.getBoundingClientRect().width;
  const intended = Math.min(img.naturalWidth * 96 / arguments[0], avail);
  if (shown < 0.95 * intended) narrow.push(Math.round(shown) + ' px < ' + Math.round(intended) + ' px');
}
// boxes that scroll sideways with a table or figure inside (the box fits, its content does not)
const hscroll = [];
for (const el of art.querySelectorAll('*')) {
  const o = getComputedStyle(el).overflowX;
  if ((o !== 'auto' && o !== 'scroll') || el.closest('mjx-container, pre, .highlight')) continue;
  if (el.scrollWidth > el.clientWidth + 2 && el.querySelector('table, img, svg, canvas'))
    hscroll.push(name(el) + ' content ' + el.scrollWidth + ' px in ' + el.clientWidth + ' px');
}
const tables = [];
for (const t of art.querySelectorAll('table')) {
  if (t.closest('.highlight, mjx-container')) continue;
  const expand = row => { const out = []; for (const c of row.cells) {
    for (let k = 0; k < (c.colSpan || 1); k++) out.push(c.innerText.trim()); } return out; };
  const head = t.tHead ? Array.from(t.tHead.rows).map(expand) : [];
  const body = Array.from(t.tBodies).flatMap(b => Array.from(b.rows)).slice(0, 60).map(expand);
  if (!body.length) continue;
  const n = body[0].length;
  const headers = [];
  for (let j = 0; j < n; j++) headers.push(head.map(r => r.length === n ? r[j] : '').filter(x => x).join(' '));
  const columns = [];
  for (let j = 0; j < n; j++) columns.push(body.filter(r => r.length === n).map(r => r[j]));
  tables.push({headers: headers, columns: columns});
}
const images = [];
for (const img of art.querySelectorAll('img')) {
  if (img.naturalWidth <= 200) continue;
  const shown = img.getBoundingClientRect().width;
  if (shown) images.push({src: img.src, natural: img.naturalWidth, shown: shown});
}
return {wide: wide, cells: cells.slice(0, 5), n_cells: cells.length, narrow: narrow, hscroll: hscroll.slice(0, 6),
        tables: tables, images: images};
"""


OPEN_FOLDS_JS = """
const done = arguments[arguments.length - 1];
document.querySelectorAll('details').forEach(d => { d.open = true; });
Promise.all(Array.from(document.images).map(i => i.complete ? 0 : new Promise(r => { i.onload = i.onerror = r; })))
  .then(() => done(0));
"""
HEIGHT_JS = """const doc = document.documentElement;
return [Math.max(doc.scrollHeight, document.body.scrollHeight), window.innerHeight];"""


def layout_problems(driver) -> tuple[list[tuple[str, str]], float]:
    """(rule, message) for wide elements, boxes that scroll sideways, raw table values,
    solver noise, unitless numeric headers, squeezed figures and figure text too small to
    read on the open page; and the page's length in screens.  The length is measured with
    the folds closed, everything else with every fold open (what a fold holds is checked)."""
    from urllib.parse import unquote, urlparse

    from tokenflow.publish.style import DISPLAY_DPI

    height, viewport = driver.execute_script(HEIGHT_JS)
    driver.execute_async_script(OPEN_FOLDS_JS)
    f = driver.execute_script(LAYOUT_JS, DISPLAY_DPI)
    bad = [("wide", f"element wider than the text column: {w}") for w in f["wide"]]
    bad += [("hscroll", f"scrolls sideways at 1280 px: {w}") for w in f["hscroll"]]
    if f["n_cells"]:
        bad.append(("base", f"{f['n_cells']} table cell(s) read {sorted(set(f['cells']))}"))
    bad += [("base", f"figure shown narrower than intended: {n}") for n in f["narrow"]]
    noise, unitless = [], []
    for tab in f["tables"]:
        n, u = column_problems(tab["headers"], tab["columns"])
        noise += n
        unitless += u
    if noise:
        bad.append(("noise", f"{len(noise)} table cell(s) show solver round-off: {sorted(set(noise))[:5]}"))
    if unitless:
        bad.append(("unit", f"{len(unitless)} numeric column(s) without a unit in the header: "
                            f"{sorted(set(unitless))[:6]}"))
    for img in f["images"]:
        url = urlparse(img["src"])
        if url.scheme != "file":
            continue
        why = figure_font_problem(png_text(Path(unquote(url.path))), img["natural"], img["shown"])
        if why:
            bad.append(("font", f"{Path(url.path).name}: {why}"))
    return bad, screens(height, viewport)


def console_problems(driver) -> list[tuple[str, str]]:
    """Errors and warnings the page wrote to the browser console."""
    out = []
    for e in driver.get_log("browser"):
        if e.get("level") in {"SEVERE", "WARNING"}:
            out.append(("console", f"console {e['level'].lower()}: {e.get('message', '')[:200]}"))
    return out


def page_facts(driver) -> dict:
    """PAGE_FACTS_JS, once more after a moment if the page was still being replaced (the
    root index.html redirects to the first page)."""
    import time

    from selenium.common.exceptions import JavascriptException

    for attempt in range(3):
        try:
            return driver.execute_script(PAGE_FACTS_JS)
        except JavascriptException:
            if attempt == 2:
                raise
            time.sleep(1.0)
    raise AssertionError("unreachable")


def network_requests(driver) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg.get("method") == "Network.requestWillBeSent":
            urls.append(msg["params"]["request"]["url"])
    return urls


def check_html(html: Path) -> tuple[list[tuple[str, str, str]], int, dict[str, float]]:
    """(page, rule, message) for every problem of the built book, the number of pages, and
    each page's length in screens."""
    pages = sorted(p for p in html.rglob("*.html")
                   if "_static" not in p.parts and "_sources" not in p.parts
                   and p.name not in {"genindex.html", "search.html"})
    problems: list[tuple[str, str, str]] = []
    lengths: dict[str, float] = {}
    paths = absolute_path_patterns()
    driver = chromium()
    try:
        for page in pages:
            rel = page.relative_to(html).as_posix()
            bad: list[str] = []
            driver.get_log("browser")  # (drop what an earlier page left)
            driver.get(page.as_uri())
            math_state = driver.execute_async_script(WAIT_MATH_JS)
            f = page_facts(driver)
            requests = network_requests(driver)
            external = [u for u in requests if not u.startswith(LOCAL_SCHEMES)]
            if not requests:
                bad.append("browser network log is empty: cannot prove that no external resource was requested")
            bad += [f"requested external resource {u}" for u in sorted(set(external))]
            bad += [f"raw TeX in text: {t!r}" for t in f["raw_tex"][:5]]
            if math_state.startswith("error") or math_state == "no MathJax":
                bad.append(f"MathJax did not run ({math_state})")
            if f["math_done"] < f["math_src"]:
                bad.append(f"{f['math_src'] - f['math_done']} of {f['math_src']} math elements not rendered")
            if f["mathjax_error"]:
                bad.append(f"{f['mathjax_error']} MathJax error(s)")
            if rel in MATH_PAGES and f["math_done"] == 0:
                bad.append("no rendered math on a page that must have it")
            bad += [f"image did not load: {src}" for src in f["broken"]]
            if f["figures"] < REQUIRED_FIGURES.get(rel, 0):
                bad.append(f"expected at least {REQUIRED_FIGURES[rel]} figure(s), found {f['figures']}")
            if f["stderr"]:
                bad.append(f"{f['stderr']} stderr output(s) shown")
            body = f["text"]
            bad += [f"page shows {t!r}" for t in BAD_TEXT if t in body]
            m = WARNING_RE.search(body)
            if m:
                bad.append(f"page shows a warning ({m.group(0)})")
            source = page.read_text(errors="replace")
            for p in paths:
                if p.search(body) or (p.pattern == re.escape(str(ROOT)) and p.search(source)):
                    bad.append(f"page shows a machine path ({p.pattern})")
            ruled, n_screens = layout_problems(driver)
            lengths[rel] = n_screens
            if n_screens > MAX_SCREENS and rel != "index.html":
                ruled.append(("screens", f"{n_screens:.1f} screens at 1280 px with folds closed "
                                         f"(at most {MAX_SCREENS:g})"))
            if rel in INTERACTIVE:
                bad += check_interactive(driver, INTERACTIVE[rel])
            ruled += console_problems(driver)
            mine = [(rel, "base", b) for b in bad] + [(rel, r, m) for r, m in ruled]
            problems += mine
            print(f"{'ok ' if not mine else 'BAD'} {rel}: {f['figures']} figure(s), "
                  f"{f['math_done']}/{f['math_src']} math rendered, {len(requests)} request(s), "
                  f"{len(external)} external, {n_screens:.1f} screens", flush=True)
    finally:
        driver.quit()
    problems += [("", "base", f"missing page {p}") for p in sorted({*REQUIRED_FIGURES, *toc_pages()})
                 if not (html / p).exists()]
    return problems, len(pages), lengths


def toc_pages(root: Path = ROOT) -> list[str]:
    """The HTML page of every file in _toc.yml (root page + chapters): each must be built."""
    import yaml

    toc = yaml.safe_load((root / "_toc.yml").read_text())
    files = [toc["root"]] + [ch["file"] for part in toc.get("parts", []) for ch in part.get("chapters", [])]
    return [f"{f}.html" for f in files]


def check_interactive(driver, selector: str) -> list[str]:
    """Hover the first node of the interactive map: a price table must appear."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    nodes = driver.find_elements(By.CSS_SELECTOR, selector)
    if not nodes:
        return [f"interactive view missing ({selector})"]
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", nodes[0])
    ActionChains(driver).move_to_element(nodes[0]).perform()
    shown = driver.execute_script(
        "const t = document.querySelector('.tf-map .tf-tip');"
        "return t && t.style.display === 'block' ? t.innerText : '';")
    if "compute rent" not in shown or "$/M tokens" not in shown:
        return ["hovering a node of the interactive map shows no price decomposition"]
    return []


def n_chapters(root: Path = ROOT) -> int:
    """Files listed in _toc.yml (root page + chapters)."""
    import yaml

    toc = yaml.safe_load((root / "_toc.yml").read_text())
    return 1 + sum(len(part.get("chapters", [])) for part in toc.get("parts", []))


def check_pdf(pdf: Path) -> list[str]:
    """Page count, embedded figures, rendered math and clean text of the book's PDF."""
    if not pdf.is_file():
        return [f"PDF {pdf} not found"]
    problems = []
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    pages = int(re.search(r"^Pages:\s+(\d+)", info, re.M).group(1))
    need_pages = n_chapters()
    if pages < need_pages:
        problems.append(f"PDF has {pages} pages, fewer than the {need_pages} chapters")
    listing = subprocess.run(["pdfimages", "-list", str(pdf)], capture_output=True, text=True, check=True).stdout
    rows = [r.split() for r in listing.splitlines()[2:] if r.strip()]
    figures = [r for r in rows if r[2] == "image" and int(r[3]) > 200 and int(r[4]) > 100]
    need_figures = sum(REQUIRED_FIGURES.values())
    if len(figures) < need_figures:
        problems.append(f"PDF embeds {len(figures)} figure(s), fewer than the book's {need_figures}")
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout
    raw = RAW_TEX_RE.findall(text)
    if raw:
        problems.append(f"PDF text has {len(raw)} raw TeX delimiter(s)")
    for t in BAD_TEXT:
        if t in text:
            problems.append(f"PDF shows {t!r}")
    for p in absolute_path_patterns():
        if p.search(text):
            problems.append(f"PDF shows a machine path ({p.pattern})")
    problems += print_problems(text, pages)
    print(f"PDF {pdf.name}: {pages} pages (need >= {need_pages}), {len(figures)} figures "
          f"(need >= {need_figures}), {len(raw)} raw TeX delimiters")
    return problems


TOGGLE_TEXT = ("Show code cell source", "Hide code cell source", "Show code cell output",
               "Show code cell content", "Hide code cell output")
PAGE_NUMBER_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$", re.M)
# a figure or table label with no caption text after it
BARE_LABEL_RE = re.compile(r"(?:^|(?<=\f))[ \t]*(?:Figure|Table) \d+\.\d+\.?[ \t]*$", re.M)


def print_problems(text: str, pages: int) -> list[str]:
    """A printed book: no code-cell toggles, a page number on every page, a contents list
    whose entries carry page numbers (``pdftotext -layout`` text, pages split by form feeds)."""
    problems = [f"PDF shows a code toggle ({t!r})" for t in TOGGLE_TEXT if t in text]
    bare = BARE_LABEL_RE.findall(text)
    if bare:
        problems.append(f"{len(bare)} figure or table label(s) without caption text (first: {bare[0].strip()!r})")
    page_texts = [t for t in text.split("\f")][:pages]
    unnumbered = [i for i, t in enumerate(page_texts, 1)
                  if not any(int(m.group(1)) == i for m in PAGE_NUMBER_RE.finditer(t))]
    if unnumbered:
        problems.append(f"{len(unnumbered)} PDF page(s) without their page number (first: {unnumbered[0]})")
    head = "\n".join(page_texts[:3])
    if "Contents" not in head or len(re.findall(r"\.{3,}\s*\d+\s*$|\s\d+\s*$", head, re.M)) < 3:
        problems.append("PDF has no contents list with page numbers on its first pages")
    return problems


def main(argv: list[str]) -> int:
    if "--pdf" in argv:
        problems = check_pdf(Path(argv[argv.index("--pdf") + 1]))
        what = "PDF check"
    else:
        html = Path(argv[0] if argv else "_build/html").resolve()
        generated = Path(argv[1] if len(argv) > 1 else "book/generated")
        problems = notebook_problems(generated)
        page_problems, n, lengths = check_html(html)
        failed, allowed, unused = apply_allow(page_problems)
        problems += failed
        print("\nscreens per page at 1280 x 1000, folds closed:")
        for rel, k in sorted(lengths.items(), key=lambda kv: -kv[1]):
            print(f"  {k:5.1f}  {rel}")
        if allowed:
            print(f"\n{len(allowed)} violation(s) allowed for now (tools/check_book.py ALLOW):")
            for a in allowed:
                print("  -", a)
        if unused:
            print("\nALLOW entries no longer needed (remove them):")
            for u in unused:
                print("  -", u)
        what = f"book check ({n} pages)"
    if problems:
        print(f"\n{what} FAILED:")
        for p in problems:
            print("  -", p)
        return 1
    print(f"\n{what} passed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
