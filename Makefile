# partner-billing-operator -- see README.md.
#
#   make demo    build, start the local AWS emulator, plan + apply examples/ against it
#   make test    everything CI checks (fmt, clippy, all tests incl. emulator-backed, CRD drift,
#                the real-server suite against a local kube-apiserver)
#   make crds    regenerate crds/ from the Rust types

SHELL := /bin/bash
.DEFAULT_GOAL := help

# Builds are slow on two cores: keep one target dir outside the clone so every clone, and
# CI, reuses it.
CARGO_TARGET_DIR ?= $(HOME)/.cache/partner-billing-operator/target
export CARGO_TARGET_DIR
CARGO ?= cargo
BIN := $(CARGO_TARGET_DIR)/debug/partner-billing-operator
EMULATOR := tests/emulator
DEMO_DIR := $(CARGO_TARGET_DIR)/demo
# The folder `make demo` plans and applies (a test runs the demo on a copy with planted secrets).
EXAMPLES ?= examples

.PHONY: help
help:
	@echo "make demo | make test | make bench | make crds | make build | make emulator-test | make cluster-test"

.PHONY: toolchain
toolchain:
	@command -v $(CARGO) >/dev/null || { echo "cargo is required (https://rustup.rs)"; exit 1; }
	@command -v python3 >/dev/null || { echo "python3 (3.10+) is required for the AWS emulator"; exit 1; }
	@$(CARGO) fmt --version >/dev/null 2>&1 || rustup component add rustfmt
	@$(CARGO) clippy --version >/dev/null 2>&1 || rustup component add clippy

.PHONY: build
build: toolchain
	$(CARGO) build --locked

.PHONY: venv
venv:
	@$(EMULATOR)/ensure-venv.sh >/dev/null

.PHONY: demo
demo: build venv
	@set -euo pipefail; \
	mkdir -p $(DEMO_DIR); \
	port=$$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'); \
	$(EMULATOR)/start.sh $$port $(DEMO_DIR)/emulator.pid $(DEMO_DIR)/emulator.log; \
	trap 'kill $$(cat $(DEMO_DIR)/emulator.pid) 2>/dev/null || true' EXIT; \
	py="$$($(EMULATOR)/ensure-venv.sh)/bin/python"; url=http://127.0.0.1:$$port; \
	"$$py" $(EMULATOR)/seed_demo.py seed $$url; \
	export AWS_ENDPOINT_URL=$$url AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true; \
	echo; echo "\$$ partner-billing-operator plan -f $(EXAMPLES)/"; \
	rc=0; $(BIN) plan -f $(EXAMPLES)/ || rc=$$?; \
	if [ $$rc -eq 1 ]; then exit 1; fi; \
	echo; echo "\$$ partner-billing-operator apply -f $(EXAMPLES)/    (creates accounts; the invitation stays open)"; \
	$(BIN) apply -f $(EXAMPLES)/ || true; \
	echo; "$$py" $(EMULATOR)/seed_demo.py accept-invitations $$url; \
	"$$py" $(EMULATOR)/seed_demo.py usage $$url; \
	echo; echo "\$$ partner-billing-operator apply -f $(EXAMPLES)/    (the invited account has joined; margins and organization costs from the usage)"; \
	$(BIN) apply -f $(EXAMPLES)/; \
	echo; echo "\$$ partner-billing-operator plan -f $(EXAMPLES)/    (nothing left to change)"; \
	$(BIN) plan -f $(EXAMPLES)/; \
	echo; echo "\$$ partner-billing-operator apply -f $(EXAMPLES)/ -o yaml   (statuses)"; \
	$(BIN) apply -f $(EXAMPLES)/ -o yaml

TOOLS := tests/tools

.PHONY: test
test: toolchain fmt-check module-cycles clippy emulator-test rust-test crd-check chart-test cluster-test
	@echo "make test: all checks passed"

.PHONY: fmt-check
fmt-check:
	$(CARGO) fmt --all -- --check

# No two files of src/ may use each other, directly or around a loop (the file-level `use`
# graph; tests/tools/module_cycles.py prints every cycle it finds).
.PHONY: module-cycles
module-cycles:
	python3 $(TOOLS)/module_cycles.py src

.PHONY: clippy
clippy:
	$(CARGO) clippy --locked --all-targets --features failpoints -- -D warnings

