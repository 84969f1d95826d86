# xinyong — make targets. `make run` is the demo, `make test` the whole suite (what CI runs).
CARGO ?= cargo

.PHONY: help run test bench fuzz fmt lint check fixtures clean-demo

help: ## List targets
	@awk 'BEGIN{FS=":.*##"} /^[a-z0-9_-]+:.*##/{printf "  %-12s %s\n",$$1,$$2}' $(MAKEFILE_LIST)

run: ## Build and run the demo: fixtures → snapshot → both platform simulators
	@echo "building xinyong (the first build takes a few minutes) ..."
	$(CARGO) build --bin xinyong
	$(CARGO) run --quiet --bin xinyong -- demo

test: ## The whole test suite: unit, property and end-to-end tests
	$(CARGO) test --workspace

BENCH_VENV ?= $${CARGO_TARGET_DIR:-target}/bench-venv

bench: ## Penalties full load 100k/1M/10M, 1M unsorted beside the polars peer (same run, output compared row for row), nights (two recent months; spread over all months), push of 50k records at 0%/30% faults (/usr/bin/time -v), then stage micro-benchmarks
	$(CARGO) build --release --bin xinyong
	python3 -m venv $(BENCH_VENV) && $(BENCH_VENV)/bin/pip install --quiet -r devtools/benches/peers/requirements.txt
	BENCH_PYTHON=$(BENCH_VENV)/bin/python bash devtools/benches/full_load.sh
	bash devtools/benches/push.sh
	$(CARGO) bench -p devtools --bench stages

fuzz: ## Fuzz the readers and parsers (CSV, XLSX, HTTP pages, mapping and configuration TOML, receipts): 100,000 cases per target (make test runs 256)
	PROPTEST_CASES=$${PROPTEST_CASES:-100000} $(CARGO) test -p connectors -p pipeline --lib fuzz_

fmt: ## Check formatting
	$(CARGO) fmt --all -- --check

lint: ## Clippy; warnings are errors
	$(CARGO) clippy --workspace --all-targets -- -D warnings

check: fmt lint test ## Formatting, lints and tests
	$(CARGO) run --quiet --bin xinyong -- check

fixtures: ## Regenerate the demo fixtures (deterministic)
	$(CARGO) run --quiet --bin xinyong -- gen-fixtures --out fixtures

clean-demo: ## Forget the demo's state: snapshots, quarantine, state store, simulator holdings
	rm -rf out/demo
