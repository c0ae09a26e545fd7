"""`make pdf`: the whole book as one PDF.

Builds the single-page HTML edition (``jupyter-book build --builder singlehtml``, skipped when
unchanged), opens it in headless Chromium with the network off, waits until MathJax has
typeset every formula and every image has loaded, and prints it with Chromium's own PDF
printer (DevTools ``Page.printToPDF``): same fonts, math and figures as the HTML book.

Why a print stylesheet and not Jupyter Book's LaTeX builder: the LaTeX route needs a TeX
Live of about 1 GB from Debian packages and renders the notebooks' HTML outputs (the
house-style tables, the interactive map) as nothing or as raw text, while Chromium prints
exactly the pages the browser check has checked.  The stylesheet makes it a book: no code
(the PDF shows results; the HTML keeps the code), tables wrapped to the page width (a table
that still overflows stops the build), figures and tables numbered by chapter ("Figure 3.1",
"Table 3.2"), a contents list with page numbers (printed twice: the first pass finds each
chapter's page) and a page number on every page.

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
.cell_input, details.above-input, details.below-input, details.hide > summary, summary.hide,
button.toggle-button, .toggle-hidden { display: none !important; }
.bd-main .bd-content .bd-article-container { max-width: 100% !important; }
.bd-container, .bd-page-width { max-width: 100% !important; }
.cell_output img, figure img { max-width: 100% !important; break-inside: avoid; }
.cell_output, figure, div.cell, div.highlight, pre, .tf-block { break-inside: avoid; }
.cell_output, .tf-table-wrap, .output, .pst-scrollable-table-container, .table-wrapper, .tf-blocks,
div.cell, .bd-article, main { overflow: visible !important; max-height: none !important; }
::-webkit-scrollbar { display: none !important; }
.cell_output table, table.tf-table { font-size: 7.5pt !important; max-width: 100% !important; }
td, th { white-space: normal !important; overflow-wrap: break-word; word-break: normal; hyphens: auto; }
pre, .output pre, .cell_output pre {
  white-space: pre-wrap !important; overflow-wrap: anywhere; overflow: visible !important; }
caption .tf-num { display: inline; margin: 0; }
table.tf-small { font-size: 6.5pt !important; }
table.tf-squeeze td, table.tf-squeeze th { overflow-wrap: anywhere; }
span[id^="document-"] + section { break-before: page; }
.tf-num { font-weight: 600; font-size: 9pt; margin: 0.3em 0 0.6em 0; }
.tf-cap { font-size: 9pt; margin: 0.3em 0 0.8em 0; break-before: avoid; }
.tf-cap .tf-num { display: inline; margin: 0; }
.tf-cap-source { display: none !important; }
.tf-blocks { column-count: 2; column-gap: 1.5em; font-size: 8pt; }
.tf-block dt { min-width: 7em !important; }
.tf-block dd { margin-left: 8em !important; }
.tf-toc { break-after: page; font-size: 10.5pt; }
.tf-toc .tf-toc-title { font-size: 18pt; font-weight: 700; margin: 0 0 0.6em 0; }
.tf-toc ol { list-style: none; padding-left: 0; }
.tf-toc li { display: flex; gap: 0.4em; margin: 0.15em 0; }
.tf-toc li .t { flex: 0 1 auto; }
.tf-toc li .dots { flex: 1 1 auto; border-bottom: 1px dotted #888; margin-bottom: 0.3em; }
.tf-toc li .p { flex: 0 0 2.5em; text-align: right; }
"""

