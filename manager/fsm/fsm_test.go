package fsm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/berth-cluster/berth/manager/apierr"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/slots"
)

func newTestFSM() *FSM { return New(slog.New(slog.NewTextHandler(io.Discard, nil))) }

// dump renders every table, in snapshot order, as JSON.
func dump(t *testing.T, f *FSM) map[string]string {
	t.Helper()
	tx := f.State().Read()
	out := map[string]string{}
	for _, tb := range state.Tables() {
		objs, err := tx.All(tb.Name)
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(objs)
		if err != nil {
			t.Fatal(err)
		}
		out[tb.Name] = string(b)
	}
	return out
}

// testLog builds a log that writes every table, including entries the FSM
// must refuse (duplicates, unknown users), from a seeded generator.
func testLog(t testing.TB, seed uint64, users int) [][]byte {
	t.Helper()
	rnd := rand.New(rand.NewPCG(seed, seed))
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(i int) time.Time { return base.Add(time.Duration(i) * time.Second) }
	var cmds []Command
	limit := int64(4000)
	cmds = append(cmds, Bootstrap{
		Domain:        state.Domain{Name: "default", IsActive: true, CreatedAt: base},
		Group:         state.Group{Domain: "default", Name: "default", IsActive: true, CreatedAt: base},
		Policy:        state.ResourcePolicy{ResourcePolicy: api.ResourcePolicy{Name: "default", TotalResourceSlots: slots.Limits{slots.CPU: limit}, MaxContainersPerSession: 1, MaxConcurrentSessions: new(int), CreatedAt: base}},
		Admin:         state.User{Email: "admin@x.io", Username: "admin", Role: api.RoleSuperadmin, Status: api.StatusActive, Domain: "default", Groups: []string{"default"}, CreatedAt: base},
		AdminKeypair:  state.Keypair{AccessKey: "AKADMIN000000000000", SecretKey: "s", User: "admin@x.io", IsActive: true, IsAdmin: true, ResourcePolicy: "default", CreatedAt: base},
		ClusterSecret: "secret",
	})
	cmds = append(cmds, Bootstrap{ClusterSecret: "second bootstrap must be ignored"})
	cmds = append(cmds, AgentPut{Agent: state.Agent{ID: "a1", Address: "127.0.0.1:6001", Status: state.AgentAlive, Schedulable: true,
		Capacity: slots.Slots{slots.CPU: 8000, slots.Mem: 16 << 30}, LastHeartbeatAt: base}})
	cmds = append(cmds, agentEntries(base)...)
	cmds = append(cmds, agentTokenEntries(base)...)
	cmds = append(cmds, registryEntries(base)...)
	cmds = append(cmds, MemberPut{Member: state.Member{ID: "m1", RaftAddr: "127.0.0.1:1", HTTPAddr: "127.0.0.1:2"}},
		MemberPut{Member: state.Member{ID: "m2", RaftAddr: "127.0.0.1:3", HTTPAddr: "127.0.0.1:4"}})
	for i := 0; i < users; i++ {
		// Collisions on purpose: about a fifth of the creates reuse a name.
		n := rnd.IntN(users + users/5)
		email := fmt.Sprintf("u%d@x.io", n)
		cmds = append(cmds, UserCreate{
			User:    state.User{Email: email, Username: fmt.Sprintf("user%d", n), Role: api.RoleUser, Status: api.StatusActive, Domain: "default", Groups: []string{"default"}, CreatedAt: at(i)},
			Keypair: state.Keypair{AccessKey: fmt.Sprintf("AK%018d", i), SecretKey: "k", User: email, IsActive: true, ResourcePolicy: "default", CreatedAt: at(i)},
		})
		switch rnd.IntN(4) {
		case 0:
			inactive := api.StatusInactive
			cmds = append(cmds, UserUpdate{Email: email, ModifiedAt: at(i), Status: &inactive})
		case 1:
			cmds = append(cmds, TokenCreate{Token: state.Token{Hash: fmt.Sprintf("h%d", i), User: email, CreatedAt: at(i), ExpiresAt: at(i + rnd.IntN(100))}})
		case 2:
			cmds = append(cmds, KeypairPut{Keypair: state.Keypair{AccessKey: fmt.Sprintf("AK2%017d", i), User: email, IsActive: true, ResourcePolicy: "default", CreatedAt: at(i)}})
		case 3:
			name := fmt.Sprintf("user%d", rnd.IntN(users))
			cmds = append(cmds, UserUpdate{Email: email, ModifiedAt: at(i), Username: &name})
		}
	}
	// Administration of people: domains, groups, membership, keypair changes.
	off := false
	pol := "default"
	rl := 30
	desc := "changed"
	cmds = append(cmds,
		DomainCreate{Domain: state.Domain{Name: "research", IsActive: true, CreatedAt: base}},
		DomainCreate{Domain: state.Domain{Name: "research"}}, // refused: exists
		GroupCreate{Group: state.Group{Domain: "default", Name: "ml", CreatedAt: base}},
		GroupCreate{Group: state.Group{Domain: "nowhere", Name: "ml"}}, // refused: no domain
		GroupUpdate{Domain: "default", Name: "ml", Description: &desc, IsActive: &off},
		GroupMembers{Domain: "default", Name: "ml", Add: []string{"u1@x.io", "u2@x.io", "admin@x.io"}, Remove: []string{"u2@x.io"}, ModifiedAt: base},
		GroupMembers{Domain: "default", Name: "ml", Add: []string{"ghost@x.io"}}, // refused: no user
		KeypairUpdate{AccessKey: fmt.Sprintf("AK%018d", 3), IsActive: &off, ResourcePolicy: &pol, RateLimit: &rl},
		KeypairDelete{AccessKey: fmt.Sprintf("AK%018d", 4)},
		KeypairsTouch{LastUsed: map[string]time.Time{fmt.Sprintf("AK%018d", 5): at(7), fmt.Sprintf("AK%018d", 6): at(8), "AKGONE0000000000000": at(9)}},
	)
	// Resource policies: create, update (slots set and made unlimited, nullable
	// fields set and cleared), deletes refused while in use and for default.
	two, lifetime, size, hosts := 2, int64(3600), int64(1<<30), []string{"local", "nfs"}
	cmds = append(cmds,
		PolicyCreate{Policy: state.ResourcePolicy{ResourcePolicy: api.ResourcePolicy{Name: "gpu", TotalResourceSlots: slots.Limits{slots.CUDAShares: 150},
			MaxContainersPerSession: 1, MaxVfolderCount: 10, AllowedVfolderHosts: []string{}, CreatedAt: base, ModifiedAt: base}}},
		PolicyCreate{Policy: state.ResourcePolicy{ResourcePolicy: api.ResourcePolicy{Name: "students", MaxContainersPerSession: 1, CreatedAt: base}}},
		PolicyCreate{Policy: state.ResourcePolicy{ResourcePolicy: api.ResourcePolicy{Name: "gpu"}}}, // refused: exists
		PolicyUpdate{Name: "gpu", ModifiedAt: at(3), Slots: map[slots.Name]*int64{slots.CPU: &lifetime, slots.CUDAShares: nil},
			MaxConcurrentSessions: &Nullable[int]{Value: &two}, MaxSessionLifetime: &Nullable[int64]{Value: &lifetime},
			AllowedVfolderHosts: &hosts, MaxVfolderSize: &Nullable[int64]{Value: &size}},
		PolicyUpdate{Name: "students", ModifiedAt: at(4), MaxConcurrentSessions: &Nullable[int]{}, IdleTimeout: &lifetime},
		PolicyUpdate{Name: "nothing", ModifiedAt: at(5)}, // refused: no such policy
		KeypairPut{Keypair: state.Keypair{AccessKey: "AKSTUDENT0000000000", User: "admin@x.io", ResourcePolicy: "students", CreatedAt: base}},
		PolicyDelete{Name: "students"}, // refused: a keypair holds it
		PolicyDelete{Name: "default"},  // refused: never deleted
		PolicyDelete{Name: "nothing"},  // refused: no such policy
		PolicyDelete{Name: "gpu"},
	)
	cmds = append(cmds, sessionEntries(base)...)
	cmds = append(cmds, gpuEntries(base)...)
	cmds = append(cmds, folderEntries(base)...)
	cmds = append(cmds, disconnectEntries(base)...)
	// Sessions batched in one entry, one of them refused (its id exists).
	cmds = append(cmds, SessionsCreate{Sessions: []state.Session{
		newSession("s8", sessionKey, api.SessionBatch, 1000, 1, at(7)).Session,
		newSession("s1", sessionKey, api.SessionBatch, 1000, 1, at(7)).Session,
		newSession("s9", sessionKey, api.SessionInteractive, 500, 2, at(7)).Session,
	}})
	cmds = append(cmds, usageEntries(base)...)
	cmds = append(cmds, UsageRecalculate{}) // finds nothing: usage cannot drift through the log
	cmds = append(cmds, TokensExpire{Now: at(users / 2)}, TokenDelete{Hash: "h1"}, MemberDelete{ID: "m2"},
		KeypairPut{Keypair: state.Keypair{AccessKey: "AKNOBODY00000000000", User: "nobody@x.io", ResourcePolicy: "default"}})
	var log [][]byte
	for _, c := range cmds {
		b, err := Encode(c)
		if err != nil {
			t.Fatal(err)
		}
		log = append(log, b)
	}
	return log
}

