package chaos_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/client"
	"github.com/berth-cluster/berth/shared/slots"
)

// The register under test: the idle_timeout of policy "chaos", written
// with PATCH and read with a consistent GET.
const (
	registerPolicy = "chaos"
	quotaPolicy    = "chaosq"
	maxSessions    = 2
)

type regInput struct {
	write bool
	value int64
}

type regOutput struct {
	value   int64
	unknown bool // a write whose outcome nobody knows
}

var registerModel = porcupine.Model{
	Init: func() any { return int64(0) },
	Step: func(state, input, output any) (bool, any) {
		in, out := input.(regInput), output.(regOutput)
		if in.write {
			return true, in.value
		}
		return out.value == state.(int64), state
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(regInput), output.(regOutput)
		if in.write {
			if out.unknown {
				return fmt.Sprintf("write(%d) -> ?", in.value)
			}
			return fmt.Sprintf("write(%d)", in.value)
		}
		return fmt.Sprintf("read() -> %d", out.value)
	},
}

// outcome sorts a write's error: applied, certainly not applied, or unknown.
type outcome int

const (
	applied outcome = iota
	notApplied
	unknown
)

func classify(err error) outcome {
	if err == nil {
		return applied
	}
	var p *api.Problem
	if errors.As(err, &p) && (p.Type == api.ProblemNoLeader || (p.Status >= 400 && p.Status < 500)) {
		return notApplied
	}
	return unknown
}

func duration(t *testing.T) time.Duration {
	if s := os.Getenv("CHAOS_DURATION"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("CHAOS_DURATION: %v", err)
		}
		return d
	}
	return 20 * time.Second
}

