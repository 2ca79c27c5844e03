package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/berth-cluster/berth/agent/fsquota"
	"github.com/berth-cluster/berth/shared/api"
)

// fakeQuotas records what the agent asks of the filesystem's project
// quotas; each call notes how many containers the runtime had started
// by then.
type fakeQuotas struct {
	mu       sync.Mutex
	enforced map[string]bool // host path → enforces project quotas
	rt       *fakeRuntime
	calls    []string
	failSet  error
}

func (f *fakeQuotas) note(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	runs := 0
	if f.rt != nil {
		runs = f.rt.runCount()
	}
	f.calls = append(f.calls, fmt.Sprintf(format, args...)+fmt.Sprintf(" (after %d runs)", runs))
}

func (f *fakeQuotas) Enforced(host string) (bool, error) {
	if host == "" {
		return false, errors.New("no such host")
	}
	return f.enforced[host], nil
}

func (f *fakeQuotas) Label(_ context.Context, host, folder string) (uint32, error) {
	f.note("label %s/%s", filepath.Base(host), folder)
	return fsquota.ProjectID(folder, 0), nil
}

func (f *fakeQuotas) SetLimit(host string, project uint32, bytes int64) error {
	if f.failSet != nil {
		return f.failSet
	}
	f.note("limit %s %d %d", filepath.Base(host), project, bytes)
	return nil
}

func (f *fakeQuotas) ClearLimit(host string, project uint32) error {
	f.note("clear %s %d", filepath.Base(host), project)
	return nil
}

func (f *fakeQuotas) taken() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.calls
	f.calls = nil
	return out
}

