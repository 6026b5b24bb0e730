# make demo: set everything up and run the whole chain (prepare, train, evaluate, export, translate) on the bundled corpus.
# make test: set everything up, lint and run the test suite (what CI runs).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The js/ package's dependencies (onnxruntime-node and -web, playwright-core); --ignore-scripts skips onnxruntime-node's
# GPU-binary download (the CPU build is in the package) and any browser download: the browser test uses Debian's chromium.
JS_STAMP := js/node_modules/.installed

export ORT_DISABLE_TELEMETRY := 1

.PHONY: install demo test lint bench clean browser page

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[train,cpu,dev]'
	touch $(STAMP)

# The whole chain on the bundled corpus's shorter pairs (configs/demo.toml) with an 8-minute training budget, about
# 10 minutes on 2 cores once installed, its scores printed beside the shipped model's on the same test sentences; run it
# again and every unchanged stage is skipped. configs/fra-eng.toml holds the shipped model's settings.
DEMO_MINUTES ?= 8
demo: $(STAMP)
	$(BIN)/s2s run --config configs/demo.toml --set train.max_minutes=$(DEMO_MINUTES)
	@echo "the well-trained model ships in models/fra-eng: try  echo 'How are you?' | $(BIN)/s2s translate -i - -o -"

$(JS_STAMP): js/package.json js/package-lock.json
	cd js && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $(JS_STAMP)

# The browser test's Chromium, from Debian's packages as a fresh machine gets it (root, as CI runs); nothing else downloads one.
browser:
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; }

lint: $(STAMP)
	$(BIN)/ruff check .

# Two worker processes (pytest-xdist): most tests keep one core busy, not both. A module whose tests share a costly
# module fixture is one xdist_group, run by one worker; the toy model is trained once for both (tests/conftest.py).
TEST_WORKERS ?= 2
test: lint $(JS_STAMP) browser
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadgroup

# The browser page on http://127.0.0.1:8000/js/web/ (the shipped model, translated in the page, nothing sent anywhere).
page: $(JS_STAMP)
	$(PYTHON) js/serve.py

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_prepare.py

clean:
	rm -rf runs .pytest_cache .ruff_cache js/node_modules
