# pxsync build / test entry points. `make` or `make help` lists the targets.
# Targets that talk to Postgres / NATS depend on `services`, which reuses running servers or
# starts local ones and writes their URLs to target/services.env; recipes load that file.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

CARGO ?= cargo
# Plain output in CI (logs are read by tools), cargo's own choice elsewhere; an existing value wins.
CARGO_TERM_COLOR ?= $(if $(CI),never,auto)
export CARGO_TERM_COLOR
PROPTEST_CASES ?= 64
export PROPTEST_CASES

SERVICES_ENV := target/services.env
# Prefix for recipe lines that need PXSYNC_DATABASE_URL / PXSYNC_NATS_URL exported.
WITH_ENV := set -a; . $(SERVICES_ENV); set +a;

.PHONY: help services services-stop services-status build lint check-pure manifests fmt test demo demo-smoke bench

help: ## Show this list of targets
	@echo "pxsync make targets:"
	@awk 'BEGIN { FS = ":[^#]*## " } /^[a-zA-Z0-9_.-]+:[^#]*## / { printf "  %-16s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)
	@echo "Variables: PGPORT (5432), NATS_PORT (4222), PROPTEST_CASES ($(PROPTEST_CASES)), CARGO_TERM_COLOR ($(CARGO_TERM_COLOR))"

services: ## Reuse or start Postgres + NATS JetStream; write target/services.env
	@bash scripts/services.sh

services-stop: ## Stop only the servers that scripts/services.sh started (never pre-existing ones)
	@bash scripts/services.sh stop

services-status: ## Show target/services.env and the servers services.sh started
	@bash scripts/services.sh status

build: ## Debug build of all binaries (cargo build --workspace --bins)
	$(CARGO) build --workspace --bins

lint: ## rustfmt check, clippy -D warnings, purity check of pxsync-core, deploy/ manifests check
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	bash scripts/check-pure.sh
	bash scripts/check-manifests.sh

check-pure: ## Only the pxsync-core purity check (dependency tree, uuid features)
	bash scripts/check-pure.sh

manifests: ## Render deploy/overlays/* and validate offline (kubernetes-validate), Dockerfile binaries, PXSYNC_* names
	bash scripts/check-manifests.sh

fmt: ## Format the workspace (cargo fmt --all)
	$(CARGO) fmt --all

test: services ## services, lint, the whole test suite (nextest --profile ci, else cargo test), demo-smoke
	@$(WITH_ENV) echo "test: PXSYNC_DATABASE_URL=$$PXSYNC_DATABASE_URL PXSYNC_NATS_URL=$$PXSYNC_NATS_URL PROPTEST_CASES=$$PROPTEST_CASES"
	$(MAKE) lint
	@$(WITH_ENV) \
	if $(CARGO) nextest --version >/dev/null 2>&1; then \
	  echo "test: running cargo nextest run --workspace --profile ci"; \
	  $(CARGO) nextest run --workspace --profile ci; \
	else \
	  echo "test: cargo-nextest not found; running cargo test --workspace"; \
	  $(CARGO) test --workspace; \
	fi
	$(MAKE) demo-smoke

demo: services build ## Run the demo (scripts/demo.sh) against the services
	@test -f scripts/demo.sh || { echo "demo: scripts/demo.sh is missing" >&2; exit 1; }
	@$(WITH_ENV) bash scripts/demo.sh

demo-smoke: services build ## Quick non-interactive demo run (scripts/demo.sh --smoke)
	@test -f scripts/demo.sh || { echo "demo-smoke: scripts/demo.sh is missing" >&2; exit 1; }
	@$(WITH_ENV) bash scripts/demo.sh --smoke

bench: services ## Benchmarks: cargo run --release -p pxsync-bench -- all (BENCH_ARGS replaces `all`, e.g. BENCH_ARGS="project --orders 400000")
	@$(WITH_ENV) $(CARGO) run --release -p pxsync-bench -- $(or $(BENCH_ARGS),all)