// quotaEnv is a converger with two folder hosts, "fast" (project quotas)
// and "slow" (none), each with folders f-1 and f-2.
func quotaEnv(t *testing.T) (*converger, *fakeRuntime, *fakeQuotas) {
	t.Helper()
	root := t.TempDir()
	hosts := map[string]string{"fast": filepath.Join(root, "fast"), "slow": filepath.Join(root, "slow")}
	for _, h := range hosts {
		for _, f := range []string{"f-1", "f-2"} {
			if err := os.MkdirAll(filepath.Join(h, f), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	rt := newFakeRuntime("img")
	q := &fakeQuotas{enforced: map[string]bool{hosts["fast"]: true}, rt: rt}
	c := newTestConverger(rt, &clock{now: time.Unix(1000, 0)})
	c.folderHosts = hosts
	c.quotas.q = q
	c.quotas.hosts = findQuotaHosts(q, hosts, c.log)
	return c, rt, q
}

func limit(n int64) *int64 { return &n }

func withMounts(d api.DesiredContainer, ms ...api.Mount) api.DesiredContainer {
	d.Mounts = ms
	return d
}

func rwMount(host, folder string, l *int64) api.Mount {
	return api.Mount{Host: host, Folder: folder, Target: "/home/work/" + folder, LimitBytes: l}
}

func converge(t *testing.T, c *converger) {
	t.Helper()
	if err := c.converge(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestAFoldersProjectQuotaIsSetBeforeItsContainerStartsAndFollowsItsLimit:
// on a host that enforces project quotas, a folder mounted read-write is
// labelled and limited before the container runs; a new limit is set on
// the running container's folder without labelling it again or restarting
// anything; each further start labels it again; an unlimited policy
// removes the limit; the limit goes when no container mounts the folder
// any more.
func TestAFoldersProjectQuotaIsSetBeforeItsContainerStartsAndFollowsItsLimit(t *testing.T) {
	c, rt, q := quotaEnv(t)
	p := fsquota.ProjectID("f-1", 0)

	c.setDesired([]api.DesiredContainer{withMounts(desired("a", "img"), rwMount("fast", "f-1", limit(1<<20)))})
	converge(t, c)
	converge(t, c)
	want := []string{"label fast/f-1 (after 0 runs)", fmt.Sprintf("limit fast %d %d (after 0 runs)", p, 1<<20)}
	if got := q.taken(); !slices.Equal(got, want) {
		t.Fatalf("calls %q, want %q", got, want)
	}
	if rt.runCount() != 1 {
		t.Fatalf("%d runs, want 1", rt.runCount())
	}

	c.setDesired([]api.DesiredContainer{withMounts(desired("a", "img"), rwMount("fast", "f-1", limit(2<<20)))})
	converge(t, c)
	converge(t, c)
	if got, want := q.taken(), []string{fmt.Sprintf("limit fast %d %d (after 1 runs)", p, 2<<20)}; !slices.Equal(got, want) {
		t.Fatalf("after a new limit: calls %q, want %q", got, want)
	}

	// Another container starting with the folder labels it again (a
	// session may have moved files out of the project), and finds the
	// limit in place.
	c.setDesired([]api.DesiredContainer{withMounts(desired("a", "img"), rwMount("fast", "f-1", limit(2<<20))),
		withMounts(desired("b", "img"), rwMount("fast", "f-1", limit(2<<20)))})
	converge(t, c)
	if got, want := q.taken(), []string{"label fast/f-1 (after 1 runs)"}; !slices.Equal(got, want) {
		t.Fatalf("a second start: calls %q, want %q", got, want)
	}

	c.setDesired([]api.DesiredContainer{withMounts(desired("a", "img"), rwMount("fast", "f-1", nil))})
	converge(t, c)
	if got, want := q.taken(), []string{fmt.Sprintf("clear fast %d (after 2 runs)", p)}; !slices.Equal(got, want) {
		t.Fatalf("after the policy became unlimited: calls %q, want %q", got, want)
	}

	c.setDesired([]api.DesiredContainer{withMounts(desired("a", "img"), rwMount("fast", "f-1", limit(3<<20)))})
	converge(t, c)
	q.taken()
	c.setDesired(nil)
	converge(t, c)
	converge(t, c)
	if got, want := q.taken(), []string{fmt.Sprintf("clear fast %d (after 2 runs)", p)}; !slices.Equal(got, want) {
		t.Fatalf("after the container left: calls %q, want %q", got, want)
	}
	if rt.runCount() != 2 {
		t.Fatalf("%d runs, want 2 (a and b): nothing restarts for a quota", rt.runCount())
	}
}

// TestNoProjectQuotaIsSetWhereItHasNothingToBound: a host without project
// quotas, an unlimited policy and a read-only mount get no quota; the
// containers start all the same.
func TestNoProjectQuotaIsSetWhereItHasNothingToBound(t *testing.T) {
	c, rt, q := quotaEnv(t)
	ro := rwMount("fast", "f-2", limit(1<<20))
	ro.ReadOnly = true
	c.setDesired([]api.DesiredContainer{
		withMounts(desired("a", "img"), rwMount("slow", "f-1", limit(1<<20))),
		withMounts(desired("b", "img"), rwMount("fast", "f-1", nil)),
		withMounts(desired("c", "img"), ro),
	})
	converge(t, c)
	converge(t, c)
	if got := q.taken(); len(got) != 0 {
		t.Fatalf("quota calls %q, want none", got)
	}
	if rt.runCount() != 3 {
		t.Fatalf("%d runs, want 3", rt.runCount())
	}
}

// TestAQuotaThatCannotBeSetFailsTheStartWithTheReason: on a host that
// says it enforces project quotas, a container whose folder limit cannot
// be set does not start (it would write past the limit), and the report
// says why.
func TestAQuotaThatCannotBeSetFailsTheStartWithTheReason(t *testing.T) {
	c, rt, q := quotaEnv(t)
	q.failSet = errors.New("operation not supported")
	c.setDesired([]api.DesiredContainer{withMounts(desired("a", "img"), rwMount("fast", "f-1", limit(1<<20)))})
	converge(t, c)
	if rt.runCount() != 0 {
		t.Fatal("the container started without its folder's limit")
	}
	r := reportByID(t, c)["a"]
	if r.Status != api.ContainerFailed || !strings.Contains(r.Reason, "start-failed: project quota of folder f-1 on host fast: operation not supported") {
		t.Fatalf("report %+v", r)
	}
}

// TestTheRegistrationSaysWhichFolderHostsEnforceProjectQuotas: the
// fingerprint sent at registration names the folder hosts with project
// quotas, an empty list (not null) when there are none.
func TestTheRegistrationSaysWhichFolderHostsEnforceProjectQuotas(t *testing.T) {
	root := t.TempDir()
	hosts := map[string]string{"fast": filepath.Join(root, "fast"), "slow": filepath.Join(root, "slow")}
	for _, h := range hosts {
		if err := os.Mkdir(h, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, want := range map[string][]string{"with": {"fast"}, "without": {}} {
		t.Run(name, func(t *testing.T) {
			q := &fakeQuotas{enforced: map[string]bool{}}
			if len(want) > 0 {
				q.enforced[hosts["fast"]] = true
			}
			mgr := newFakeManager()
			reg := prometheus.NewRegistry()
			a, err := New(Config{StateDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", Runtime: newFakeRuntime(), Host: fakeHost{}, Manager: mgr,
				FolderHosts: hosts, Quotas: q, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: reg, Gatherer: reg})
			if err != nil {
				t.Fatal(err)
			}
			defer a.listener.Close()
			if err := a.registerOnce(context.Background()); err != nil {
				t.Fatal(err)
			}
			regs, _ := mgr.registrations()
			if got := regs[0].ProjectQuotaHosts; got == nil || !slices.Equal(got, want) {
				t.Errorf("project_quota_hosts %#v, want %#v", got, want)
			}
		})
	}
}
