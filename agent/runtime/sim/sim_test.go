package sim

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-cluster/berth/agent/runtime"
)

func newSim(t *testing.T, cfg Config) (*Runtime, *fakeClock) {
	t.Helper()
	clock := newFakeClock()
	cfg.Clock = clock
	return New(cfg), clock
}

func spec(id string, cmd ...string) runtime.Spec {
	return runtime.Spec{ID: id, SessionID: "sess-" + id, Index: 1, Image: DefaultImage, Command: cmd, MilliCPU: 500, MemoryBytes: 1 << 30,
		Labels: map[string]string{runtime.LabelSession: "sess-" + id, runtime.LabelIndex: "1"}}
}

func run(t *testing.T, r *Runtime, s runtime.Spec) runtime.Container {
	t.Helper()
	c, err := r.Run(context.Background(), s)
	if err != nil {
		t.Fatalf("run %s: %v", s.ID, err)
	}
	return c
}

func get(t *testing.T, r *Runtime, id string) (runtime.Container, bool) {
	t.Helper()
	cs, err := r.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.ID == id {
			return c, true
		}
	}
	return runtime.Container{}, false
}

func TestCommandsAreReadForWhatTheyMeanToDo(t *testing.T) {
	for _, tc := range []struct {
		cmd  []string
		want intent
	}{
		{[]string{"sleep", "10"}, intent{kind: finite, runs: 10 * time.Second, idle: true}},
		{[]string{"/bin/sleep", "1.5"}, intent{kind: finite, runs: 1500 * time.Millisecond, idle: true}},
		{[]string{"sleep", "2m", "30s"}, intent{kind: finite, runs: 150 * time.Second, idle: true}},
		{[]string{"sleep", "1h"}, intent{kind: finite, runs: time.Hour, idle: true}},
		{[]string{"sleep", "1d"}, intent{kind: finite, runs: 24 * time.Hour, idle: true}},
		{[]string{"sleep", "infinity"}, intent{kind: forever, idle: true}},
		{[]string{"sleep", "1e400"}, intent{kind: forever}}, // not a number sleep takes: the simulation cannot read it
		{[]string{"sleep", "-1"}, intent{kind: forever}},
		{[]string{"sleep"}, intent{kind: forever}},
		{[]string{"exit", "3"}, intent{kind: finite, code: 3}},
		{[]string{"exit"}, intent{kind: finite}},
		{[]string{"exit", "257"}, intent{kind: finite, code: 1}},
		{[]string{"exit", "-1"}, intent{kind: finite, code: 255}},
		{[]string{"exit", "x"}, intent{kind: forever}},
		{[]string{"sh", "-c", "exit 7"}, intent{kind: finite, code: 7, idle: true}},
		{[]string{"/bin/sh", "-c", "  exit   7  "}, intent{kind: finite, code: 7, idle: true}},
		{[]string{"bash", "-c", "sleep 2; exit 3"}, intent{kind: finite, runs: 2 * time.Second, code: 3, idle: true}},
		{[]string{"sh", "-c", "sleep 1 && sleep 2\nexit 4; sleep 100"}, intent{kind: finite, runs: 3 * time.Second, code: 4, idle: true}},
		{[]string{"sh", "-c", "sleep 5"}, intent{kind: finite, runs: 5 * time.Second, idle: true}},
		{[]string{"sh", "-c", "exec sleep 5"}, intent{kind: finite, runs: 5 * time.Second, idle: true}},
		{[]string{"sh", "-c", "sleep infinity"}, intent{kind: forever, idle: true}},
		{[]string{"sh", "-c", "python train.py; exit 0"}, intent{kind: forever}},
		{[]string{"sh", "-c", ""}, intent{kind: forever}},
		{[]string{"sh", "-c", "exit 1", "extra"}, intent{kind: forever}},
		{[]string{"busybox", "sleep", "4"}, intent{kind: finite, runs: 4 * time.Second, idle: true}},
		{[]string{"busybox", "sh", "-c", "exit 2"}, intent{kind: finite, code: 2, idle: true}},
		{[]string{"python", "train.py"}, intent{kind: forever}},
		{[]string{"jupyter", "lab"}, intent{kind: forever}},
		{nil, intent{kind: forever}},
	} {
		if got := parseIntent(tc.cmd); got != tc.want {
			t.Errorf("%q: got %+v (%s), want %+v (%s)", tc.cmd, got, got, tc.want, tc.want)
		}
	}
}

