# tradecredit: `make help` lists the targets. Every target sets up .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help demo test bench lint venv clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev,spark]"
	touch $(STAMP)

venv: $(STAMP) ## Create .venv and install the package with its dev tools and the Spark extra

help: ## List the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-6s %s\n", $$1, $$2}'

demo: $(STAMP) ## Run the product end to end on embedded defaults (data in var/demo)
	PATH="$(CURDIR)/$(BIN):$$PATH" bash scripts/demo.sh

test: $(STAMP) ## Run the whole test suite
	$(BIN)/python -m pytest

bench: $(STAMP) ## Run the benchmarks and print their figures
	$(BIN)/pip install --quiet -e ".[bench]"
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

lint: $(STAMP) ## ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check credit features models api tests benchmarks
	$(BIN)/mypy

clean: ## Remove the virtualenv and local data
	rm -rf $(VENV) var