func applyAll(t *testing.T, f *FSM, log [][]byte) (refused int) {
	t.Helper()
	for i, e := range log {
		if r := f.ApplyEntry(uint64(i+1), e); r.Err != nil {
			var ae *apierr.Error
			if !asAPIErr(r.Err, &ae) {
				t.Fatalf("entry %d failed with a non-rule error: %v", i+1, r.Err)
			}
			refused++
		}
	}
	return refused
}

func asAPIErr(err error, target **apierr.Error) bool {
	e, ok := err.(*apierr.Error)
	if ok {
		*target = e
	}
	return ok
}

func TestSameLogGivesIdenticalStateOnTwoFSMs(t *testing.T) {
	log := testLog(t, 7, 400)
	a, b := newTestFSM(), newTestFSM()
	refusedA := applyAll(t, a, log)
	refusedB := applyAll(t, b, log)
	if refusedA == 0 {
		t.Fatal("the log must contain entries the FSM refuses, or the test proves less than it claims")
	}
	if refusedA != refusedB {
		t.Fatalf("refused %d vs %d entries", refusedA, refusedB)
	}
	da, db := dump(t, a), dump(t, b)
	for _, tb := range state.Tables() {
		if da[tb.Name] != db[tb.Name] {
			t.Errorf("table %s differs between the two FSMs", tb.Name)
		}
		if da[tb.Name] == "null" {
			t.Errorf("table %s is empty: the test log must write every table", tb.Name)
		}
	}
}

