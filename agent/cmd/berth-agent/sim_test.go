package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// The simulated runtime's flags are checked before anything starts: a
// runtime that does not exist, -sim-* flags without -runtime sim, containerd
// flags that mean nothing to a simulation, and values out of range, each
// with what to do.
func TestSimulatedRuntimeFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"an unknown runtime", []string{"-runtime", "docker"}, []string{`-runtime "docker": must be containerd or sim`}},
		{"sim flags without -runtime sim", []string{"-sim-count", "3", "-sim-start-delay", "1s"},
			[]string{"-sim-count, -sim-start-delay: only with -runtime sim"}},
		{"containerd flags with -runtime sim", []string{"-runtime", "sim", "-containerd", "/run/x.sock", "-userns-remap", "100000:100000:65536"},
			[]string{"-containerd, -userns-remap: no meaning with -runtime sim"}},
		{"counts and sizes out of range, all at once", []string{"-runtime", "sim", "-sim-count", "0", "-sim-cpus", "-1", "-sim-start-delay", "-1s", "-fake-gpus", "65"},
			[]string{"-sim-count 0: must be from 1 to 10000", "-sim-cpus -1: must be positive", "-sim-start-delay -1s: must not be negative", "-fake-gpus 65: must be from 0 to 64"}},
		{"a bad memory size", []string{"-runtime", "sim", "-sim-memory", "lots"}, []string{"-sim-memory: "}},
		{"one advertised address for many agents", []string{"-runtime", "sim", "-sim-count", "2", "-advertise-addr", "10.0.0.1:6001"},
			[]string{"-advertise-addr names one address: with -sim-count above 1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"-manager", "http://127.0.0.1:1", "-state-dir", t.TempDir()}, tc.args...)
			var out bytes.Buffer
			err := run(context.Background(), args, func(k string) string {
				if k == agentTokenEnv {
					return goodToken
				}
				return ""
			}, &out, &out)
			if err == nil {
				t.Fatalf("started with %q", tc.args)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}