// Each container does what its command says, on the runtime's clock.
func TestContainersLiveAsTheirCommandsSay(t *testing.T) {
	type at struct {
		after time.Duration // since the start
		state runtime.State
		code  int
	}
	for _, tc := range []struct {
		name  string
		cmd   []string
		steps []at
	}{
		{"sleep exits 0 when its time is up", []string{"sleep", "10"},
			[]at{{0, runtime.Running, 0}, {9999 * time.Millisecond, runtime.Running, 0}, {10 * time.Second, runtime.Exited, 0}, {time.Hour, runtime.Exited, 0}}},
		{"exit N exits with N at once", []string{"exit", "3"}, []at{{0, runtime.Exited, 3}, {time.Minute, runtime.Exited, 3}}},
		{"a shell's exit N too", []string{"sh", "-c", "exit 7"}, []at{{0, runtime.Exited, 7}}},
		{"a script sleeps, then exits with its code", []string{"sh", "-c", "sleep 2; exit 3"},
			[]at{{time.Second, runtime.Running, 0}, {2 * time.Second, runtime.Exited, 3}}},
		{"anything else runs until stopped", []string{"python", "train.py"}, []at{{0, runtime.Running, 0}, {1000 * time.Hour, runtime.Running, 0}}},
		{"no command: the image's own runs until stopped", nil, []at{{1000 * time.Hour, runtime.Running, 0}}},
		{"sleep infinity runs until stopped", []string{"sleep", "infinity"}, []at{{1000 * time.Hour, runtime.Running, 0}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, clock := newSim(t, Config{})
			start := clock.Now()
			c := run(t, r, spec("c1", tc.cmd...))
			if !c.StartedAt.Equal(start) || c.SessionID != "sess-c1" || c.Index != 1 || c.Labels[runtime.LabelSession] != "sess-c1" {
				t.Fatalf("run returned %+v", c)
			}
			for _, step := range tc.steps {
				clock.Advance(start.Add(step.after).Sub(clock.Now()))
				got, ok := get(t, r, "c1")
				if !ok || got.State != step.state || got.ExitCode != step.code {
					t.Fatalf("after %s: %+v (listed %v), want %s with code %d", step.after, got, ok, step.state, step.code)
				}
				if step.state == runtime.Exited && got.ExitedAt.After(clock.Now()) {
					t.Fatalf("after %s: exited at %s, in the future", step.after, got.ExitedAt)
				}
			}
		})
	}
}

// A container starts once StartDelay has passed, as a containerd task
// does; until then it is listed as created.
func TestContainersStartAfterTheStartDelay(t *testing.T) {
	r, clock := newSim(t, Config{StartDelay: 300 * time.Millisecond})
	start := clock.Now()
	done := make(chan runtime.Container, 1)
	mark := clock.afterCalls()
	go func() {
		c, err := r.Run(context.Background(), spec("c1", "sleep", "1"))
		if err != nil {
			t.Error(err)
		}
		done <- c
	}()
	clock.waitForCalls(t, mark+1)
	if c, _ := get(t, r, "c1"); c.State != runtime.Created || !c.StartedAt.IsZero() {
		t.Fatalf("while starting: %+v, want created", c)
	}
	clock.Advance(299 * time.Millisecond)
	select {
	case c := <-done:
		t.Fatalf("Run returned before the delay: %+v", c)
	default:
	}
	clock.Advance(time.Millisecond)
	c := <-done
	if c.State != runtime.Running || !c.StartedAt.Equal(start.Add(300*time.Millisecond)) {
		t.Fatalf("after the delay: %+v", c)
	}
	// The command's time counts from the start, not from Run.
	clock.Advance(999 * time.Millisecond)
	if c, _ := get(t, r, "c1"); c.State != runtime.Running {
		t.Fatalf("sleep 1, 999ms after its start: %+v", c)
	}
	clock.Advance(time.Millisecond)
	if c, _ := get(t, r, "c1"); c.State != runtime.Exited {
		t.Fatalf("sleep 1, 1s after its start: %+v", c)
	}
}

