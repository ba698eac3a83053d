# partnerkit — the two commands a fresh machine needs are `make demo` and `make test`.
#
# Every tool a test needs is installed by make itself, before the step that needs it, into the
# project (nothing installed by hand elsewhere takes part):
#   target/venv/                  Python packages of tests/chart/requirements.txt (a venv)
#   target/tools/bin/             cargo-nextest (cargo install --root)
#   target/go/                    Go's module and build caches (hack/kube-bins/env.sh)
#   target/kube-bins/<version>/   etcd, kube-apiserver, kube-controller-manager, helm
#                                 (hack/kube-bins/build.sh, from the pinned Go module)
#   target/image/                 the operator's image, partnerkit.oci.tar, and the image
#                                 assembler (hack/image, go-containerregistry pinned; make image)
#   target/node/                  playwright-core and axe-core (npm, pinned): the browser tests
#                                 (tests/browser/*.mjs drive Debian's chromium)
#   target/oidc-bins/             an OpenID Connect provider (mockoidc) and oauth2-proxy, from
#                                 the pinned Go modules (hack/oidc/build.sh): the portal's
#                                 sign-in tests
# Debian packages (an SMTP server, Chromium, Node.js and npm, the CA roots) come from
# scripts/install-test-deps.sh, which installs only what is missing.
SHELL := /bin/bash
CARGO ?= cargo
VENV := target/venv
PYTHON := $(VENV)/bin/python
TOOLS := target/tools
NEXTEST_VERSION := 0.9.151
NEXTEST := $(TOOLS)/bin/cargo-nextest
PLAYWRIGHT_VERSION := 1.65.2
AXE_VERSION := 4.14.1
NODE_STAMP := target/node/.stamp-playwright-$(PLAYWRIGHT_VERSION)-axe-$(AXE_VERSION)
KUBE_BINS := target/kube-bins/current
export HELM ?= $(CURDIR)/$(KUBE_BINS)/helm

.PHONY: demo demo-real demo-kube-sim test test-real test-image image real-bins helm-bin venv \
	nextest node oidc-bins deps docs-screenshots bench bench-100k bench-latency bench-scale bench-plot build dist lint crds \
	sync-chart clean

## The main job: the operator on the embedded API server (kube-sim), driven by kubectl
## as a platform admin and partner admins would.
demo: build node
	./scripts/install-test-deps.sh demo
	./scripts/partnerkit-demo.sh

## The same walk-through on the real control plane (scripts/real-cluster).
demo-real: build real-bins node
	./scripts/install-test-deps.sh demo
	BACKEND=real ./scripts/partnerkit-demo.sh

## kube-sim on its own, driven by kubectl.
demo-kube-sim: build
	./scripts/kube-sim-demo.sh

build:
	$(CARGO) build --release -p kube-sim --bin kube-sim
	$(CARGO) build --release --bin partnerkit

## Debian packages the tests need (SMTP server, Chromium, Node.js and npm, openssl, curl).
deps:
	./scripts/install-test-deps.sh

## The browser tests' Node packages, pinned, in the project: playwright-core (drives Debian's
## chromium; it downloads no browser) and axe-core (the accessibility checks).
node: $(NODE_STAMP)
$(NODE_STAMP):
	mkdir -p target/node
	npm install --prefix target/node --no-audit --no-fund --silent \
		playwright-core@$(PLAYWRIGHT_VERSION) axe-core@$(AXE_VERSION)
	touch $@

## The user guide's screenshots of every portal page (docs/portal/*.png), made by the browser
## test that checks those pages (tests/browser/portal.mjs).
docs-screenshots: deps node nextest
	PARTNERKIT_DOCS_SCREENSHOTS=1 $(NEXTEST) nextest run -p partnerkit --test portal \
		-E 'test(in_a_real_browser)'

## The Python virtual environment of the chart tests.
venv: $(VENV)/.stamp
$(VENV)/.stamp: tests/chart/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r tests/chart/requirements.txt
	touch $@

## cargo-nextest, pinned, in the project.
nextest: $(NEXTEST)
$(NEXTEST):
	$(CARGO) install --locked --root $(TOOLS) cargo-nextest@$(NEXTEST_VERSION) \
		--no-default-features --features default-no-update

