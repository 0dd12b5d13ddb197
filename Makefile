# otelcol-failover: build, generate, lint and test.
# Every tool is built from a pinned Go module (tools/go.mod); nothing global is assumed
# beyond Go, gcc and (for the local ClickHouse) npm.

SHELL        := /usr/bin/env bash
.SHELLFLAGS  := -eu -o pipefail -c
ROOT         := $(CURDIR)
BIN_DIR      := $(ROOT)/bin
TOOLS_BIN    := $(ROOT)/.tools
OCB          := $(TOOLS_BIN)/builder
MDATAGEN     := $(TOOLS_BIN)/mdatagen
GOLANGCI_LINT := $(TOOLS_BIN)/golangci-lint
COMPONENTS   := failovergroupexporter dlqroutingconnector
DIST_DIR     := $(ROOT)/distribution/build
COLLECTOR    := $(BIN_DIR)/otelcol-failover
DLQ          := $(BIN_DIR)/dlq
OTELCOL_VERSION := v0.155.0

GIT_SHA      := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
GIT_DIRTY    := $(shell test -n "$$(git status --porcelain 2>/dev/null)" && echo .dirty)
VERSION      ?= 0.1.0-dev+$(GIT_SHA)$(GIT_DIRTY)

GO_TEST_FLAGS ?= -race -count=1 -timeout 40m

.PHONY: all demo bench deps build image tools generate check-generate lint test test-unit test-allocs devservers clean help

all: build

help:
	@echo "make demo           outage, failover and replay on local ClickHouse and Kafka"
	@echo "make bench          load benchmarks of the binary, written to BENCHMARKS.md"
	@echo "make build          build bin/otelcol-failover with ocb (pinned) and bin/dlq"
	@echo "make image          container image otelcol-failover:<version> and :latest (podman or docker)"
	@echo "make test           lint, check generated code, build everything, run every test"
	@echo "make lint           gofmt, go vet, golangci-lint (pinned), promtool on deploy/monitoring"
	@echo "make generate       regenerate mdatagen code"
	@echo "make devservers     build bin/devclickhouse and bin/devkafka"

## System packages the build and tests need: gcc (cgo, race detector), npm
## (fetches libchdb.so for the local ClickHouse), git, prometheus (the server
## and promtool: deploy/monitoring's rules are checked by lint and the
## monitoring tests run a real Prometheus), and for the image test a
## container engine: podman with runc (crun, podman's other runtime, fails on
## hosts with hybrid cgroups), unless podman or a running Docker engine is
## already there. Installed with apt-get when missing and running as root;
## otherwise say what to install.
CONTAINER_TOOLS = $(shell command -v podman >/dev/null 2>&1 || docker info >/dev/null 2>&1 || echo podman runc)
SYSTEM_TOOLS = gcc npm git prometheus $(CONTAINER_TOOLS)
deps:
	@missing=""; for t in $(SYSTEM_TOOLS); do command -v $$t >/dev/null || missing="$$missing $$t"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing:$$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else echo "missing tools:$$missing (install them with your package manager)"; exit 1; fi; \
	fi
	@test -s /etc/ssl/certs/ca-certificates.crt || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing: ca-certificates"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ca-certificates; \
	  else echo "missing /etc/ssl/certs/ca-certificates.crt (install ca-certificates)"; exit 1; fi; }
	@command -v go >/dev/null || { echo "Go is required (go.mod names the version)"; exit 1; }

## Tools, pinned in tools/go.mod.
tools: $(OCB) $(MDATAGEN)

$(OCB): tools/go.mod tools/go.sum
	cd tools && go build -o $@ go.opentelemetry.io/collector/cmd/builder

$(MDATAGEN): tools/go.mod tools/go.sum
	cd tools && go build -o $@ go.opentelemetry.io/collector/cmd/mdatagen

## Distribution: ocb generates distribution/build (ignored) and we compile it
## with the version stamped in, so `otelcol-failover --version` names the commit.
## ocb's get-modules step (`go mod tidy`) is replaced by distribution/gomod.sh,
## which says why. bin/dlq (cmd/dlq, the DLQ tool) is built from this module.
build: $(OCB)
	@mkdir -p $(BIN_DIR) $(DIST_DIR)
	sed -e 's|^  version: .*|  version: $(VERSION)|' builder-config.yaml > $(DIST_DIR)/.builder-config.yaml
	$(OCB) --config $(DIST_DIR)/.builder-config.yaml --skip-compilation --skip-get-modules
	distribution/gomod.sh write builder-config.yaml $(DIST_DIR) $(OTELCOL_VERSION)
	cd $(DIST_DIR) && GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o $(COLLECTOR) .
	distribution/gomod.sh check builder-config.yaml $(DIST_DIR)
	@$(COLLECTOR) --version
	CGO_ENABLED=0 go build -trimpath -ldflags='-s -w -X main.version=$(VERSION)' -o $(DLQ) ./cmd/dlq

