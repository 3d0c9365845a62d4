# fleetguard developer commands. Every target creates the virtualenv it needs from pinned versions.
# Packages install without byte-compiling (--no-compile): pulumi-aws is tens of thousands of modules, of
# which a run imports a few, and Python compiles those on first import.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PACK_VENV := policies/.venv
PACK_STAMP := $(PACK_VENV)/.installed
STACK ?= dev
PROGRAM_PATHS := __main__.py stack_outputs.py settings components functions tools harness tests benchmarks drill
LINT_PATHS := $(PROGRAM_PATHS) policies examples

.PHONY: help venv test lint typecheck unit pack-check policy-check drill bench lock clean config-reference

help:
	@echo "make test          lint, type-check and run every test (creates .venv from pinned versions)"
	@echo "make test FAST=1   the same without the tests that start subprocesses or servers (local work)"
	@echo "make drill         incident-response game day against an embedded AWS emulator"
	@echo "make policy-check  STACK=dev|prod: analyze the stack with the policy pack, no cloud needed"
	@echo "make bench         benchmarks; prints the figures recorded in README.md"

$(STAMP): requirements.txt requirements-dev.txt constraints.txt policies/requirements.txt functions/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --no-compile --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	touch $(STAMP)

venv: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check $(wildcard $(LINT_PATHS))

# The program, the policy pack and the examples each have a __main__.py, so each is checked on its own,
# sharing one cache (analysing pulumi-aws once is most of the time).
MYPY := $(CURDIR)/$(BIN)/mypy --config-file $(CURDIR)/pyproject.toml --cache-dir $(CURDIR)/.mypy_cache
typecheck: $(STAMP)
	$(MYPY) $(wildcard $(PROGRAM_PATHS))
	cd policies && $(MYPY) .
	cd examples/soc_consumer && $(MYPY) __main__.py
	cd examples/device_fleet && $(MYPY) __main__.py lambdas
	$(MYPY) examples/device_agent

# pytest exits 5 when it collected nothing; that must fail loudly, never pass. FAST=1 (local work only)
# skips the tests marked slow: those that start the policy pack, a server or another interpreter.
PYTEST_SELECT := $(if $(FAST),-m "not slow")
unit: $(STAMP)
	@$(BIN)/pytest $(PYTEST_SELECT); status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; exit $$status

# pack-check: the prod stack judged by the pack in its own virtualenv (its requirements file is complete).
# CI runs all of it; `make test FAST=1` leaves out pack-check and the slow tests.
test: lint typecheck $(if $(FAST),,pack-check) unit

pack-check:
	@$(MAKE) --no-print-directory policy-check STACK=prod POLICY_CONFIG=

lock:
	rm -rf /tmp/fleetguard-lock && $(PYTHON) -m venv /tmp/fleetguard-lock
	/tmp/fleetguard-lock/bin/pip install --quiet -r requirements-dev.txt
	/tmp/fleetguard-lock/bin/pip freeze --exclude pip > constraints.txt

clean:
	rm -rf $(VENV) $(PACK_VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis

config-reference: $(STAMP)
	$(BIN)/python -m tools.config_reference --write README.md

# The program under mocks, judged by the policy pack over the engine's gRPC protocol in both runs of `pulumi up`
# (the preview, where computed values are unknown, then the update); exit 1 on a
# mandatory violation. POLICY_CONFIG overrides policies/config/$(STACK).json. The pack runs in its own
# virtualenv with only policies/requirements.txt, as `pulumi preview --policy-pack policies` runs it.
policy-check: $(STAMP) $(PACK_STAMP)
	$(BIN)/python -m tools.policy_check --stack $(STACK) --pack-python $(CURDIR)/$(PACK_VENV)/bin/python \
		$(if $(POLICY_CONFIG),--config $(POLICY_CONFIG))

$(PACK_STAMP): policies/requirements.txt constraints.txt
	$(PYTHON) -m venv $(PACK_VENV)
	$(PACK_VENV)/bin/pip install --quiet --no-compile --disable-pip-version-check -r policies/requirements.txt \
		-c constraints.txt
	touch $(PACK_STAMP)

drill: $(STAMP)
	$(BIN)/python -m drill

# Figures, not pass/fail: response benchmarks (written to benchmarks/RESULTS.md), then the policy pack.
bench: $(STAMP)
	$(BIN)/python -m benchmarks.bench_response
	$(BIN)/python -m benchmarks.bench_engine
	$(BIN)/python -m benchmarks.bench_policies
