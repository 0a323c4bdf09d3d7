# gokeepalived — make targets. Every target installs what it needs on a fresh Debian
# machine (as root): apt packages through tests/setup.sh, Go modules through the proxy.

GO      ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
BIN     := bin/gokeepalived
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
FUZZTIME ?= 30s

.PHONY: all build test unit lint fuzz bench demo setup clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/gokeepalived

# The whole suite: formatting and vet, then every test with the race detector.
# Root-only integration tests (namespaces, VM) join this target as they land.
test: setup lint
	$(GO) test -race -count=1 ./...

# Fast tests only (no setup, no lint).
unit:
	$(GO) test -count=1 ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# Bounded fuzzing of every fuzz target (FUZZTIME each).
fuzz:
	$(GO) test ./parser -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime $(FUZZTIME)
	$(GO) test ./vrrp -run '^$$' -fuzz '^FuzzAdvert$$' -fuzztime $(FUZZTIME)
	$(GO) test ./vrrp -run '^$$' -fuzz '^FuzzRxCheck$$' -fuzztime $(FUZZTIME)

# On-demand benchmarks; they print numbers (see docs/benchmarks.md).
bench: setup build
	tests/bench/parse.sh
	$(GO) test ./tests/bench/failover -run '^$$' -bench . -benchtime 1x -timeout 40m
	$(GO) test ./tests/bench/lvsscale -run '^$$' -bench . -benchtime 1x -timeout 40m

demo: setup build
	tests/demo/demo.sh

setup:
	@tests/setup.sh

clean:
	rm -rf bin
