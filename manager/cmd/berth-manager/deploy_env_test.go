package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// readEnv reads a KEY=VALUE file as systemd's EnvironmentFile= does
// (comments and blank lines skipped).
func readEnv(t *testing.T, path string) map[string]string {
	t.Helper()
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
			t.Fatalf("%s: %q is not KEY=VALUE", path, line)
		}
		env[k] = v
	}
	return env
}

// The example manager configurations of deploy/config set only real flags,
// each to a value the flag accepts.
func TestDeployExampleEnvFilesNameRealFlags(t *testing.T) {
	var usage bytes.Buffer
	if err := run([]string{"-h"}, func(string) string { return "" }, &usage, &usage); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
	flags := map[string]bool{}
	for _, line := range strings.Split(usage.String(), "\n") {
		if name, ok := strings.CutPrefix(line, "  -"); ok {
			flags[strings.Fields(name)[0]] = true
		}
	}
	files, err := filepath.Glob(filepath.Join("..", "..", "..", "deploy", "config", "m*.env"))
	if err != nil || len(files) < 3 {
		t.Fatalf("example manager env files: %v %v", files, err)
	}
	for _, file := range files {
		env := readEnv(t, file)
		for k := range env {
			name := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(k, "BERTH_"), "_", "-"))
			if !flags[name] && k != "BERTH_BOOTSTRAP_ADMIN_PASSWORD" {
				t.Errorf("%s: %s is no berth-manager flag", file, k)
			}
		}
		var out bytes.Buffer
		if err := run([]string{"-version"}, func(k string) string { return env[k] }, &out, &out); err != nil {
			t.Errorf("%s: %v", file, err)
		}
	}
}