## Container image (distribution/Containerfile): the static binary on an empty
## base, non-root (10001), CA bundle, default config; nothing is pulled. Built
## with podman, or docker when podman is absent (CONTAINER_ENGINE= to choose)
## from a staging dir (bin/image-context), tagged otelcol-failover:<VERSION>
## (`+` becomes `_`) and otelcol-failover:latest. The image test in
## distribution/ builds it with the same script.
image: build
	distribution/image/build.sh $(COLLECTOR)

## mdatagen output is committed (as in contrib) and checked for staleness.
generate: $(MDATAGEN)
	for c in $(COMPONENTS); do (cd $$c && $(MDATAGEN) metadata.yaml); done

# Regenerates in place (mdatagen must run inside the module), compares with the
# files as they were, and puts those back: the check changes nothing.
check-generate: $(MDATAGEN)
	@status=0; for c in $(COMPONENTS); do \
	  files=$$(cd $$c && find . -path './internal/metadata*' -type f -o -name 'documentation.md' -o -name 'generated_*_test.go' | sort); \
	  keep=$$(mktemp -d); (cd $$c && tar cf $$keep/before.tar $$files); \
	  (cd $$c && $(MDATAGEN) metadata.yaml >$$keep/log 2>&1) || { cat $$keep/log; echo "mdatagen failed for $$c"; status=1; }; \
	  after=$$(cd $$c && find . -path './internal/metadata*' -type f -o -name 'documentation.md' -o -name 'generated_*_test.go' | sort); \
	  mkdir $$keep/before && tar xf $$keep/before.tar -C $$keep/before; \
	  for f in $$after; do cmp -s $$c/$$f $$keep/before/$$f || { echo "generated code is stale: $$c/$$f (run 'make generate')"; status=1; }; done; \
	  [ "$$files" = "$$after" ] || { echo "generated files differ in $$c (run 'make generate')"; status=1; }; \
	  for f in $$after; do [ -e $$keep/before/$$f ] || rm -f $$c/$$f; done; \
	  (cd $$c && tar xf $$keep/before.tar); rm -rf $$keep; \
	done; [ $$status = 0 ] && echo "generated code is up to date"; exit $$status

## golangci-lint is pinned in its own module, tools/lint/go.mod, so that its
## large dependency graph does not move the pins of tools/go.mod.
$(GOLANGCI_LINT): tools/lint/go.mod tools/lint/go.sum
	cd tools/lint && go build -o $@ github.com/golangci/golangci-lint/v2/cmd/golangci-lint

## gofmt, go vet, then golangci-lint (.golangci.yml) on the root module, then
## promtool on the alert rules and their unit tests (deploy/monitoring).
lint: $(GOLANGCI_LINT)
	@out=$$(gofmt -l $$(git ls-files -co --exclude-standard '*.go' 2>/dev/null || find . -name '*.go' -not -path './distribution/build/*')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	go vet ./...
	$(MAKE) -C devservers vet
	$(GOLANGCI_LINT) run ./...
	@command -v promtool >/dev/null || { echo "promtool not found: run make deps (Debian's prometheus package)"; exit 1; }
	promtool check rules deploy/monitoring/alerts.yaml
	promtool test rules deploy/monitoring/alerts_test.yaml

devservers:
	$(MAKE) -C devservers all BIN_DIR=$(BIN_DIR)

## The main job on embedded defaults: local ClickHouse engine + local Kafka +
## the collector, an outage, failover, replay, and a summary. Under 3 minutes.
## DEMO_FLAGS passes flags, e.g. DEMO_FLAGS=-kill-mid-replay.
DEMO_FLAGS ?=
demo: deps build devservers
	go run ./testbed/demo $(DEMO_FLAGS)

## Load into the real binary, side by side in one run (ratios), written to
## BENCHMARKS.md. About 20 minutes with the 6-minute outage; BENCH_FLAGS
## selects scenarios, e.g. BENCH_FLAGS='-scenarios=healthy,down -rounds=2'.
BENCH_FLAGS ?=
bench: deps build devservers
	go build -o $(BIN_DIR)/bench ./testbed/bench
	$(BIN_DIR)/bench -out BENCHMARKS.md $(BENCH_FLAGS)

## Everything, as CI runs it. Builds the collector and the local servers first:
## the distribution and end-to-end tests run the real binaries.
test: deps lint check-generate build devservers
	go test $(GO_TEST_FLAGS) ./...
	$(MAKE) test-allocs
	$(MAKE) -C devservers test BIN_DIR=$(BIN_DIR)

test-unit: test-allocs
	go test $(GO_TEST_FLAGS) ./failovergroupexporter/... ./dlqroutingconnector/... ./internal/... ./testbed/loadgen/... ./testbed/stack/... ./testbed/testservers/...

## Allocation counts of the healthy path, without the race detector (under
## it sync.Pool drops items on purpose, so those tests skip themselves).
test-allocs:
	go test -count=1 -run 'TestHealthyPath' ./failovergroupexporter/

clean:
	rm -rf $(BIN_DIR) $(TOOLS_BIN) $(DIST_DIR)
	-$(MAKE) -C devservers clean