# The emulator's own tests (fault injection, validation, counting, error shapes).
.PHONY: emulator-test
emulator-test: venv
	cd $(EMULATOR) && "$$(./ensure-venv.sh)/bin/python" -m unittest discover -q -p 'test_*.py' 

# Unit, mocked-API-server, CEL and emulator-backed tests, the fault storm and the crash
# tests (failpoints after every AWS write: the `failpoints` feature, test builds only). The
# emulator-backed tests start their own emulator (tests/common/mod.rs) unless
# PBO_EMULATOR_URL names a running one.
.PHONY: rust-test
rust-test: venv tools
	PBO_TOOLS_DIR=$$($(TOOLS)/ensure-tools.sh) $(CARGO) test --locked --all-targets --features failpoints

# crds/ and the chart's crds/ must be exactly what `partner-billing-operator crd` prints
# (also a cargo test).
.PHONY: crd-check
crd-check: build
	@tmp=$$(mktemp -d); trap 'rm -rf $$tmp' EXIT; \
	$(BIN) crd --dir $$tmp; \
	diff -ru crds $$tmp || { echo "crds/ is out of date: run 'make crds'"; exit 1; }; \
	diff -ru charts/partner-billing-operator/crds $$tmp || { echo "the chart's crds/ is out of date: run 'make crds'"; exit 1; }

# examples/gitops/argocd/health/*.lua from one template (chart-test fails when they drift).
.PHONY: argocd-health
argocd-health:
	python3 $(TOOLS)/gen_argocd_health.py

.PHONY: crds
crds: build
	$(BIN) crd --dir crds
	$(BIN) crd --dir charts/partner-billing-operator/crds
	$(BIN) iam --dir charts/partner-billing-operator/iam

# helm lint/template over value sets, offline validation of built-in kinds, RBAC checks,
# the Argo CD health checks in real Lua. Installs helm, kubectl and a tools venv itself.
.PHONY: chart-test
chart-test:
	@tools=$$($(TOOLS)/ensure-tools.sh); \
	cd $(TOOLS) && PBO_TOOLS_DIR=$$tools "$$tools/venv/bin/python" -m unittest discover -q -p 'test_*.py'

# Figures, not pass/fail timings (not part of `make test`): steady-state AWS calls at 1,000
# accounts with 500 billing groups, creation-slot use over 100 creations, the watch cache at
# 10,000 objects, the planner's time per object, then bench-scale (file mode and the
# controller at BENCH_SIZES, release build). The 5,000-account steady state takes minutes of
# emulator time and adds nothing bench-scale does not show: `make bench-large` runs it.
.PHONY: bench
bench: build venv
	$(CARGO) test --locked --features failpoints --test bench -- --ignored --nocapture --test-threads 1 --skip bench_steady_state_5000 2>&1 | grep -o 'bench [a-z-]*: .*'
	$(CARGO) bench --locked --bench planner 2>&1 | grep -o 'bench [a-z-]*: .*'
	@$(MAKE) --no-print-directory bench-scale

.PHONY: bench-large
bench-large: build venv
	$(CARGO) test --locked --features failpoints --test bench bench_steady_state_5000 -- --ignored --nocapture 2>&1 | grep -o 'bench [a-z-]*: .*'

# The operator's own cost at BENCH_SIZES objects (tests/tools/bench_filemode.py,
# bench_controller.py): for plan, apply and plan again, its CPU seconds (user + sys of the
# operator process alone, from its rusage: the emulator's are not in it) and peak RSS, and the
# AWS calls the emulator counted, by operation, next to the formula ceil(accounts/20) +
# ceil(groups/100); then `run` on a real kube-apiserver (tests/cluster) with the same objects:
# its resident memory, CPU and AWS calls of the initial sync. The release build (BENCH_PROFILE;
# the first one builds every dependency optimised: about 10 minutes on two cores, then cached
# in CARGO_TARGET_DIR).
BENCH_SIZES ?= 1000 10000
BENCH_PROFILE ?= release
BENCH_BIN := $(CARGO_TARGET_DIR)/$(if $(filter dev debug,$(BENCH_PROFILE)),debug,$(BENCH_PROFILE))/partner-billing-operator
.PHONY: bench-scale
bench-scale: venv cluster-prereqs
	$(CARGO) build --locked --profile $(BENCH_PROFILE)
	@set -euo pipefail; mkdir -p $(DEMO_DIR); \
	port=$$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'); \
	$(EMULATOR)/start.sh $$port $(DEMO_DIR)/bench-emulator.pid $(DEMO_DIR)/bench-emulator.log; \
	trap 'kill $$(cat $(DEMO_DIR)/bench-emulator.pid) 2>/dev/null || true' EXIT; \
	py="$$($(EMULATOR)/ensure-venv.sh)/bin/python"; \
	"$$py" $(TOOLS)/bench_filemode.py $(BENCH_BIN) http://127.0.0.1:$$port $(BENCH_SIZES); \
	"$$py" $(TOOLS)/bench_controller.py $(BENCH_BIN) http://127.0.0.1:$$port $(CARGO_TARGET_DIR)/bench-cluster $(BENCH_SIZES)