func (m *managers) newClient(t *testing.T, addrs []string, token string, header http.Header) *client.Client {
	t.Helper()
	c, err := client.New(client.Config{Addrs: addrs, Token: token, MaxAttempts: 12, RetryBackoff: 100 * time.Millisecond, Header: header,
		HTTPClient: m.httpClient(5 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// history collects operations from every client.
type history struct {
	mu   sync.Mutex
	ops  []porcupine.Operation
	t0   time.Time
	done atomic.Bool
}

func (h *history) now() int64 { return int64(time.Since(h.t0)) }

func (h *history) add(op porcupine.Operation) {
	h.mu.Lock()
	h.ops = append(h.ops, op)
	h.mu.Unlock()
}

func TestLinearizableAndNothingLostUnderFaults(t *testing.T) {
	m := startManagers(t)
	ctx := context.Background()
	boot := m.newClient(t, m.urls(), "", nil)
	login, err := boot.Login(ctx, admin, password)
	if err != nil {
		t.Fatal(err)
	}
	adm := m.newClient(t, m.urls(), login.Token, nil)
	for _, p := range []api.ResourcePolicyRequest{
		{Name: registerPolicy},
		{Name: quotaPolicy, MaxConcurrentSessions: ptr(maxSessions)},
	} {
		if _, err := adm.CreateResourcePolicy(ctx, p); err != nil {
			t.Fatalf("create policy: %v", err)
		}
	}
	quotaUser, err := adm.CreateUser(ctx, api.UserCreate{Email: "quota@example.com", Username: "quota", Password: "Passw0rd!",
		Role: api.RoleUser, ResourcePolicy: quotaPolicy})
	if err != nil {
		t.Fatal(err)
	}
	qlogin, err := boot.Login(ctx, "quota@example.com", "Passw0rd!")
	if err != nil {
		t.Fatal(err)
	}
	quota := m.newClient(t, m.urls(), qlogin.Token, nil)
	agentID := runFakeAgent(t, m)

	h := &history{t0: time.Now()}
	var acked sync.Map // emails of users whose create was acknowledged
	var overAdmitted atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	run := func(f func(id int)) {
		for id := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				f(id)
			}()
		}
	}
	// Register clients: each writes values only it uses, and reads.
	run(func(id int) {
		seq := int64(0)
		for {
			select {
			case <-stop:
				return
			default:
			}
			seq++
			if rand.IntN(2) == 0 {
				v := int64(id+1)*1_000_000 + seq
				call := h.now()
				_, err := adm.UpdateResourcePolicy(ctx, registerPolicy, api.ResourcePolicyRequest{IdleTimeout: &v})
				switch classify(err) {
				case applied:
					h.add(porcupine.Operation{ClientId: id, Input: regInput{write: true, value: v}, Call: call, Output: regOutput{}, Return: h.now()})
				case unknown:
					h.add(porcupine.Operation{ClientId: id, Input: regInput{write: true, value: v}, Call: call, Output: regOutput{unknown: true}, Return: 1 << 62})
				}
				continue
			}
			call := h.now()
			p, err := adm.GetResourcePolicy(ctx, registerPolicy)
			if err == nil {
				h.add(porcupine.Operation{ClientId: id, Input: regInput{}, Call: call, Output: regOutput{value: p.IdleTimeout}, Return: h.now()})
			}
		}
	})
	// User creates: every acknowledged one must survive.
	run(func(id int) {
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			email := fmt.Sprintf("u%d-%d@example.com", id, n)
			if _, err := adm.CreateUser(ctx, api.UserCreate{Email: email, Username: fmt.Sprintf("u%d-%d", id, n), Password: "Passw0rd!", Role: api.RoleUser}); err == nil {
				acked.Store(email, true)
			}
		}
	})
	// Session creates against a keypair that may hold two; a watcher
	// checks it never holds more.
	run(func(id int) {
		for {
			select {
			case <-stop:
				return
			default:
			}
			_, _ = quota.CreateSession(ctx, api.SessionCreate{Image: "berth/base:latest", Type: api.SessionInteractive,
				Resources: slots.Slots{slots.CPU: 100, slots.Mem: 64 << 20}})
			if id == 0 {
				if ind, err := quota.MyResources(ctx, ""); err == nil && ind.Concurrency.Used > maxSessions {
					overAdmitted.Store(int64(ind.Concurrency.Used))
				}
			}
		}
	})

	nemesis(t, m, adm, duration(t))
	close(stop)
	wg.Wait()
	m.heal()
	m.waitReady(90 * time.Second)

	h.mu.Lock()
	ops := h.ops
	h.mu.Unlock()
	res, info := porcupine.CheckOperationsVerbose(registerModel, ops, time.Minute)
	writes, reads := 0, 0
	for _, op := range ops {
		if op.Input.(regInput).write {
			writes++
		} else {
			reads++
		}
	}
	t.Logf("register history: %d writes, %d reads: %v", writes, reads, res)
	if res != porcupine.Ok {
		out := filepath.Join(t.TempDir(), "linearizability.html")
		if f, err := os.Create(out); err == nil {
			_ = porcupine.Visualize(registerModel, info, f)
			f.Close()
		}
		t.Errorf("the policy register is not linearizable (%v); see %s", res, out)
	}
	if n := overAdmitted.Load(); n != 0 {
		t.Errorf("the keypair held %d sessions at once; its policy allows %d", n, maxSessions)
	}
	checkEveryManager(t, m, login.Token, &acked, quotaUser.Keypair.AccessKey, agentID)
}

// nemesis injects one fault after another until d has passed: kill -9 the
// leader and restart it, pause a manager, cut one off the network.
func nemesis(t *testing.T, m *managers, adm *client.Client, d time.Duration) {
	end := time.Now().Add(d)
	faults := 0
	for i := 0; time.Now().Before(end); i++ {
		victim := rand.IntN(3)
		switch i % 3 {
		case 0:
			if rc, err := adm.RaftConfiguration(context.Background()); err == nil {
				for j := range 3 {
					if rc.Leader == fmt.Sprintf("m%d", j+1) {
						victim = j
					}
				}
			}
			m.kill(victim)
			wait(2 * time.Second)
			m.start(victim)
		case 1:
			m.signal(victim, syscall.SIGSTOP)
			wait(3 * time.Second)
			m.signal(victim, syscall.SIGCONT)
		case 2:
			m.setCut(victim, true)
			wait(3 * time.Second)
			m.setCut(victim, false)
		}
		faults++
		wait(time.Second)
	}
	t.Logf("nemesis: %d faults in %s", faults, d)
}

// wait is the nemesis's pause between faults: the length of a fault, not a
// wait for a condition.
func wait(d time.Duration) { <-time.After(d) }

// checkEveryManager waits until every manager has every acknowledged user,
// then checks each one's copy of the session records and occupancy.
func checkEveryManager(t *testing.T, m *managers, token string, acked *sync.Map, quotaKey, agentID string) {
	t.Helper()
	var emails []string
	acked.Range(func(k, _ any) bool { emails = append(emails, k.(string)); return true })
	t.Logf("%d user creates acknowledged", len(emails))
	for i := range 3 {
		one := m.newClient(t, []string{m.url(i)}, token, nil)
		deadline := time.Now().Add(60 * time.Second)
		for _, e := range emails {
			for {
				var u api.User
				err := one.Do(context.Background(), http.MethodGet, "/v1/users/"+url.PathEscape(e), url.Values{"stale": {"true"}}, nil, &u)
				if err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("manager m%d lost the acknowledged user %s: %v", i+1, e, err)
				}
				time.Sleep(100 * time.Millisecond) // catching up from the leader
			}
		}
	}
	adm := m.newClient(t, m.urls(), token, nil)
	ind, err := adm.MyResources(context.Background(), quotaKey)
	if err != nil {
		t.Fatal(err)
	}
	if ind.Concurrency.Used > maxSessions {
		t.Errorf("the keypair holds %d sessions; its policy allows %d", ind.Concurrency.Used, maxSessions)
	}
	rec, err := adm.RecalculateUsage(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range rec.Drift {
		if d.Scope != "agent/"+agentID || d.Slot != "containers" { // the fake agent runs nothing
			t.Errorf("usage drifted under faults: %+v", d)
		}
	}
}

// runFakeAgent registers an agent with the base image and keeps it
// heartbeating through every manager until the test ends, so sessions can
// be placed.
func runFakeAgent(t *testing.T, m *managers) string {
	t.Helper()
	hdr := http.Header{api.AgentTokenHeader: {agentTok}}
	capacity := slots.Slots{slots.CPU: 64000, slots.Mem: 256 << 30}
	reg, err := m.newClient(t, m.urls(), "", hdr).RegisterAgent(context.Background(), api.AgentRegister{Address: "10.255.0.1:6001",
		Capacity: capacity, Images: []api.Image{{Name: "berth/base:latest", Digest: "sha256:aa", Size: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	c := m.newClient(t, m.urls(), reg.Secret, hdr)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				_, _ = c.AgentHeartbeat(ctx, reg.ID, api.AgentHeartbeat{Capacity: capacity})
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return reg.ID
}

func ptr[T any](v T) *T { return &v }
