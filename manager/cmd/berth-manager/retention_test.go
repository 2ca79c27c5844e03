package main

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"
)

// A retention below a minute, a negative one and one that is not a
// duration are refused at start, each saying why; the default is 7 days.
func TestSessionRetentionBelowAMinuteIsRefusedAtStart(t *testing.T) {
	for _, c := range []struct{ value, want string }{
		{"30s", "-session-retention 30s: keep finished sessions at least 1m0s (0 keeps them for ever)"},
		{"59s", "keep finished sessions at least 1m0s"},
		{"-5m", `"-5m" is negative`},
		{"7days", "is not a duration"},
		{"1.5d", "days must be a whole number"},
	} {
		t.Run(c.value, func(t *testing.T) {
			var out bytes.Buffer
			err := run([]string{"-dev", "-data-dir", t.TempDir(), "-http-addr", "127.0.0.1:0", "-session-retention", c.value},
				func(string) string { return "" }, &out, &out)
			if err == nil || !strings.Contains(err.Error()+out.String(), c.want) {
				t.Fatalf("err %v (%s), want it to say %q", err, out.String(), c.want)
			}
		})
	}
	t.Run("from the environment", func(t *testing.T) {
		var out bytes.Buffer
		err := run([]string{"-dev", "-data-dir", t.TempDir(), "-http-addr", "127.0.0.1:0"},
			func(k string) string { return map[string]string{"BERTH_SESSION_RETENTION": "10s"}[k] }, &out, &out)
		if err == nil || !strings.Contains(err.Error(), "keep finished sessions at least 1m0s") {
			t.Fatalf("err %v", err)
		}
	})
	var usage bytes.Buffer
	if err := run([]string{"-h"}, func(string) string { return "" }, &usage, &usage); !errors.Is(err, flag.ErrHelp) {
		t.Fatal(err)
	}
	if !strings.Contains(usage.String(), "(default 7d)") {
		t.Fatalf("-h does not show the 7d default:\n%s", usage.String())
	}
}