.PHONY: tools
tools:
	@$(TOOLS)/ensure-tools.sh

# The real-server suite (tests/real_cluster): CRDs, printer columns, kubectl explain and the
# bad-input corpus on a real kube-apiserver; the chart installed with helm; the operator run out
# of cluster with its ServiceAccount's token only (the chart's RBAC) against the AWS emulator;
# two replicas with leader election; tenancy by RBAC. Without PBO_E2E_KUBECONFIG it starts
# etcd, kube-apiserver and kube-controller-manager on loopback (tests/cluster/start.sh; the
# binaries are built from their Go modules on first use by tests/cluster/ensure-kube.sh, then
# cached) and always stops them; their data and logs, and the operators' logs, stay in
# CLUSTER_DIR until the next run.
# The suite's tests are #[ignore]d in `cargo test --all-targets` and fail when no cluster is
# given: they never pass by skipping.
CLUSTER_DIR ?= $(CARGO_TARGET_DIR)/cluster-test
# What tests/cluster runs to build and start the local cluster: checked up front, with what
# each is for (not needed when PBO_E2E_KUBECONFIG names a cluster of yours).
.PHONY: cluster-prereqs
cluster-prereqs: toolchain
	@if [ -z "$${PBO_E2E_KUBECONFIG:-}" ]; then \
	  command -v go >/dev/null || { echo "go is required to build etcd and kube-apiserver (tests/cluster/ensure-kube.sh; https://go.dev/dl/)"; exit 1; }; \
	  command -v openssl >/dev/null || { echo "openssl is required for the local cluster's certificates (tests/cluster/start.sh)"; exit 1; }; \
	  command -v curl >/dev/null || { echo "curl is required: tests/cluster/start.sh probes etcd and kube-apiserver with it"; exit 1; }; \
	  command -v flock >/dev/null || { echo "flock (util-linux) is required: tests/cluster/ensure-kube.sh builds under a lock"; exit 1; }; \
	  command -v ss >/dev/null || { echo "ss (iproute2) is required: tests/cluster/start.sh picks free ports with it"; exit 1; }; \
	fi
.PHONY: cluster-test
cluster-test: venv tools cluster-prereqs
	@set -euo pipefail; \
	PBO_TOOLS_DIR=$$($(TOOLS)/ensure-tools.sh); export PBO_TOOLS_DIR; \
	$(CARGO) test --locked --features failpoints --test real_cluster --no-run; \
	tests/cluster/stop.sh $(CLUSTER_DIR) 2>/dev/null || true; \
	rm -rf $(CLUSTER_DIR); mkdir -p $(CLUSTER_DIR); \
	if [ -z "$${PBO_E2E_KUBECONFIG:-}" ]; then \
	  trap 'tests/cluster/stop.sh $(CLUSTER_DIR)' EXIT; \
	  trap 'exit 130' INT TERM; \
	  tests/cluster/start.sh $(CLUSTER_DIR); \
	  source $(CLUSTER_DIR)/cluster.env; \
	  export PBO_E2E_KUBECONFIG=$$KUBECONFIG KUBE_BIN; \
	fi; \
	started=$$(date +%s); \
	PBO_E2E_WORK_DIR=$(CLUSTER_DIR) $(CARGO) test --locked --features failpoints --test real_cluster -- --ignored --nocapture; \
	echo "cluster-test: the suite took $$(( $$(date +%s) - started )) s"

# The same suite against a cluster of yours (kind on a laptop, say): it installs the chart and
# creates namespaces there.
.PHONY: e2e
e2e:
	PBO_E2E_KUBECONFIG=$${PBO_E2E_KUBECONFIG:-$${KUBECONFIG:-$$HOME/.kube/config}} $(MAKE) cluster-test
