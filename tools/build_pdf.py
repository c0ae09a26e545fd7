"""`make pdf`: the whole book as one PDF.

Builds the single-page HTML edition (``jupyter-book build --builder singlehtml``, skipped when
unchanged), opens it in headless Chromium with the network off, waits until MathJax has
typeset every formula and every image has loaded, and prints it with Chromium's own PDF
printer (DevTools ``Page.printToPDF``): same fonts, math and figures as the HTML book.

Usage: python tools/build_pdf.py [--out _build/pdf/tokenflow-<version>.pdf]
"""

from __future__ import annotations

import base64
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_book import ROOT, WAIT_MATH_JS, chromium  # noqa: E402

PRINT_CSS = """
.bd-header, .bd-sidebar-primary, .bd-sidebar-secondary, .bd-footer, .bd-footer-content,
.header-article, .prev-next-area, .toggle-details, .tf-tip, .headerlink, #pst-back-to-top,
.bd-header-announcement, .skip-link { display: none !important; }
.bd-main .bd-content .bd-article-container { max-width: 100% !important; }
.bd-container, .bd-page-width { max-width: 100% !important; }
.cell_output img, figure img { max-width: 100% !important; break-inside: avoid; }
.cell_output, figure, table, div.cell, div.highlight, pre { break-inside: avoid; }
.cell_output { overflow: visible !important; }
.cell_output table { font-size: 7pt !important; }
span[id^="document-"] + section { break-before: page; }
"""


def main(argv: list[str]) -> int:
    from tokenflow import __version__
    from tokenflow.errors import TokenflowError
    from tokenflow.reproduce import build_book

    out = Path(argv[argv.index("--out") + 1]) if "--out" in argv else \
        ROOT / "_build" / "pdf" / f"tokenflow-{__version__}.pdf"
    t0 = time.perf_counter()
    secs, rebuilt = build_book(ROOT, builder="singlehtml")
    print(f"single-page HTML: {'built' if rebuilt else 'reused'} in {secs:.1f} s", flush=True)
    single = ROOT / "_build" / "singlehtml"
    pages = [p for p in single.rglob("*.html")
             if "_static" not in p.parts and p.name not in {"index.html", "book.html"}]
    if len(pages) != 1:
        raise TokenflowError(f"expected one page in the single-page build, found {len(pages)}")
    # Sphinx writes the page at the root document's path (book/intro.html) but links its
    # assets relative to the build root: put a copy at the root so _static/ and _images/ resolve
    index = single / "book.html"
    index.write_bytes(pages[0].read_bytes())
    driver = chromium(log_network=False)
    try:
        driver.get(index.as_uri())
        state = driver.execute_async_script(WAIT_MATH_JS)
        if state not in {"ok", "no math"}:
            raise TokenflowError(f"MathJax did not finish before printing ({state})")
        driver.execute_script("const s = document.createElement('style'); s.textContent = arguments[0];"
                              "document.head.appendChild(s);", PRINT_CSS)
        pending = driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "Promise.all(Array.from(document.images).map(i => i.complete ? 0 :"
            " new Promise(r => { i.onload = i.onerror = r; })))"
            ".then(() => done(Array.from(document.images).filter(i => !i.naturalWidth).length));")
        if pending:
            raise TokenflowError(f"{pending} image(s) did not load in the single-page book")
        math = driver.execute_script("return [document.querySelectorAll('span.math, div.math').length,"
                                     " document.querySelectorAll('mjx-container').length];")
        if math[1] < math[0]:
            raise TokenflowError(f"only {math[1]} of {math[0]} formulas typeset before printing")
        pdf = driver.execute_cdp_cmd("Page.printToPDF", {
            "printBackground": True, "preferCSSPageSize": False, "paperWidth": 8.27, "paperHeight": 11.69,
            "marginTop": 0.6, "marginBottom": 0.6, "marginLeft": 0.5, "marginRight": 0.5,
            "displayHeaderFooter": True, "headerTemplate": "<span></span>",
            "footerTemplate": '<div style="font-size:8px;width:100%;text-align:center">'
                              '<span class="pageNumber"></span> / <span class="totalPages"></span></div>'})
    finally:
        driver.quit()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".pdf.tmp")
    tmp.write_bytes(base64.b64decode(pdf["data"]))
    tmp.replace(out)
    print(f"PDF: {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out} "
          f"({out.stat().st_size / 1e6:.1f} MB, {math[1]} formulas) in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
