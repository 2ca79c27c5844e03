# Berth — build, test, run. `make run` and `make test` are the README's quick start.
GO       ?= go
BIN      := bin
PKG      := github.com/berth-cluster/berth
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo 0.1.0-dev)
COMMIT   ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS  := -X $(PKG)/shared/version.Version=$(VERSION) -X $(PKG)/shared/version.Commit=$(COMMIT)
# containerd's client imports Go's plugin package unless this tag is set, and
# a binary linking plugin and go-nvml will not start without an NVIDIA driver
# (docs/DEPENDENCIES.md): every build and test uses it.
TAGS     := no_dynamic_plugins
# The race detector roughly doubles test time on two cores; CI keeps it on.
# Most of the suite waits (on containerd, Chromium, timeouts it proves),
# not computes: four packages and four parallel tests at a time keep two
# cores busy where -p 2 left them idle half the time.
TESTFLAGS ?= -race -timeout 15m -p 4 -parallel 4
# go-nvml's cgo wrapper calls NVML functions its own header marks deprecated:
# gcc warns about each (about 150 lines on a cold build) and none is ours to
# fix. Go's default flags (-O2 -g) stay.
export CGO_CFLAGS ?= -O2 -g -Wno-deprecated-declarations

.PHONY: build test run bench lint fuzz chaos cluster clean

build:
	@echo "Building bin/berth-manager, bin/berth and bin/berth-agent (a first build compiles every dependency: a few minutes)"
	$(GO) build -tags $(TAGS) -ldflags '$(LDFLAGS)' -o $(BIN)/berth-manager ./manager/cmd/berth-manager
	$(GO) build -tags $(TAGS) -ldflags '$(LDFLAGS)' -o $(BIN)/berth ./manager/cmd/berth
	$(GO) build -tags $(TAGS) -ldflags '$(LDFLAGS)' -o $(BIN)/berth-agent ./agent/cmd/berth-agent

test: lint
	$(GO) test -tags $(TAGS) $(TESTFLAGS) ./...

run: build
	scripts/dev.sh

cluster: build
	scripts/cluster.sh

# Every benchmark, the failover time and the simulated-agent runs
# (scripts/bench-sim.sh: 1,000 simulated agents on a dev manager, berth bench
# sessions; 5,000 agents' heartbeats); writes the table into docs/BENCHMARKS.md.
# BENCH_GO=0 runs only the simulated part, BENCH_SIM=0 skips it.
bench:
	scripts/bench.sh

# The reliability suite for longer than make test's 20 s (root, ip netns).
CHAOS_DURATION ?= 5m
chaos:
	CHAOS_DURATION=$(CHAOS_DURATION) $(GO) test -tags $(TAGS) -count=1 -timeout 60m -v -run . ./manager/chaos

# Each fuzz target for a short while (FUZZTIME=1m for longer runs).
FUZZTIME ?= 15s
fuzz:
	scripts/fuzz.sh $(FUZZTIME)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet -tags $(TAGS) ./...

clean:
	rm -rf $(BIN) .berth-dev
