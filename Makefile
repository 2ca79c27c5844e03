# Berth — build, test, run. `make run` and `make test` are the README's quick start.
GO       ?= go
BIN      := bin
PKG      := github.com/berth-cluster/berth
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo 0.1.0-dev)
COMMIT   ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS  := -X $(PKG)/shared/version.Version=$(VERSION) -X $(PKG)/shared/version.Commit=$(COMMIT)
# The race detector roughly doubles test time on two cores; CI keeps it on.
TESTFLAGS ?= -race -timeout 15m

.PHONY: build test run bench lint fuzz cluster clean

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/berth-manager ./manager/cmd/berth-manager
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/berth ./manager/cmd/berth

test: lint
	$(GO) test $(TESTFLAGS) ./...

run: build
	scripts/dev.sh

cluster: build
	scripts/cluster.sh

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# Each fuzz target for a short while (FUZZTIME=1m for longer runs).
FUZZTIME ?= 15s
fuzz:
	scripts/fuzz.sh $(FUZZTIME)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

clean:
	rm -rf $(BIN) .berth-dev