func TestARunGivenUpWhileStartingLeavesNothing(t *testing.T) {
	r, clock := newSim(t, Config{StartDelay: time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := r.Run(ctx, spec("c1"))
		errc <- err
	}()
	clock.waitForCalls(t, 1)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("run: %v, want canceled", err)
	}
	if c, ok := get(t, r, "c1"); ok {
		t.Fatalf("left %+v", c)
	}
}

func TestRunRefusesWhatContainerdWouldRefuse(t *testing.T) {
	r, _ := newSim(t, Config{})
	run(t, r, spec("c1"))
	for name, s := range map[string]runtime.Spec{
		"a second container with the same id": spec("c1"),
		"no id":                               {Image: DefaultImage},
		"no image":                            {ID: "c2"},
	} {
		if _, err := r.Run(context.Background(), s); err == nil {
			t.Errorf("%s: ran", name)
		}
	}
	if _, err := r.Run(context.Background(), runtime.Spec{ID: "c3"}); !errors.Is(err, runtime.ErrImageNotFound) {
		t.Errorf("no image: %v, want ErrImageNotFound", err)
	}
}

func TestStopEndsARunningProcessAndLeavesAnEndedOneAlone(t *testing.T) {
	for _, tc := range []struct {
		name     string
		cmd      []string
		before   time.Duration // run this long before the stop
		wantCode int
		wantAt   time.Duration // exited at, since the start
	}{
		{"a running process ends with SIGTERM's 143", []string{"python", "serve.py"}, 5 * time.Second, 143, 5 * time.Second},
		{"a sleep stopped before its end", []string{"sleep", "60"}, 5 * time.Second, 143, 5 * time.Second},
		{"a sleep that ended keeps its 0", []string{"sleep", "1"}, 5 * time.Second, 0, time.Second},
		{"an exit keeps its code", []string{"exit", "4"}, 5 * time.Second, 4, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, clock := newSim(t, Config{})
			start := clock.Now()
			run(t, r, spec("c1", tc.cmd...))
			clock.Advance(tc.before)
			if err := r.Stop(context.Background(), "c1", 10*time.Second); err != nil {
				t.Fatal(err)
			}
			clock.Advance(time.Hour)
			c, _ := get(t, r, "c1")
			if c.State != runtime.Exited || c.ExitCode != tc.wantCode || !c.ExitedAt.Equal(start.Add(tc.wantAt)) {
				t.Fatalf("%+v, want exited %d at +%s", c, tc.wantCode, tc.wantAt)
			}
			// A second stop changes nothing.
			if err := r.Stop(context.Background(), "c1", 0); err != nil {
				t.Fatal(err)
			}
			if again, _ := get(t, r, "c1"); again.ExitCode != c.ExitCode || !again.ExitedAt.Equal(c.ExitedAt) {
				t.Fatalf("second stop changed %+v to %+v", c, again)
			}
		})
	}
	r, _ := newSim(t, Config{})
	if err := r.Stop(context.Background(), "nope", time.Second); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("stop of an unknown container: %v", err)
	}
}

func TestRemoveKeepsTheLogForTheRetention(t *testing.T) {
	r, clock := newSim(t, Config{EndedLogRetention: time.Hour})
	run(t, r, spec("c1", "python", "serve.py"))
	clock.Advance(2 * time.Second)
	if err := r.Remove(context.Background(), "c1"); err != nil {
		t.Fatal(err)
	}
	if c, ok := get(t, r, "c1"); ok {
		t.Fatalf("removed container listed: %+v", c)
	}
	if err := r.Remove(context.Background(), "c1"); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("second remove: %v", err)
	}
	logs := readLogs(t, r, "c1")
	if !strings.Contains(logs, `started ["python" "serve.py"]`) || !strings.Contains(logs, "stopped (SIGTERM) with code 143") {
		t.Fatalf("log of the removed container:\n%s", logs)
	}
	// Past the retention, the next removal forgets it.
	clock.Advance(time.Hour + time.Second)
	if _, err := r.Logs(context.Background(), "c1", time.Time{}); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("log past the retention: %v", err)
	}
	run(t, r, spec("c2"))
	if err := r.Remove(context.Background(), "c2"); err != nil {
		t.Fatal(err)
	}
	if _, ok := r.ended["c1"]; ok {
		t.Fatal("the log past the retention is still held")
	}

	none, _ := newSim(t, Config{EndedLogRetention: -1})
	run(t, none, spec("c1"))
	if err := none.Remove(context.Background(), "c1"); err != nil {
		t.Fatal(err)
	}
	if _, err := none.Logs(context.Background(), "c1", time.Time{}); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("log kept with a negative retention: %v", err)
	}
}