type bufferSink struct {
	bytes.Buffer
	cancelled bool
}

func (s *bufferSink) ID() string    { return "test" }
func (s *bufferSink) Cancel() error { s.cancelled = true; return nil }
func (s *bufferSink) Close() error  { return nil }

func TestSnapshotRestoreReproducesEveryTable(t *testing.T) {
	f := newTestFSM()
	applyAll(t, f, testLog(t, 11, 300))
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	// Writes after the snapshot was taken must not leak into it.
	before := dump(t, f)
	applyAll(t, f, testLog(t, 12, 50)[4:])
	sink := &bufferSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	restored := newTestFSM()
	applyAll(t, restored, testLog(t, 13, 20)) // restore must replace, not merge
	if err := restored.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	after := dump(t, restored)
	for _, tb := range state.Tables() {
		if before[tb.Name] != after[tb.Name] {
			t.Errorf("table %s differs after snapshot and restore:\n before %.300s\n after  %.300s", tb.Name, before[tb.Name], after[tb.Name])
		}
	}
}

// A state restored from a snapshot persists to the same bytes, and goes on
// as the state it was taken from: the same entries applied to both give
// the same snapshot again. The records of the sessions, users and
// keypairs are kept outside go-memdb (state/trees.go); their order, and
// the indexes and counts derived on restore, must not depend on how the
// state was built.
func TestARestoredStatePersistsByteIdentically(t *testing.T) {
	for _, seed := range []uint64{11, 21} {
		f := newTestFSM()
		applyAll(t, f, testLog(t, seed, 300))
		written := snapshotBytes(t, f)
		restored := newTestFSM()
		if err := restored.Restore(io.NopCloser(bytes.NewReader(written))); err != nil {
			t.Fatal(err)
		}
		if again := snapshotBytes(t, restored); !bytes.Equal(again, written) {
			t.Fatalf("seed %d: the restored state persists to %d bytes that differ from the %d it was restored from", seed, len(again), len(written))
		}
		more := testLog(t, seed+1, 50)[4:]
		applyAll(t, f, more)
		applyAll(t, restored, more)
		if a, b := snapshotBytes(t, f), snapshotBytes(t, restored); !bytes.Equal(a, b) || bytes.Equal(a, written) {
			t.Fatalf("seed %d: after the same entries the restored state differs from the original (or the entries changed nothing)", seed)
		}
	}
}

