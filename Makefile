# Two entry points (see README):  make book   -> set up and reproduce everything, build the book
#                                 make test   -> set up and run the test suite
# Artifact:  make pdf      -> the book as one PDF (_build/pdf/), printed by headless Chromium
#            make archive  -> dist/tokenflow-<version>-artifact.zip (book, PDF, notebooks, results, SHA256SUMS)
#            make check    -> headless-browser check of the built book and the PDF (network off)
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: book test test-slow setup claims bench lint clean pdf archive check browser live-data live-check

$(BIN)/tokenflow: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	@# uv (a fast installer, from PyPI) when it installs; pip otherwise: same requirements either way
	if $(BIN)/python -m pip install -q uv && $(BIN)/uv pip install -q --python $(BIN)/python -e ".[all]"; \
	then echo "installed with uv"; else $(BIN)/python -m pip install -e ".[all]"; fi
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3"
	touch $(BIN)/tokenflow

setup: $(BIN)/tokenflow

book: setup
	$(BIN)/tokenflow reproduce

# tests in parallel on every core (pytest-xdist, --dist worksteal from pyproject.toml; the order that
# starts the long tests first is in tests/conftest.py); JOBS=1 runs them in one process
JOBS ?= auto
test: setup
	$(BIN)/python -m pytest -n $(JOBS)

# the slow tests (calibration reproduces the data files' calibrated values, killed Dask workers, ...)
test-slow: setup
	$(BIN)/python -m pytest -n $(JOBS) -m slow

# Debian's Chromium + chromedriver (browser check, PDF) and poppler-utils (PDF check); root + apt
browser:
	@if { command -v chromium || command -v google-chrome || [ -n "$$CHROMIUM" ]; } >/dev/null && \
	    { command -v chromedriver || [ -n "$$CHROMEDRIVER" ]; } >/dev/null && command -v pdfinfo >/dev/null; \
	then :; else apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    chromium chromium-driver poppler-utils >/dev/null; fi

pdf: book browser
	$(BIN)/python tools/build_pdf.py

archive: pdf
	$(BIN)/python tools/make_archive.py

check: browser
	$(BIN)/python tools/check_book.py _build/html book/generated
	$(BIN)/python tools/check_book.py --pdf _build/pdf/tokenflow-$$($(BIN)/python -c 'import tokenflow; print(tokenflow.__version__)').pdf

# the "Clear it yourself" page: re-export its LP data (book/_static/live/live_data.js), then drive
# its test hook in headless Chromium (network off) against tokenflow.solve; no book build needed
live-data: setup
	$(BIN)/python tools/export_live.py

live-check: setup browser
	$(BIN)/python tools/check_live.py --export

claims: setup
	$(BIN)/tokenflow claims

bench: setup
	$(BIN)/python benchmarks/bench_market.py

lint: setup
	$(BIN)/ruff check tokenflow tests tools benchmarks

clean:
	rm -rf _build book/generated dist
