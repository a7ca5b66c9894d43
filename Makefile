# Isobar — make demo | make test | make bench | make bootstrap
SHELL := /bin/bash
SWIFT ?= swift
VENV := .venv
PYTHON := $(VENV)/bin/python
ISOBAR := .build/debug/isobar
SWIFT_SOURCES := Sources Tests Package.swift

.PHONY: demo test bench bootstrap build lint format soundness unit conformance venv clean simulator-check baselines simulator-results

## Install missing Debian packages (libhiredis-dev, redis-server, python3-venv, wrk).
bootstrap:
	@scripts/bootstrap.sh

## Python venv with the official openai and anthropic SDKs, for the conformance suite and demo clients.
venv: $(VENV)/.installed
$(VENV)/.installed: Tests/Conformance/requirements.txt | bootstrap
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -r Tests/Conformance/requirements.txt
	touch $@

build:
	$(SWIFT) build

## Run a two-region mesh with emulated engines on this machine.
demo: bootstrap build
	$(ISOBAR) up topology/local-demo.yaml

## Format lint, soundness, build (warnings are errors), unit + integration tests, SDK conformance,
## simulator baselines and calibration fidelity (release build: simulations are slow in debug).
test: bootstrap lint
	$(SWIFT) build --build-tests
	scripts/soundness.sh
	$(SWIFT) test --skip-build
	$(MAKE) conformance
	$(MAKE) simulator-check

simulator-check: venv
	$(SWIFT) build -c release --product isobar
	$(PYTHON) scripts/check_simulator.py --isobar .build/release/isobar

## Regenerate the results table of simulator/README.md from simulator/baselines/.
simulator-results:
	python3 scripts/results_table.py

## Rewrite simulator/baselines/ from the shipped scenarios (after an intended change; review the diff).
baselines: venv
	$(SWIFT) build -c release --product isobar
	$(PYTHON) scripts/check_simulator.py --isobar .build/release/isobar --update

lint:
	$(SWIFT) format lint --strict --recursive --parallel --configuration .swift-format $(SWIFT_SOURCES)

format:
	$(SWIFT) format --in-place --recursive --parallel --configuration .swift-format $(SWIFT_SOURCES)

soundness:
	scripts/soundness.sh

conformance: venv
	$(SWIFT) build
	ISOBAR_BIN=$(ISOBAR) $(PYTHON) -m pytest -q Tests/Conformance

## Benchmarks (release build): gateway overhead against a zero-latency upstream; engine model, routing
## decisions and simulator throughput.
bench: bootstrap venv
	$(SWIFT) build -c release --product isobar
	$(SWIFT) build -c release --product IsobarBenchmarks
	$(PYTHON) scripts/bench.py --isobar .build/release/isobar
	.build/release/IsobarBenchmarks .

clean:
	rm -rf .build $(VENV)