## The real control plane's programs and helm, from the Kubernetes Go modules pinned in
## hack/kube-bins/go.mod (rebuilt only when the pin changes).
real-bins:
	./hack/kube-bins/build.sh
## The portal's sign-in tests' OIDC provider (mockoidc) and oauth2-proxy, pinned in hack/oidc.
oidc-bins:
	./hack/oidc/build.sh
## Only the real helm CLI (the chart tests use it).
helm-bin:
	./hack/kube-bins/build.sh helm

## The operator's image without a container engine: a static binary on scratch, as an OCI
## image-layout archive target/image/partnerkit.oci.tar named as the chart's default
## (image.repository:appVersion). The Dockerfile builds the same image with Docker.
image:
	./scripts/install-test-deps.sh image
	./scripts/image.sh

## The image's tests: layout, config, files, no shell, `partnerkit --version` from its root
## filesystem, in step with the Dockerfile (tests/image).
test-image: image venv
	$(PYTHON) -m pytest tests/image -q

## The image's tests, then unit tests, the operator's integration tests and kube-sim's fidelity
## suite (against in-process kube-sims); the operator's and the portal's scenarios once more
## with every watch event 300 ms late (kube-sim's watchLagMs, as on a busy kube-apiserver:
## nothing may trust a watch cache to hold what the API server just answered); then the Helm
## chart's tests (the real helm binary).
test: deps node venv nextest helm-bin oidc-bins test-image
	$(CARGO) build --workspace --all-targets
	$(NEXTEST) nextest run --workspace --no-fail-fast -E 'not binary(real_cluster)'
	PARTNERKIT_SIM_WATCH_LAG_MS=300 $(NEXTEST) nextest run -p partnerkit --no-fail-fast \
		-E 'binary(rules_tenant) | binary(rules_gitops) | binary(rules_invites) | binary(operator_smoke) | binary(portal)'
	$(PYTHON) -m pytest tests/chart -q

## The same scenarios on a real control plane: the one of $KUBECONFIG if set, else a fresh
## one from scripts/real-cluster (etcd, kube-apiserver, kube-controller-manager on loopback).
## Simulator-only tests (metrics, faults, token files, injected latency) are left out.
test-real: deps node venv nextest real-bins oidc-bins
	$(CARGO) build --workspace --all-targets
	NEXTEST=$(NEXTEST) PYTHON=$(PYTHON) ./scripts/test-real.sh

## The operator as it ships (the image's build profile, `dist`: release with whole-program LTO).
dist:
	$(CARGO) build --profile dist --bin partnerkit

## The operator benchmarks measure that build.
BENCH_OPERATOR = PARTNERKIT_BIN=$(CURDIR)/target/dist/partnerkit $(CARGO) bench --bench operator

## Throughput and memory figures (not tests).
bench: build dist
	$(CARGO) bench -p kube-sim --bench throughput
	$(BENCH_OPERATOR)

## The operator benchmark at 100,000 tenants (10 partners x 10,000); about 6 GiB of memory.
bench-100k: build dist
	BENCH_TENANTS=10000 $(BENCH_OPERATOR)

## The operator benchmark with kube-sim adding 5 ms to every request, 200 mutations in flight.
bench-latency: build dist
	BENCH_LATENCY_MS=5 BENCH_MAX_IN_FLIGHT=200 $(BENCH_OPERATOR)

## The operator benchmark at 1,000, 10,000, 30,000 and 100,000 tenants, then the plot.
bench-scale: build dist
	for n in 100 1000 3000 10000; do BENCH_TENANTS=$$n BENCH_IDLE_SECONDS=10 $(BENCH_OPERATOR) || exit 1; done
	$(MAKE) bench-plot

## docs/bench-operator.png from target/bench/operator-*.json (matplotlib in target/venv).
bench-plot: $(VENV)/.bench-stamp
	$(PYTHON) benches/plot.py
$(VENV)/.bench-stamp: benches/requirements.txt $(VENV)/.stamp
	$(VENV)/bin/pip install -q --disable-pip-version-check -r benches/requirements.txt
	touch $@

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