# number figures and tables per chapter with their caption text (the chapter's own "**Figure.**" /
# "**Table.**" paragraph after the output, moved under the figure; else the table's own caption; else
# the heading of the section it stands in), open hidden outputs, put a contents list first
PREPARE_JS = """
document.querySelectorAll('details').forEach(d => { d.open = true; });
const ownCaption = (el, word) => {
  const host = el.closest('div.cell') || el.closest('.tf-table-wrap') || el;
  for (let sib = host.nextElementSibling, i = 0; sib && i < 4; sib = sib.nextElementSibling, i++) {
    if (sib.matches('div.cell, section, h1, h2, h3, h4')) break;
    if (!sib.matches('p') || sib.classList.contains('tf-cap-source')) continue;
    const s = sib.firstElementChild;
    if (s && s.tagName === 'STRONG' && sib.textContent.trim().startsWith(s.textContent.trim())
        && s.textContent.trim().startsWith(word)) return sib;
  }
  return null;
};
const heading = el => {
  const sec = el.closest('section');
  const h = sec ? sec.querySelector('h1, h2, h3, h4') : null;
  return h ? h.textContent.replace(/#$/, '').replace(/\\s+/g, ' ').trim() : '';
};
const captionHTML = (el, word) => {
  const p = ownCaption(el, word);
  if (p) {
    const c = p.cloneNode(true);  // a bare "Figure." lead gives way to the number; a titled one stays
    if (/^(Figure|Table)\\.?$/.test(c.firstElementChild.textContent.trim())) c.removeChild(c.firstElementChild);
    p.classList.add('tf-cap-source');
    return c.innerHTML.trim();
  }
  const d = document.createElement('span'); d.textContent = heading(el); return d.innerHTML;
};
const chapters = [];
document.querySelectorAll('span[id^="document-"]').forEach((span, k) => {
  const sec = span.nextElementSibling;
  if (!sec) return;
  const h = sec.querySelector('h1, h2');
  const title = h ? h.textContent.replace(/#$/, '').replace(/\\s+/g, ' ').trim() : span.id;
  chapters.push(title);
  let nf = 0, nt = 0;
  sec.querySelectorAll('.cell_output img, .output img').forEach(img => {
    if (img.naturalWidth < 200) return;
    const cap = document.createElement('div');
    cap.className = 'tf-cap';
    cap.innerHTML = '<span class="tf-num">Figure ' + (k + 1) + '.' + (++nf) + '.</span> ' + captionHTML(img, 'Figure');
    img.insertAdjacentElement('afterend', cap);
  });
  sec.querySelectorAll('table, .tf-blocks').forEach(t => {
    if (t.closest('.tf-blocks') && t.tagName === 'TABLE') return;
    const label = 'Table ' + (k + 1) + '.' + (++nt);
    if (t.tagName === 'TABLE') {  // in the caption: printed with the table, on its page
      let cap = t.querySelector('caption');
      if (!cap) { cap = document.createElement('caption'); t.insertBefore(cap, t.firstChild); }
      if (!cap.textContent.trim()) cap.innerHTML = captionHTML(t, 'Table');
      const num = document.createElement('span');
      num.className = 'tf-num'; num.textContent = label + '. ';
      cap.insertBefore(num, cap.firstChild);
    } else {
      const cap = document.createElement('div');
      const own = t.querySelector('.tf-blocks-caption');
      cap.className = 'tf-num';
      cap.innerHTML = label + '. ' + (own ? '' : captionHTML(t, 'Table'));
      if (own) { cap.style.display = 'inline'; own.insertBefore(cap, own.firstChild); }
      else t.insertAdjacentElement('afterbegin', cap);
    }
  });
});
const nav = document.createElement('div');
nav.className = 'tf-toc';
nav.innerHTML = '<p class="tf-toc-title">Contents</p><ol></ol>';
chapters.forEach((t, k) => {
  const li = document.createElement('li');
  li.innerHTML = '<span class="t"></span><span class="dots"></span><span class="p">000</span>';
  li.querySelector('.t').textContent = (k + 1) + '  ' + t;
  nav.querySelector('ol').appendChild(li);
});
const art = document.querySelector('article.bd-article') || document.querySelector('main') || document.body;
art.insertBefore(nav, art.firstChild);
return chapters;
"""

# a table wider than the printed column gets a smaller font; one that still does not fit, or
# whose columns the browser squeezed below a readable width (words broken letter by letter),
# is printed as one block per row (its header cells as labels), like the HTML's wide tables
FIT_TABLES_JS = """
const over = t => t.getBoundingClientRect().width > t.parentElement.getBoundingClientRect().width + 2;
const squeezed = t => Array.from(t.querySelectorAll('tbody td')).some(c =>
  c.getBoundingClientRect().width < 46 && c.textContent.trim().length > 6 && /[a-z]{4}/i.test(c.textContent));
const toBlocks = t => {
  const heads = Array.from(t.querySelectorAll('thead tr')).map(r => Array.from(r.children));
  const labels = heads.length ? heads.reduce((a, b) =>
    b.filter(c => c.textContent.trim()).length > a.filter(c => c.textContent.trim()).length ? b : a)
    .map(c => c.textContent.trim()) : [];
  const box = document.createElement('div');
  box.className = 'tf-blocks tf-printed-blocks';
  const cap = t.querySelector('caption');
  if (cap) { const p = document.createElement('p'); p.className = 'tf-blocks-caption';
             p.style.fontWeight = '600'; p.innerHTML = cap.innerHTML; box.appendChild(p); }
  t.querySelectorAll('tbody tr').forEach(r => {
    const cells = Array.from(r.children);
    const b = document.createElement('div'); b.className = 'tf-block';
    b.style.cssText = 'border-left:3px solid #0072B2;padding:0.2em 0 0.2em 0.6em;margin:0 0 0.6em 0;break-inside:avoid';
    const h = document.createElement('div'); h.style.fontWeight = '700';
    h.textContent = cells.filter(c => c.tagName === 'TH').map(c => c.textContent.trim()).join(' ');
    b.appendChild(h);
    const dl = document.createElement('dl'); dl.style.margin = '0.1em 0 0 0';
    cells.forEach((c, i) => {
      if (c.tagName === 'TH' || !c.textContent.trim()) return;
      const dt = document.createElement('dt'); dt.textContent = labels[i] || '';
      dt.style.cssText = 'font-weight:600;float:left;clear:left;padding-right:0.6em';
      const dd = document.createElement('dd'); dd.innerHTML = c.innerHTML;
      dl.appendChild(dt); dl.appendChild(dd);
    });
    b.appendChild(dl); box.appendChild(b);
  });
  const host = t.closest('.tf-table-wrap') || t;
  host.replaceWith(box);
};
let n = 0;
Array.from(document.querySelectorAll('table')).forEach(t => {
  if (t.closest('.tf-blocks')) return;
  if (over(t) || squeezed(t)) { t.classList.add('tf-small'); n++; }
  if (over(t) || squeezed(t)) toBlocks(t);
});
return n;
"""