func TestRestoreRefusesCorruptSnapshots(t *testing.T) {
	f := newTestFSM()
	applyAll(t, f, testLog(t, 3, 10))
	snap, _ := f.Snapshot()
	sink := &bufferSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	good := sink.Bytes()
	cases := map[string][]byte{
		"bad magic":       append([]byte("NOTBERTH"), good[8:]...),
		"truncated":       good[:len(good)-3],
		"unknown table":   append(append([]byte{}, good...), 99, 0, 0, 0, 2, '{', '}'),
		"oversize record": append(append([]byte{}, good...), 1, 0xff, 0xff, 0xff, 0xff),
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			g := newTestFSM()
			if err := g.Restore(io.NopCloser(bytes.NewReader(data))); err == nil {
				t.Fatal("restore accepted a corrupt snapshot")
			}
		})
	}
}

func TestUnknownEntryTypes(t *testing.T) {
	f := newTestFSM()
	if r := f.ApplyEntry(1, []byte{byte(IgnoreUnknown | 0x7f), '{', '}'}); r.Err != nil {
		t.Fatalf("an unknown entry marked ignorable must be skipped, got %v", r.Err)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("an unknown entry without the ignore bit must stop the node")
		}
	}()
	f.ApplyEntry(2, []byte{0x7f, '{', '}'})
}

func TestFailedEntryLeavesNothingHalfWritten(t *testing.T) {
	f := newTestFSM()
	applyAll(t, f, testLog(t, 5, 0))
	before := dump(t, f)
	// The user is new but the policy does not exist: neither may be written.
	e, _ := Encode(UserCreate{
		User:    state.User{Email: "new@x.io", Username: "new", Domain: "default", Status: api.StatusActive},
		Keypair: state.Keypair{AccessKey: "AKNEW00000000000000", User: "new@x.io", ResourcePolicy: "missing"},
	})
	r := f.ApplyEntry(100, e)
	if !apierr.Is(r.Err, apierr.Invalid) {
		t.Fatalf("want invalid, got %v", r.Err)
	}
	if after := dump(t, f); after[("users")] != before["users"] || after["keypairs"] != before["keypairs"] {
		t.Fatal("a refused entry changed the state")
	}
}

func TestEveryObjectCarriesItsRaftIndexes(t *testing.T) {
	f := newTestFSM()
	applyAll(t, f, testLog(t, 5, 0))
	e, _ := Encode(UserUpdate{Email: "admin@x.io", ModifiedAt: time.Now(), FullName: new(string)})
	f.ApplyEntry(50, e)
	u, _ := f.State().Read().User("admin@x.io")
	if u.CreateIndex != 1 || u.ModifyIndex != 50 {
		t.Fatalf("create/modify index = %d/%d, want 1/50", u.CreateIndex, u.ModifyIndex)
	}
	if f.Apply(&raft.Log{Index: 51, Type: raft.LogNoop}) != nil || f.AppliedIndex() != 51 {
		t.Fatal("non-command entries must be acknowledged and advance the applied index")
	}
}
