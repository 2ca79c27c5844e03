package main

import (
	"bytes"
	"strings"
	"testing"
)

// A -disconnect-grace that is negative or below -heartbeat-timeout is
// refused at start with the reason; one at the timeout starts.
func TestManagerRefusesADisconnectGraceBelowTheHeartbeatTimeout(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"negative", []string{"-disconnect-grace", "-1s"}, "-disconnect-grace -1s must not be negative"},
		{"below the default timeout", []string{"-disconnect-grace", "10s"}, "-disconnect-grace 10s is below -heartbeat-timeout 30s"},
		{"below a given timeout", []string{"-heartbeat-timeout", "2m", "-disconnect-grace", "1m"}, "-disconnect-grace 1m0s is below -heartbeat-timeout 2m0s"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out bytes.Buffer
			args := append([]string{"-dev", "-data-dir", t.TempDir(), "-http-addr", "127.0.0.1:0"}, c.args...)
			err := run(args, func(string) string { return "" }, &out, &out)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v, want it to say %q", err, c.want)
			}
		})
	}
}
