# Two commands do everything on a fresh clone:
#   make report   the agreement report (reports/out/index.html)
#   make test     the test suite (deterministic `ci` Hypothesis profile), then `make wheel`
#   make wheel    the built wheel, installed in a fresh venv outside the checkout, as a user gets it
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
OUT    ?= reports/out

.PHONY: report test wheel thorough bench browser clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[all]'
	touch $(STAMP)

browser:
	bash scripts/install-browser.sh

report: $(STAMP)
	$(BIN)/chainrule report --out $(OUT)

test: $(STAMP) browser
	$(BIN)/python -m pytest -p no:cacheprovider -n 2 --dist loadgroup --hypothesis-profile=ci --durations=15
	bash scripts/test-wheel.sh $(BIN)/python

wheel: $(STAMP)
	bash scripts/test-wheel.sh $(BIN)/python

# also the tests marked thorough (deep sweeps; skipped by `make test`); --dist loadgroup keeps each
# xdist_group on one worker (the tensorflow members' .venv-tf, a module's shared report)
thorough: $(STAMP) browser
	$(BIN)/python -m pytest -p no:cacheprovider -n auto --dist loadgroup --hypothesis-profile=thorough

bench: $(STAMP)
	$(BIN)/chainrule bench

clean:
	rm -rf $(VENV) $(OUT) .hypothesis .pytest_cache
