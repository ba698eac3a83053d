# partnerkit — the two commands a fresh machine needs are `make demo` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: demo demo-kube-sim test test-real bench build lint crds sync-chart clean

## The main job: the operator on the embedded API server (kube-sim), driven by kubectl
## as a platform admin and partner admins would.
demo: build
	./scripts/install-test-deps.sh smtp
	./scripts/partnerkit-demo.sh

## kube-sim on its own, driven by kubectl.
demo-kube-sim: build
	./scripts/kube-sim-demo.sh

build:
	$(CARGO) build --release -p kube-sim --bin kube-sim
	$(CARGO) build --release --bin partnerkit

## Unit tests, the operator's integration tests and kube-sim's fidelity suite (against
## in-process kube-sims), then the Helm chart's tests.
test:
	./scripts/install-test-deps.sh
	$(CARGO) build --workspace --all-targets
	@if command -v cargo-nextest >/dev/null 2>&1; then \
		$(CARGO) nextest run --workspace --no-fail-fast; \
	else \
		$(CARGO) test --workspace --no-fail-fast; \
	fi
	python3 -m pip install -q --disable-pip-version-check -r tests/chart/requirements.txt
	python3 -m pytest tests/chart -q

## The same scenarios against the real cluster of $KUBECONFIG: kube-sim's fidelity suite, then
## the operator's rules (one at a time: each test's operator reconciles the whole cluster).
## Simulator-only tests (metrics, faults, token files, injected latency) are left out.
test-real:
	@test -n "$$KUBECONFIG" || { echo "make test-real: set KUBECONFIG to a real cluster" >&2; exit 2; }
	FIDELITY_REAL=1 $(CARGO) nextest run -p kube-sim -E 'kind(test) and not binary(fidelity_sim_only)' --no-fail-fast
	PARTNERKIT_E2E_REAL=1 $(CARGO) nextest run -p partnerkit -E 'binary(/^rules_/) and not binary(rules_sim_only)' --test-threads 1 --no-fail-fast

## Throughput and memory figures (not tests).
bench: build
	$(CARGO) bench -p kube-sim --bench throughput
	$(CARGO) bench --bench operator

## Regenerate crds/ from the API types (a test fails when they drift).
crds:
	$(CARGO) run -q --bin partnerkit -- crdgen crds

## Copy `partnerkit manifests` into the chart (a test fails when they drift).
sync-chart: crds
	$(CARGO) build -q --bin partnerkit
	./scripts/sync-chart.sh

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

clean:
	$(CARGO) clean
