//go:build pprof

package main

import (
	"log/slog"
	"net/http"
	_ "net/http/pprof" // registers /debug/pprof/ on http.DefaultServeMux
	"os"
)

// A manager built with -tags pprof (scripts/bench-sim.sh builds one for
// its profiles) serves net/http/pprof on BERTH_PPROF_ADDR, a listener of
// its own apart from the API (whose handler never includes
// DefaultServeMux). The product build has none of it.
func init() {
	addr := os.Getenv("BERTH_PPROF_ADDR")
	if addr == "" {
		return
	}
	go func() {
		if err := http.ListenAndServe(addr, nil); err != nil {
			slog.Error("pprof listener stopped", "addr", addr, "err", err)
		}
	}()
}
