package fsm

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/berth-cluster/berth/"

// deps lists the packages pkg depends on, itself included, as `go list
// -deps` sees them with the tags every build uses. go test puts its own go
// first on PATH.
func deps(t *testing.T, pkg string) []string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list imports: %v", err)
	}
	out, err := exec.Command(goTool, "list", "-deps", "-tags", "no_dynamic_plugins", "-f", "{{.ImportPath}}", pkg).Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	return strings.Fields(string(out))
}

// The applier must never run the scheduler: whatever the scheduler decides
// reaches the state only through a plan entry, so changing it cannot change
// what replaying a log produces. Importing manager/sched, or any package
// that does, would let it creep back.
func TestFSMDoesNotImportTheScheduler(t *testing.T) {
	const schedPkg = module + "manager/sched"
	// Control: the check sees the scheduler where it is imported, so it
	// can fail.
	if !slices.Contains(deps(t, module+"manager/server"), schedPkg) {
		t.Fatalf("go list -deps of manager/server lacks %s: the check below would prove nothing", schedPkg)
	}
	got := deps(t, module+"manager/fsm")
	if slices.Contains(got, schedPkg) {
		t.Fatalf("manager/fsm depends on %s; its dependencies: %v", schedPkg, ours(got))
	}
	// Of this module, the FSM needs the records, the error kinds, the wire
	// types and the image reference rules (allowed_images, which the
	// create applier decides), nothing that decides placements or serves.
	allowed := []string{"manager/fsm", "manager/state", "manager/apierr", "shared/api", "shared/slots", "shared/imageref"}
	for _, p := range ours(got) {
		if !slices.Contains(allowed, p) {
			t.Errorf("manager/fsm depends on %s, which is not among %v", p, allowed)
		}
	}
}

// ours keeps this module's packages, without the module prefix.
func ours(pkgs []string) []string {
	var out []string
	for _, p := range pkgs {
		if rest, ok := strings.CutPrefix(p, module); ok {
			out = append(out, rest)
		}
	}
	return out
}
