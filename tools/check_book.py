"""Headless-browser smoke test of the built book (run by CI after `tokenflow reproduce`).

Opens every HTML page of `_build/html` in Debian's Chromium (driven by chromedriver
through Selenium) and fails on: an image that did not load, a glue reference left
unrendered, an error or traceback shown on a page, or any error output in an
executed notebook.  Also checks that each reproduced figure (F1-F4) is on its page.

Usage: python tools/check_book.py [_build/html] [book/generated]
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

REQUIRED_FIGURES = {  # page -> number of figures (PNG outputs) it must show at least
    "book/generated/us5_market.html": 1,
    "book/generated/us5_demand_growth.html": 1,
    "book/generated/transfer_vs_token.html": 1,
    "book/generated/latency.html": 1,
    "book/generated/us20_scaleup.html": 2,
    "book/generated/formulations_settlement.html": 1,
    "book/generated/robustness.html": 2,
}
BAD_TEXT = ["Traceback (most recent call last)", "{glue", "glue:text", "glue:md", "NameError", "KeyError"]


def notebook_errors(folder: Path) -> list[str]:
    problems = []
    for nb in sorted(folder.glob("*.ipynb")):
        data = json.loads(nb.read_text())
        for i, cell in enumerate(data["cells"]):
            for out in cell.get("outputs", []):
                if out.get("output_type") == "error":
                    problems.append(f"{nb.name}: cell {i}: error output {out.get('ename')}: {out.get('evalue')}")
                if out.get("output_type") == "stream" and out.get("name") == "stderr":
                    text = "".join(out.get("text", ""))
                    if "Error" in text or "Traceback" in text:
                        problems.append(f"{nb.name}: cell {i}: stderr: {text.strip()[:200]}")
    return problems


def main() -> int:
    html = Path(sys.argv[1] if len(sys.argv) > 1 else "_build/html").resolve()
    generated = Path(sys.argv[2] if len(sys.argv) > 2 else "book/generated")
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    pages = sorted(p for p in html.rglob("*.html")
                   if "_static" not in p.parts and "_sources" not in p.parts
                   and p.name not in {"genindex.html", "search.html"})
    problems = notebook_errors(generated)
    opts = Options()
    opts.binary_location = "/usr/bin/chromium"
    with tempfile.TemporaryDirectory() as profile:
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--window-size=1400,1000", f"--user-data-dir={profile}"):
            opts.add_argument(arg)
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
        try:
            for page in pages:
                rel = page.relative_to(html).as_posix()
                driver.get(page.as_uri())
                broken = driver.execute_script(
                    "return Array.from(document.images)"
                    ".filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)")
                for src in broken:
                    problems.append(f"{rel}: image did not load: {src}")
                n_img = driver.execute_script(
                    "return Array.from(document.images).filter(i => i.naturalWidth > 200).length")
                if n_img < REQUIRED_FIGURES.get(rel, 0):
                    problems.append(f"{rel}: expected at least {REQUIRED_FIGURES[rel]} figure(s), found {n_img}")
                body = driver.find_element(By.TAG_NAME, "body").text
                for bad in BAD_TEXT:
                    if bad in body:
                        problems.append(f"{rel}: page shows {bad!r}")
                print(f"ok  {rel}: {n_img} image(s)" if not broken else f"BAD {rel}")
        finally:
            driver.quit()
    missing = [p for p in REQUIRED_FIGURES if not (html / p).exists()]
    problems += [f"missing page {p}" for p in missing]
    if problems:
        print("\nbook check FAILED:")
        for p in problems:
            print("  -", p)
        return 1
    print(f"\nbook check passed: {len(pages)} pages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
