package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The example agent configuration of deploy/config sets only real flags,
// each to a value the flag accepts.
func TestDeployExampleEnvFileNamesRealFlags(t *testing.T) {
	var usage bytes.Buffer
	if err := run(context.Background(), []string{"-h"}, func(string) string { return "" }, &usage, &usage); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
	flags := map[string]bool{}
	for _, line := range strings.Split(usage.String(), "\n") {
		if name, ok := strings.CutPrefix(line, "  -"); ok {
			flags[strings.Fields(name)[0]] = true
		}
	}
	path := filepath.Join("..", "..", "..", "deploy", "config", "agent.env")
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%q is not KEY=VALUE", line)
		}
		env[k] = v
		if name := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(k, "BERTH_"), "_", "-")); !flags[name] {
			t.Errorf("%s is no berth-agent flag", k)
		}
	}
	if len(env) == 0 {
		t.Fatal("agent.env sets nothing")
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-version"}, func(k string) string { return env[k] }, &out, &out); err != nil {
		t.Errorf("agent.env: %v", err)
	}
}
