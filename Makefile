# Two entry points (see README):  make book   -> set up and reproduce everything, build the book
#                                 make test   -> set up and run the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: book test setup claims bench lint clean

$(BIN)/tokenflow: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e ".[all]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3"
	touch $(BIN)/tokenflow

setup: $(BIN)/tokenflow

book: setup
	$(BIN)/tokenflow reproduce

test: setup
	$(BIN)/python -m pytest

claims: setup
	$(BIN)/tokenflow claims

bench: setup
	$(BIN)/python benchmarks/bench_market.py

lint: setup
	$(BIN)/ruff check tokenflow tests tools benchmarks

clean:
	rm -rf _build book/generated
