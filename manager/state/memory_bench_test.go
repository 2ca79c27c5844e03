package state

import (
	"encoding/json"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/slots"
)

// What a record costs the manager, part by part: the record as the FSM
// keeps it (decoded from its entry, then compacted), and each index of its
// table on its own (trees.go). BenchmarkMemoryPerRecord (manager/fsm) measures the
// whole through Apply; this says where it goes (docs/BENCHMARKS.md).

func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// decoded is v as Apply gets it: encoded into an entry and decoded again.
func decoded[T any](b *testing.B, v *T) *T {
	raw, err := json.Marshal(v)
	if err != nil {
		b.Fatal(err)
	}
	out := new(T)
	if err := json.Unmarshal(raw, out); err != nil {
		b.Fatal(err)
	}
	return out
}

// perRecord reports the live heap make adds per record, keeping what it
// returns alive.
func perRecord(b *testing.B, n int, what string, make func() any) {
	before := liveHeap()
	kept := make()
	after := liveHeap()
	runtime.KeepAlive(kept)
	b.ReportMetric(float64(int64(after)-int64(before))/float64(n), "B/"+what)
}

// indexCost reports the live heap one index adds per record: a fresh
// set of trees with only that index filled with the records.
func indexCost(b *testing.B, n int, what string, fill func(*trees)) {
	for range b.N {
		tr := newTrees()
		before := liveHeap()
		fill(tr)
		after := liveHeap()
		runtime.KeepAlive(tr)
		b.ReportMetric(float64(int64(after)-int64(before))/float64(n), "B/"+what)
	}
}

func BenchmarkMemoryBreakdown(b *testing.B) {
	const n = 20000
	now := time.Now().UTC()
	st := New()
	// The sessions' keypair and owner, whose strings they share.
	setup := st.Write()
	if err := setup.PutUser(1, &User{Email: "user000001@example.com", Username: "user000001"}); err != nil {
		b.Fatal(err)
	}
	if err := setup.PutKeypair(2, &Keypair{AccessKey: "AK000000000000000001", User: "user000001@example.com"}); err != nil {
		b.Fatal(err)
	}
	setup.Commit()
	sessions := func() []any {
		tx := st.Write()
		defer tx.Abort()
		out := make([]any, n)
		for i := range out {
			s := decoded(b, &Session{ID: fmt.Sprintf("s-%012d", i), Name: fmt.Sprintf("job-%d", i), AccessKey: "AK000000000000000001",
				Owner: "user000001@example.com", Domain: "default", Image: "berth/base:latest", Type: api.SessionBatch,
				ClusterSize: 1, Requested: slots.Slots{slots.CPU: 100, slots.Mem: 1 << 30}, CreatedAt: now, Status: api.SessionPending,
				StatusHistory: []api.StatusChange{{Status: api.SessionPending, At: now, Reason: "created"}}})
			s.CreateIndex = uint64(i + 1)
			tx.compactSession(s)
			out[i] = s
		}
		return out
	}
	users := func() ([]any, []any) {
		tx := st.Write()
		defer tx.Abort()
		us, ks := make([]any, n), make([]any, n)
		for i := range us {
			email := fmt.Sprintf("user%06d@example.com", i)
			u := decoded(b, &User{Email: email, Username: fmt.Sprintf("user%06d", i), FullName: fmt.Sprintf("User Number %d", i),
				PasswordHash: "$argon2id$v=19$m=65536,t=1,p=2$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
				Role:         api.RoleUser, Status: api.StatusActive, Domain: "default", Groups: []string{"default"}, CreatedAt: now, ModifiedAt: now})
			u.CreateIndex = uint64(2*i + 1)
			k := decoded(b, &Keypair{AccessKey: fmt.Sprintf("AK%018d", i), SecretKey: "0123456789012345678901234567890123456789",
				User: email, IsActive: true, ResourcePolicy: "default", CreatedAt: now})
			k.CreateIndex = uint64(2*i + 2)
			// Compacted as PutUser and PutKeypair do; the keypair's
			// user is its owner's email string (the user is not stored
			// here for compactKeypair to find).
			tx.compactUser(u)
			tx.compactKeypair(k)
			k.User = u.Email
			us[i], ks[i] = u, k
		}
		return us, ks
	}
	var ss []any
	b.Run("session/record", func(b *testing.B) {
		for range b.N {
			perRecord(b, n, "session", func() any { ss = sessions(); return ss })
		}
	})
	each := func(objs []any, f func(any)) func(*trees) {
		return func(*trees) {
			for _, o := range objs {
				f(o)
			}
		}
	}
	for _, ix := range []struct {
		name string
		fill func(*trees)
	}{
		{"id", func(tr *trees) { each(ss, func(o any) { tr.sessions.ReplaceOrInsert(o.(*Session)) })(tr) }},
		{"newest", func(tr *trees) { each(ss, func(o any) { tr.sessionsNewest.ReplaceOrInsert(o.(*Session)) })(tr) }},
		{"status", func(tr *trees) { each(ss, func(o any) { tr.sessionsLive.ReplaceOrInsert(o.(*Session)) })(tr) }},
	} {
		b.Run("session/index:"+ix.name, func(b *testing.B) { indexCost(b, n, "session", ix.fill) })
	}
	var us, ks []any
	b.Run("user/record", func(b *testing.B) {
		for range b.N {
			perRecord(b, n, "user", func() any { us, ks = users(); return [][]any{us, ks} })
		}
	})
	for _, ix := range []struct {
		name string
		fill func(*trees)
	}{
		{"users/index:id", func(tr *trees) {
			each(us, func(o any) { tr.users.ReplaceOrInsert(o.(*User)) })(tr)
		}},
		{"users/index:username", func(tr *trees) {
			each(us, func(o any) { tr.usersByName.ReplaceOrInsert(o.(*User)) })(tr)
		}},
		{"users/index:newest", func(tr *trees) {
			each(us, func(o any) { tr.usersNewest.ReplaceOrInsert(o.(*User)) })(tr)
		}},
		{"keypairs/index:id", func(tr *trees) {
			each(ks, func(o any) { tr.keypairs.ReplaceOrInsert(o.(*Keypair)) })(tr)
		}},
		{"keypairs/index:user", func(tr *trees) {
			each(ks, func(o any) { tr.keypairsOfUser.ReplaceOrInsert(o.(*Keypair)) })(tr)
		}},
	} {
		b.Run(ix.name, func(b *testing.B) { indexCost(b, n, "user", ix.fill) })
	}
}
