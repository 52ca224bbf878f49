# plugctl — `make help` lists the targets. Every target runs on the project's pinned Node 24
# (node_modules/.bin/node, installed by `make deps`), never on the machine's own node.
SHELL := /bin/bash
BIN := node_modules/.bin
NODE := $(BIN)/node
export PATH := $(CURDIR)/$(BIN):$(PATH)
ENV := bash test/env/plugin-env.sh

.DEFAULT_GOAL := help

help: ## list the targets
	@grep -hE '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{ printf "  make %-18s %s\n", $$1, $$2 }'

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

deps: node_modules/.installed ## install npm dependencies (pins Node 24 through the `node` package)

env-install: ## install the apt packages the integration tests and benchmarks need (root)
	$(ENV) install
	bash test/env/registry-env.sh install

kube-env-install: ## build kube-apiserver 1.20 from Debian's source package for the Kubernetes tests (root; ~10 min once, cached in /var/cache/kube-env)
	bash test/env/kube-env.sh install

build: deps ## compile TypeScript to dist/ (the CLI also runs from source without it)
	$(BIN)/tsc -p tsconfig.build.json

lint: deps ## eslint, prettier --check, the type check and the layering rules (.dependency-cruiser.js)
	$(BIN)/eslint --max-warnings 0 .
	$(BIN)/prettier --check .
	$(BIN)/tsc --noEmit -p .
	$(BIN)/depcruise controller --config .dependency-cruiser.js --output-type err-long

format: deps ## rewrite files with prettier
	$(BIN)/prettier --write .

crds: deps ## regenerate crds/ and the precompiled validator from the JSON Schema in controller/api/schema.ts
	$(NODE) controller/api/generate.ts

docs: deps ## regenerate the generated docs (docs/errors.md from controller/error-codes.ts; list in controller/docs/generate.ts)
	$(NODE) controller/docs/generate.ts

# Every test run prints the spec report, then one block listing whatever was skipped and why, and
# writes a summary (tests run, per file, skips) to $(RESULTS)/<target>.json for test-floor
# (test/report/closing.ts).
RESULTS := .tmp/test-results
REPORTERS := --test-reporter=spec --test-reporter-destination=stdout \
	--test-reporter=./test/report/closing.ts --test-reporter-destination=stdout

test-unit: deps ## unit tests (pure logic, no services)
	@rm -f $(RESULTS)/unit.json
	PLUGCTL_TEST_SUMMARY=$(RESULTS)/unit.json $(NODE) --test $(REPORTERS) 'test/unit/**/*.test.ts'

test-hostile: deps ## hostile input (lying registries, hostile YAML, layers, contexts) against the real client and embedded store; no services
	@rm -f $(RESULTS)/hostile.json
	PLUGCTL_TEST_SUMMARY=$(RESULTS)/hostile.json $(NODE) --test $(REPORTERS) 'test/hostile/**/*.test.ts'

test-package: deps env-install ## the npm package packed, installed offline into a temp prefix and run; the systemd unit verified
	@rm -f $(RESULTS)/package.json
	PLUGCTL_TEST_SUMMARY=$(RESULTS)/package.json $(NODE) --test $(REPORTERS) 'test/package/**/*.test.ts'

test-integration: deps env-install kube-env-install ## integration tests against real dockerd, registry, plugins and kube-apiserver (root, serial)
	@rm -f $(RESULTS)/integration.json
	PLUGCTL_TEST_SUMMARY=$(RESULTS)/integration.json \
		$(NODE) --test --test-concurrency=1 $(REPORTERS) 'test/integration/**/*.test.ts'

test-floor: deps ## check the last unit, hostile, package and integration runs against test/floor.json (counts, patterns, skips)
	$(NODE) test/report/floor.ts $(RESULTS)

# Strict: a suite whose prerequisite (root, runc, dockerd, docker-registry, ...) is missing fails,
# naming it and how to install it, instead of being skipped (test/prerequisites.ts).
test: lint ## everything CI runs: lint, unit, hostile-input, package and integration tests (strict: nothing skipped), test-floor
	PLUGCTL_TEST_STRICT=1 $(MAKE) --no-print-directory test-unit
	PLUGCTL_TEST_STRICT=1 $(MAKE) --no-print-directory test-hostile
	PLUGCTL_TEST_STRICT=1 $(MAKE) --no-print-directory test-package
	PLUGCTL_TEST_STRICT=1 $(MAKE) --no-print-directory test-integration
	$(MAKE) --no-print-directory test-floor

bench: deps env-install ## benchmarks against real dockerd and registries (prints comparison tables)
	$(NODE) bench/cold-apply.ts
	$(NODE) bench/update-check.ts
	$(NODE) bench/controller.ts
	$(NODE) bench/embedded-pull.ts
	$(NODE) bench/gc.ts
	$(NODE) bench/file-source.ts

bench-soak: deps env-install ## 10-minute soak of plugctl run: flaky registry, drift by hand every second
	$(NODE) bench/soak.ts

image: deps ## build the container image plugctl:VERSION from the Dockerfile (pulls node:24.21.0-bookworm-slim)
	docker build --build-arg VERSION="$$($(NODE) -p "require('./package.json').version")" \
		--build-arg REVISION="$$(git rev-parse HEAD 2>/dev/null || echo unknown)" \
		-t "plugctl:$$($(NODE) -p "require('./package.json').version")" .

demo: deps ## converge examples/ on the embedded store (installs a registry, runc; no dockerd), then clean up
	bash test/env/demo.sh

.PHONY: help deps env-install kube-env-install build lint format crds docs test-unit test-hostile test-package test-integration test-floor test bench bench-soak image demo
