package main

import (
	"strings"
	"testing"
)

// session start --wait returns once the session runs or ends, says which
// on stderr, and exits 1 when its command failed; what it shows is the
// session as it is then.
func TestSessionStartWaitsUntilRunningOrEnded(t *testing.T) {
	_, env := benchCluster(t, 1)
	for _, tc := range []struct {
		name       string
		args       []string
		code       int
		status     string
		wantStderr string
	}{
		{"an interactive session runs", []string{"--type", "interactive"}, 0, "RUNNING", "is RUNNING"},
		{"a batch command that fails", []string{"--type", "batch", "--", "sh", "-c", "exit 3"}, 1, "TERMINATED", "ended TERMINATED with exit code 3: exited"},
		{"a batch command that succeeds", []string{"--type", "batch", "--", "exit", "0"}, 0, "TERMINATED", "ended TERMINATED with exit code 0: exited"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"session", "start", "--image", "berth/base:latest", "--cpu", "0.1", "--mem", "64MiB", "--wait"}, tc.args...)
			res := berth(t, env, "", args...)
			if res.code != tc.code {
				t.Fatalf("exit %d, want %d: %s\n%s", res.code, tc.code, res.stderr, res.stdout)
			}
			if !strings.Contains(res.stdout, "status:") || !strings.Contains(res.stdout, tc.status) {
				t.Errorf("stdout lacks status %s:\n%s", tc.status, res.stdout)
			}
			if !strings.Contains(res.stderr, tc.wantStderr) {
				t.Errorf("stderr %q lacks %q", res.stderr, tc.wantStderr)
			}
		})
	}
}
