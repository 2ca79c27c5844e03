package main

import (
	"os"
	"strings"
	"testing"
)

// Where the driver's library is missing, the probe says which library it
// could not load (and the command exits 1); on a GPU host it is what
// scripts/gpu-check.sh runs.
func TestProbeNamesTheMissingDriverLibrary(t *testing.T) {
	if _, err := os.Stat("/dev/nvidiactl"); err == nil {
		t.Skip("this host has an NVIDIA driver; scripts/gpu-check.sh exercises the probe")
	}
	err := probe(0, 0)
	if err == nil || !strings.HasPrefix(err.Error(), "load libcuda.so.1: ") {
		t.Fatalf("probe without a driver: %v", err)
	}
}
