package main

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The built agent must start on a machine without an NVIDIA driver: built
// without -tags no_dynamic_plugins it links Go's plugin package, is marked
// BIND_NOW, and then refuses to start once it links go-nvml
// (docs/DEPENDENCIES.md). This builds it as the Makefile does and runs it.
func TestBuiltAgentIsNotBindNowAndStarts(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "berth-agent")
	out, err := exec.Command("go", "build", "-tags", "no_dynamic_plugins", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	flags, _ := f.DynValue(elf.DT_FLAGS)
	for _, v := range flags {
		if elf.DynFlag(v)&elf.DF_BIND_NOW != 0 {
			t.Fatal("the agent binary is marked BIND_NOW (DT_FLAGS)")
		}
	}
	flags1, _ := f.DynValue(elf.DT_FLAGS_1)
	for _, v := range flags1 {
		if elf.DynFlag1(v)&elf.DF_1_NOW != 0 {
			t.Fatal("the agent binary is marked NOW (DT_FLAGS_1)")
		}
	}
	out, err = exec.Command(bin, "-version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "berth-agent ") {
		t.Fatalf("berth-agent -version: %v\n%s", err, out)
	}
	// With no containerd, it says so and exits instead of hanging; with no
	// NVIDIA library it has said so in one line before.
	cmd := exec.Command(bin, "-manager", "http://127.0.0.1:1", "-state-dir", t.TempDir(),
		"-containerd", filepath.Join(t.TempDir(), "none.sock"), "-http-addr", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "BERTH_AGENT_TOKEN="+goodToken)
	out, err = cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "connect to containerd at") {
		t.Fatalf("without containerd: %v\n%s", err, out)
	}
	if n := strings.Count(string(out), "no NVIDIA library or driver: this node offers no GPUs"); n != 1 {
		t.Fatalf("without an NVIDIA driver: %d log lines saying so, want 1\n%s", n, out)
	}
	// GPU flags are checked before anything else is touched.
	for _, c := range []struct{ flag, value, want string }{
		{"-fake-gpus", "-1", "-fake-gpus -1: must not be negative"},
		{"-gpu-share-quantum", "0.3", "GPU shares: 1 per GPU is not a positive multiple of the quantum 0.3"},
	} {
		cmd := exec.Command(bin, "-manager", "http://127.0.0.1:1", "-state-dir", t.TempDir(), c.flag, c.value)
		cmd.Env = append(os.Environ(), "BERTH_AGENT_TOKEN="+goodToken)
		out, err = cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), c.want) {
			t.Errorf("%s %s: %v\n%s", c.flag, c.value, err, out)
		}
	}
}