func readLogs(t *testing.T, r *Runtime, id string) string {
	t.Helper()
	rc, err := r.Logs(context.Background(), id, time.Time{})
	if err != nil {
		t.Fatalf("logs of %s: %v", id, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestLogsSayWhatTheSimulationDid(t *testing.T) {
	r, clock := newSim(t, Config{})
	run(t, r, spec("c1", "sh", "-c", "exit 3"))
	run(t, r, spec("c2", "sleep", "5"))
	logs := readLogs(t, r, "c1")
	if !strings.Contains(logs, "exits with 3 at once") || !strings.Contains(logs, "exited with code 3") {
		t.Fatalf("c1:\n%s", logs)
	}
	if logs := readLogs(t, r, "c2"); !strings.Contains(logs, "runs 5s, then exits with 0") || strings.Contains(logs, "exited") {
		t.Fatalf("c2 while it runs:\n%s", logs)
	}
	clock.Advance(5 * time.Second)
	if logs := readLogs(t, r, "c2"); !strings.Contains(logs, "exited with code 0") {
		t.Fatalf("c2 after its end:\n%s", logs)
	}
	if _, err := r.Logs(context.Background(), "nope", time.Time{}); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("logs of an unknown container: %v", err)
	}
}

func TestExecRunsTheCommandsTheSimulationCanRead(t *testing.T) {
	r, clock := newSim(t, Config{})
	run(t, r, spec("c1", "sleep", "infinity"))
	for _, tc := range []struct {
		name    string
		cmd     []string
		timeout time.Duration
		advance time.Duration // the clock moves this much while it runs
		code    int
		stdout  string
		stderr  string
		err     error
	}{
		{"echo prints its words", []string{"echo", "hello", "world"}, 0, 0, 0, "hello world\n", "", nil},
		{"exit N returns N", []string{"exit", "4"}, 0, 0, 4, "", "", nil},
		{"a shell's exit too", []string{"sh", "-c", "exit 5"}, time.Second, 0, 5, "", "", nil},
		{"sleep returns once its time is up", []string{"sleep", "2"}, 5 * time.Second, 2 * time.Second, 0, "", "", nil},
		{"sleep past the timeout fails as containerd's does", []string{"sleep", "10"}, time.Second, time.Second, 0, "", "", context.DeadlineExceeded},
		{"anything else is not run and says so", []string{"nvidia-smi"}, 0, 0, 127, "", "simulated", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			type result struct {
				res runtime.ExecResult
				err error
			}
			done := make(chan result, 1)
			mark := clock.afterCalls()
			go func() {
				res, err := r.Exec(context.Background(), "c1", tc.cmd, tc.timeout)
				done <- result{res, err}
			}()
			if tc.advance > 0 {
				clock.waitForCalls(t, mark+2) // the timeout's and the sleep's
				clock.Advance(tc.advance)
			}
			got := <-done
			if tc.err != nil {
				if !errors.Is(got.err, tc.err) {
					t.Fatalf("%v, want %v", got.err, tc.err)
				}
				return
			}
			if got.err != nil || got.res.ExitCode != tc.code || string(got.res.Stdout) != tc.stdout || !strings.Contains(string(got.res.Stderr), tc.stderr) {
				t.Fatalf("%+v (stdout %q stderr %q), %v", got.res, got.res.Stdout, got.res.Stderr, got.err)
			}
		})
	}
	run(t, r, spec("ended", "exit", "0"))
	for name, tc := range map[string]struct {
		id  string
		cmd []string
		err error
	}{
		"in an ended container":  {"ended", []string{"echo"}, runtime.ErrNotRunning},
		"in an unknown one":      {"nope", []string{"echo"}, runtime.ErrNotFound},
		"with no command at all": {"c1", nil, nil},
	} {
		_, err := r.Exec(context.Background(), tc.id, tc.cmd, time.Second)
		if err == nil || (tc.err != nil && !errors.Is(err, tc.err)) {
			t.Errorf("%s: %v, want %v", name, err, tc.err)
		}
	}
}

// Usage is plausible: it grows with the time run, a busy process uses a
// share of its CPU quota and memory limit, a sleeping one next to nothing,
// and neither passes the limits.
func TestUsageIsPlausibleAndWithinTheLimits(t *testing.T) {
	for _, tc := range []struct {
		name        string
		cmd         []string
		milliCPU    int64
		memory      int64
		busy        bool
		wantLimit   int64
		memoryBound int64
	}{
		{"a busy process with limits", []string{"python", "train.py"}, 2000, 4 << 30, true, 4 << 30, 4 << 30},
		{"a busy process without limits", []string{"python", "train.py"}, 0, 0, true, 0, unlimitedMemory},
		{"a sleeping process", []string{"sleep", "infinity"}, 1000, 1 << 30, false, 1 << 30, idleMemory},
		{"a sleeping process in less memory than sleep holds", []string{"sleep", "100"}, 100, 100 << 10, false, 100 << 10, 100 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, clock := newSim(t, Config{})
			s := spec("c-"+strings.ReplaceAll(tc.name, " ", "-"), tc.cmd...)
			s.MilliCPU, s.MemoryBytes = tc.milliCPU, tc.memory
			run(t, r, s)
			clock.Advance(10 * time.Second)
			u, err := r.Usage(context.Background(), s.ID)
			if err != nil {
				t.Fatal(err)
			}
			cores := float64(max(tc.milliCPU, unlimitedMilliCPU*boolInt(tc.milliCPU == 0))) / 1000
			if u.CPUSeconds <= 0 || u.CPUSeconds > 10*cores {
				t.Fatalf("cpu %.3f s after 10 s on %.1f cores", u.CPUSeconds, cores)
			}
			if tc.busy && u.CPUSeconds < 0.05*10*cores {
				t.Fatalf("busy: cpu %.3f s after 10 s on %.1f cores, below 5 %%", u.CPUSeconds, cores)
			}
			if !tc.busy && u.CPUSeconds > 0.01*10*cores {
				t.Fatalf("sleeping: cpu %.3f s after 10 s", u.CPUSeconds)
			}
			if u.MemoryWorkingSet <= 0 || u.MemoryWorkingSet > tc.memoryBound || u.MemoryLimit != tc.wantLimit {
				t.Fatalf("memory %d of limit %d (bound %d)", u.MemoryWorkingSet, u.MemoryLimit, tc.memoryBound)
			}
			clock.Advance(10 * time.Second)
			later, _ := r.Usage(context.Background(), s.ID)
			if later.CPUSeconds <= u.CPUSeconds || later.MemoryWorkingSet != u.MemoryWorkingSet {
				t.Fatalf("10 s later: %+v, before %+v", later, u)
			}
		})
	}
	r, _ := newSim(t, Config{})
	run(t, r, spec("ended", "exit", "1"))
	if _, err := r.Usage(context.Background(), "ended"); !errors.Is(err, runtime.ErrNotRunning) {
		t.Fatalf("usage of an ended container: %v", err)
	}
	if _, err := r.Usage(context.Background(), "nope"); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("usage of an unknown container: %v", err)
	}
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func TestBusyContainersDifferButEachIsSteady(t *testing.T) {
	seen := map[float64]bool{}
	for _, id := range []string{"a", "b", "c", "d"} {
		load, mem := shares(id)
		if load < 0.05 || load > 0.6 || mem < 0.1 || mem > 0.5 {
			t.Fatalf("%s: load %.3f mem %.3f out of range", id, load, mem)
		}
		if again, _ := shares(id); again != load {
			t.Fatalf("%s: load %.3f then %.3f", id, load, again)
		}
		seen[load] = true
	}
	if len(seen) < 3 {
		t.Fatalf("four containers share %d loads", len(seen))
	}
}

