# Isobar — make demo | make test | make bench | make bootstrap
SHELL := /bin/bash
SWIFT ?= swift
VENV := .venv
PYTHON := $(VENV)/bin/python
ISOBAR := .build/debug/isobar
SWIFT_SOURCES := Sources Tests Package.swift
# Every release build: the Swift runtime linked in, so the binary runs without a toolchain (deploy/README.md).
# `make test` builds its own in .build-release (scripts/test.sh).
RELEASE_SCRATCH ?= .build
RELEASE_BUILD = $(SWIFT) build -c release --static-swift-stdlib --scratch-path $(RELEASE_SCRATCH)
RELEASE = $(RELEASE_SCRATCH)/release

.PHONY: demo test bench bench-balance bootstrap build lint format soundness unit conformance mesh venv clean simulator-check baselines simulator-results release deploy-check

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

## Run a three-region mesh with emulated engines on this machine.
demo: bootstrap build
	$(ISOBAR) up topology/local-demo.yaml

## Format lint, soundness, build (warnings are errors), unit + integration tests, the two-minute mixed-fault
## soak on its own (it keeps both cores busy), SDK conformance, the five-process mesh, deploy/ checked; the
## release binary, simulator baselines and calibration fidelity (release build: simulations are slow in debug)
## built and run beside the soak and the Python suites at the lowest priority (scripts/test.sh).
test: bootstrap lint venv
	SWIFT="$(SWIFT)" scripts/test.sh

## The release binary: builds it with the Swift runtime linked in, checks it links only system libraries,
## prints its size and start-up time.
release: bootstrap
	$(RELEASE_BUILD) --product isobar
	python3 scripts/release_check.py $(RELEASE)/isobar

## deploy/: Kubernetes manifests against the API schema, compose file, Dockerfile and systemd unit
## (systemd-analyze verify), Prometheus config, alert rules and their tests (promtool), Grafana dashboards.
deploy-check: venv build
	$(PYTHON) scripts/check_deploy.py --isobar $(ISOBAR)
	$(PYTHON) deploy/prometheus/check.py

## Tier (d): shipped scenarios against simulator/baselines/, calibration, capacity plan; then every scenario at
## 60/80/95 % load under every policy against simulator/results/, the README table and the issue-4 targets.
simulator-check: venv release
	$(PYTHON) scripts/check_simulator.py --isobar $(RELEASE)/isobar
	$(PYTHON) scripts/results_table.py --check --isobar $(RELEASE)/isobar

## Run every shipped scenario at 60/80/95 % load under every policy (least-request and isobar at two more
## seeds too): rewrites simulator/results/ and the results tables of simulator/README.md (review the diff).
simulator-results:
	$(RELEASE_BUILD) --product isobar
	python3 scripts/results_table.py --isobar $(RELEASE)/isobar

## Rewrite simulator/baselines/ and simulator/results/ (with the README table) from the shipped scenarios
## (after an intended change; review the diff).
baselines: venv
	$(RELEASE_BUILD) --product isobar
	$(PYTHON) scripts/check_simulator.py --isobar $(RELEASE)/isobar --update
	$(PYTHON) scripts/results_table.py --isobar $(RELEASE)/isobar

lint:
	$(SWIFT) format lint --strict --recursive --parallel --configuration .swift-format $(SWIFT_SOURCES)

format:
	$(SWIFT) format --in-place --recursive --parallel --configuration .swift-format $(SWIFT_SOURCES)

soundness:
	scripts/soundness.sh

conformance: venv
	$(SWIFT) build
	ISOBAR_BIN=$(ISOBAR) $(PYTHON) -m pytest -q Tests/Conformance

## Five real `isobar serve` processes gossiping (kill, SIGSTOP, restart, garbage datagrams, leave), then the
## same inside a network namespace that drops 10 % of UDP (netem, else iptables; skipped without root).
mesh: venv
	$(SWIFT) build
	ISOBAR_BIN=$(ISOBAR) $(PYTHON) -m pytest -q -s Tests/Mesh

## Live balancing: isobar up with emulated engines of unequal speed under skewed-length load, every
## policy side by side (p50/p99 TTFT, throughput); fails if isobar does not have the lowest p99.
bench-balance: bootstrap venv
	$(RELEASE_BUILD) --product isobar
	$(PYTHON) scripts/bench_balance.py --isobar $(RELEASE)/isobar

## Benchmarks (release build): gateway overhead against a zero-latency upstream; engine model, routing
## decisions and simulator throughput.
bench: bootstrap venv
	$(RELEASE_BUILD) --product isobar
	$(RELEASE_BUILD) --product IsobarBenchmarks
	$(PYTHON) scripts/bench.py --isobar $(RELEASE)/isobar
	$(RELEASE)/IsobarBenchmarks .

clean:
	rm -rf .build $(VENV)