# tables wider than the printed column (A4 less margins: 7.27 in = 698 CSS px)
OVERFLOW_JS = """
const out = [];
document.querySelectorAll('table').forEach((t, i) => {
  const host = t.parentElement.getBoundingClientRect().width;
  if (t.getBoundingClientRect().width > host + 2 || t.scrollWidth > t.clientWidth + 2)
    out.push((t.closest('section[id]') || {id: '?'}).id + ': table ' + i + ' ' +
             Math.round(t.getBoundingClientRect().width) + ' px > ' + Math.round(host) + ' px');
});
return out;
"""
PAGE = {"paperWidth": 8.27, "paperHeight": 11.69, "marginTop": 0.6, "marginBottom": 0.6, "marginLeft": 0.5,
        "marginRight": 0.5}


def _print(driver) -> bytes:
    pdf = driver.execute_cdp_cmd("Page.printToPDF", {
        "printBackground": True, "preferCSSPageSize": False, **PAGE,
        "displayHeaderFooter": True, "headerTemplate": "<span></span>",
        "footerTemplate": '<div style="font-size:8px;width:100%;text-align:center">'
                          '<span class="pageNumber"></span> / <span class="totalPages"></span></div>'})
    return base64.b64decode(pdf["data"])


def chapter_pages(pdf: bytes, titles: list[str]) -> list[int]:
    """First page (1-based) on which each chapter title appears, in order (pdftotext)."""
    import re
    import subprocess
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".pdf") as f:
        f.write(pdf)
        f.flush()
        text = subprocess.run(["pdftotext", "-layout", f.name, "-"], capture_output=True, text=True,
                              check=True).stdout
    norm = [re.sub(r"\s+", " ", t) for t in text.split("\f")]
    pages, start = [], 1  # page 1 holds the contents list itself
    for title in titles:
        key = re.sub(r"\s+", " ", title)[:40]
        found = next((i for i in range(start, len(norm)) if key in norm[i]), None)
        pages.append(found + 1 if found is not None else 0)
        start = found if found is not None else start
    return pages


def main(argv: list[str]) -> int:
    from tokenflow import __version__
    from tokenflow.core.errors import TokenflowError
    from tokenflow.publish.reproduce import BOOK_STAMP, build_book

    out = Path(argv[argv.index("--out") + 1]) if "--out" in argv else \
        ROOT / "_build" / "pdf" / f"tokenflow-{__version__}.pdf"
    t0 = time.perf_counter()
    secs, rebuilt = build_book(ROOT, builder="singlehtml")
    build_id = (ROOT / "_build" / "singlehtml" / BOOK_STAMP).read_text().strip()  # the build this PDF prints
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
        titles = driver.execute_script(PREPARE_JS)
        # tables must fit the printed column: measure at its width in print media
        driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": round((PAGE["paperWidth"] - PAGE["marginLeft"] - PAGE["marginRight"]) * 96),
                                "height": 1000, "deviceScaleFactor": 1, "mobile": False})
        driver.execute_script(FIT_TABLES_JS)
        overflow = driver.execute_script(OVERFLOW_JS)
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        if overflow:
            raise TokenflowError(f"{len(overflow)} table(s) wider than the printed page: " + "; ".join(overflow[:5]))
        first = _print(driver)
        pages = chapter_pages(first, titles)
        driver.execute_script("document.querySelectorAll('.tf-toc .p').forEach((p, i) => "
                              "{ p.textContent = arguments[0][i] ? String(arguments[0][i]) : ''; });", pages)
        data = _print(driver)
    finally:
        driver.quit()
    out.parent.mkdir(parents=True, exist_ok=True)
    from make_archive import pdf_stamp_path, write_pdf_stamp

    pdf_stamp_path(out).unlink(missing_ok=True)  # (no stamp names the PDF while it is replaced)
    tmp = out.with_suffix(".pdf.tmp")
    tmp.write_bytes(data)
    tmp.replace(out)
    write_pdf_stamp(out, data, build_id)  # ties the PDF to the book build it prints (make archive checks it)
    print(f"PDF: {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out} "
          f"({out.stat().st_size / 1e6:.1f} MB, {math[1]} formulas) in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
