package main

import (
	"bytes"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const goodToken = "0123456789abcdef0123456789abcdef"

// A manager refuses, before it opens anything, an agent or join token that
// is short or the documentation's example, from whichever source.
func TestManagerRefusesWeakTokensAtStart(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"10-byte agent token on the command line", []string{"-agent-token", "0123456789"}, nil, "-agent-token is 10 bytes, shorter than 16"},
		{"10-byte agent token in the environment", nil, map[string]string{"BERTH_AGENT_TOKEN": "0123456789"}, "-agent-token is 10 bytes, shorter than 16"},
		{"10-byte join token in a file", []string{"-join-token-file", file("short", "0123456789\n")}, nil, "-join-token is 10 bytes, shorter than 16"},
		{"the deploy example agent token", nil, map[string]string{"BERTH_AGENT_TOKEN": "CHANGE-ME-agent-token"}, `-agent-token is the example value "CHANGE-ME-agent-token"`},
		{"the deploy example join token in a file", []string{"-join-token-file", file("example", "CHANGE-ME-join-token")}, nil, `-join-token is the example value "CHANGE-ME-join-token"`},
		{"an agent token given twice", []string{"-agent-token-file", file("good", goodToken)}, map[string]string{"BERTH_AGENT_TOKEN": goodToken},
			"-agent-token: the token is given more than once (-agent-token-file, BERTH_AGENT_TOKEN)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"-dev", "-data-dir", t.TempDir(), "-http-addr", "127.0.0.1:0"}, c.args...)
			var out bytes.Buffer
			err := run(args, func(k string) string { return c.env[k] }, &out, &out)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v, want it to say %q\n%s", err, c.want, out.String())
			}
		})
	}
}

// Good tokens are read from their file or variable; one on the command
// line is read too, with a warning that ps shows it.
func TestManagerReadsTokensFromFilesAndTheEnvironment(t *testing.T) {
	path := filepath.Join(t.TempDir(), "join-token")
	if err := os.WriteFile(path, []byte(goodToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args     []string
		wantWarn bool
	}{{nil, false}, {[]string{"-agent-token", goodToken + "x"}, true}} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		agent := fs.String("agent-token", "", "")
		join := fs.String("join-token", "", "")
		if err := fs.Parse(c.args); err != nil {
			t.Fatal(err)
		}
		if !c.wantWarn {
			*agent = goodToken + "x" // as flagenv sets it from BERTH_AGENT_TOKEN
		}
		var logs bytes.Buffer
		got, err := readSecrets(fs, slog.New(slog.NewTextHandler(&logs, nil)), []secretFlag{
			{name: "-agent-token", value: agent, env: "BERTH_AGENT_TOKEN"},
			{name: "-join-token", value: join, file: path, env: "BERTH_JOIN_TOKEN"},
		})
		if err != nil || got[0] != goodToken+"x" || got[1] != goodToken {
			t.Fatalf("%v: %q, %v", c.args, got, err)
		}
		if warned := strings.Contains(logs.String(), "visible to every local account"); warned != c.wantWarn {
			t.Errorf("%v: warned %v, want %v", c.args, warned, c.wantWarn)
		}
	}
}