func TestASimulatedContainerHasNoHostProcess(t *testing.T) {
	r, _ := newSim(t, Config{})
	run(t, r, spec("c1"))
	run(t, r, spec("ended", "exit", "0"))
	if pids, err := r.Pids(context.Background(), "c1"); err != nil || len(pids) != 0 {
		t.Fatalf("pids %v, %v", pids, err)
	}
	if _, err := r.Pids(context.Background(), "ended"); !errors.Is(err, runtime.ErrNotRunning) {
		t.Fatalf("pids of an ended container: %v", err)
	}
}

func TestImagesAreTheGivenOnesAndWhatIsAskedFor(t *testing.T) {
	r, _ := newSim(t, Config{})
	names := func() []string {
		imgs, err := r.Images(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, im := range imgs {
			if !strings.HasPrefix(im.Digest, "sha256:") {
				t.Fatalf("image %+v has no digest", im)
			}
			out = append(out, im.Name)
		}
		return out
	}
	if got := strings.Join(names(), ","); got != DefaultImage {
		t.Fatalf("images at start: %s", got)
	}
	s := spec("c1")
	s.Image = "registry.example/train:v2"
	run(t, r, s)
	if got := strings.Join(names(), ","); got != "berth/base:latest,registry.example/train:v2" {
		t.Fatalf("after a container asked for another image: %s", got)
	}

	given, _ := newSim(t, Config{Images: []string{"a:1", "b:2"}})
	imgs, _ := given.Images(context.Background())
	if len(imgs) != 2 || imgs[0].Name != "a:1" || imgs[1].Name != "b:2" {
		t.Fatalf("given images: %+v", imgs)
	}
	// The digest depends on the name only: a restarted node reports the same.
	again, _ := New(Config{Images: []string{"a:1"}}).Images(context.Background())
	if again[0].Digest != imgs[0].Digest {
		t.Fatalf("digest of a:1 changed: %s, %s", imgs[0].Digest, again[0].Digest)
	}
}

// The agent's pull path (find, pull, remove, measure) runs on a simulated
// node as on a real one: an absent image is not found until pulled, a pull
// reports its progress and keeps the image, a container made from it
// carries its digest and keeps it from removal.
func TestImagesArePulledFoundAndRemovedAsTheAgentExpects(t *testing.T) {
	ctx := context.Background()
	r, _ := newSim(t, Config{})
	const ref = "registry.example/lab/train:3"
	if _, err := r.Image(ctx, ref); !errors.Is(err, runtime.ErrImageNotFound) {
		t.Fatalf("an image never pulled: %v, want ErrImageNotFound", err)
	}
	var done, total int64
	im, err := r.Pull(ctx, runtime.PullRequest{Ref: ref, Progress: func(d, tot int64) { done, total = d, tot }})
	if err != nil || im.Name != ref || !strings.HasPrefix(im.Digest, "sha256:") || im.Size <= 0 {
		t.Fatalf("pull: %+v, %v", im, err)
	}
	if done != im.Size || total != im.Size {
		t.Fatalf("progress heard %d/%d, want the whole %d", done, total, im.Size)
	}
	if got, err := r.Image(ctx, ref); err != nil || got.Digest != im.Digest {
		t.Fatalf("after the pull: %+v, %v", got, err)
	}
	if _, err := r.Pull(ctx, runtime.PullRequest{}); err == nil {
		t.Fatal("a pull of no reference succeeded")
	}
	s := spec("c1", "sleep", "100")
	s.Image = ref
	c := run(t, r, s)
	if c.ImageDigest != im.Digest {
		t.Fatalf("container made from %s has digest %q, want %q", ref, c.ImageDigest, im.Digest)
	}
	if err := r.RemoveImage(ctx, ref); !errors.Is(err, runtime.ErrImageInUse) {
		t.Fatalf("removing an image a container uses: %v, want ErrImageInUse", err)
	}
	disk, err := r.ImageDisk(ctx)
	if err != nil || disk.UsedBytes < im.Size || disk.TotalBytes <= disk.UsedBytes {
		t.Fatalf("image disk %+v, %v", disk, err)
	}
	if err := r.Remove(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if err := r.RemoveImage(ctx, ref); err != nil {
		t.Fatalf("removing an unused image: %v", err)
	}
	if err := r.RemoveImage(ctx, ref); !errors.Is(err, runtime.ErrImageNotFound) {
		t.Fatalf("removing it again: %v, want ErrImageNotFound", err)
	}
}

func TestImportRecordsTheImagesAnArchiveNames(t *testing.T) {
	for _, tc := range []struct {
		name    string
		files   map[string]string
		want    []string
		wantErr string
	}{
		{"named by containerd's annotation", map[string]string{"oci-layout": `{}`, "blobs/sha256/aa": "layer",
			"index.json": `{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:` + strings.Repeat("a", 64) + `","size":500,"annotations":{"io.containerd.image.name":"docker.io/berth/tools:1"}}]}`},
			[]string{"docker.io/berth/tools:1"}, ""},
		{"named by the OCI ref annotation", map[string]string{
			"index.json": `{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:` + strings.Repeat("b", 64) + `","size":9,"annotations":{"org.opencontainers.image.ref.name":"train:v3"}},{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:` + strings.Repeat("c", 64) + `","size":9}]}`},
			[]string{"train:v3"}, ""},
		{"no index", map[string]string{"oci-layout": `{}`}, nil, "no index.json"},
		{"an index naming nothing", map[string]string{"index.json": `{"schemaVersion":2,"manifests":[]}`}, nil, "names no image"},
		{"an index that is not JSON", map[string]string{"index.json": `{`}, nil, "index.json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := newSim(t, Config{})
			got, err := r.ImportImage(context.Background(), tarOf(t, tc.files))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("%+v, %v; want an error saying %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || len(got) != len(tc.want) {
				t.Fatalf("%+v, %v", got, err)
			}
			imgs, _ := r.Images(context.Background())
			for i, name := range tc.want {
				if got[i].Name != name || got[i].Digest == "" {
					t.Fatalf("imported %+v, want %s", got[i], name)
				}
				found := false
				for _, im := range imgs {
					found = found || im.Name == name
				}
				if !found {
					t.Fatalf("%s not listed after import: %+v", name, imgs)
				}
			}
		})
	}
	r, _ := newSim(t, Config{})
	if _, err := r.ImportImage(context.Background(), strings.NewReader("not a tar archive at all, just words")); err == nil {
		t.Fatal("imported garbage")
	}
}

func tarOf(t *testing.T, files map[string]string) io.Reader {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf
}

func TestVersionSaysSimulated(t *testing.T) {
	v, err := New(Config{}).Version(context.Background())
	if err != nil || !strings.Contains(v, "sim") {
		t.Fatalf("version %q, %v", v, err)
	}
}

func TestAClosedRuntimeFailsToList(t *testing.T) {
	r := New(Config{})
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.List(context.Background()); err == nil {
		t.Fatal("listed after close")
	}
}

// Agents run, list, stop and remove from several goroutines at once
// (converge, stops in the background, heartbeats, exec); -race checks it.
func TestConcurrentUseIsSafe(t *testing.T) {
	r := New(Config{})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := string(rune('a' + i))
			ctx := context.Background()
			if _, err := r.Run(ctx, spec(id, "python", "x")); err != nil {
				t.Error(err)
				return
			}
			_, _ = r.List(ctx)
			_, _ = r.Usage(ctx, id)
			_, _ = r.Exec(ctx, id, []string{"echo", id}, time.Second)
			_ = r.Stop(ctx, id, time.Second)
			_ = r.Remove(ctx, id)
			_, _ = r.Logs(ctx, id, time.Time{})
		}()
	}
	wg.Wait()
	if cs, _ := r.List(context.Background()); len(cs) != 0 {
		t.Fatalf("left %+v", cs)
	}
}
