package state

import (
	"encoding/json"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/slots"
)

// What a record costs the manager, part by part: the record as the FSM
// keeps it (decoded from its entry, then compacted), and each index of its
// table on its own. BenchmarkMemoryPerRecord (manager/fsm) measures the
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

// indexOnly inserts the records into a table that has the id index and the
// named one, and returns the database.
func indexOnly(table Table, index string, objs []any) *memdb.MemDB {
	idx := map[string]*memdb.IndexSchema{"id": table.schema.Indexes["id"]}
	if index != "id" {
		idx[index] = table.schema.Indexes[index]
	}
	db, err := memdb.NewMemDB(&memdb.DBSchema{Tables: map[string]*memdb.TableSchema{table.Name: {Name: table.Name, Indexes: idx}}})
	if err != nil {
		panic(err)
	}
	for _, o := range objs {
		tx := db.Txn(true)
		if err := tx.Insert(table.Name, o); err != nil {
			panic(err)
		}
		tx.Commit()
	}
	return db
}

func BenchmarkMemoryBreakdown(b *testing.B) {
	const n = 20000
	now := time.Now().UTC()
	st := New()
	sessions := func() []any {
		tx := st.Write()
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
	for _, index := range slices.Sorted(maps.Keys(sessionsTable().schema.Indexes)) {
		b.Run("session/index:"+index, func(b *testing.B) {
			for range b.N {
				base := liveHeap()
				id := indexOnly(sessionsTable(), "id", ss)
				withID := liveHeap()
				var db *memdb.MemDB
				if index != "id" {
					db = indexOnly(sessionsTable(), index, ss)
				}
				both := liveHeap()
				runtime.KeepAlive(id)
				runtime.KeepAlive(db)
				cost := withID - base
				if index != "id" {
					cost = both - withID - (withID - base)
				}
				b.ReportMetric(float64(int64(cost))/n, "B/session")
			}
		})
	}
	var us, ks []any
	b.Run("user/record", func(b *testing.B) {
		for range b.N {
			perRecord(b, n, "user", func() any { us, ks = users(); return [][]any{us, ks} })
		}
	})
	for _, t := range []struct {
		table Table
		objs  *[]any
	}{{usersTable(), &us}, {keypairsTable(), &ks}} {
		for _, index := range slices.Sorted(maps.Keys(t.table.schema.Indexes)) {
			b.Run(t.table.Name+"/index:"+index, func(b *testing.B) {
				for range b.N {
					base := liveHeap()
					id := indexOnly(t.table, "id", *t.objs)
					withID := liveHeap()
					var db *memdb.MemDB
					if index != "id" {
						db = indexOnly(t.table, index, *t.objs)
					}
					both := liveHeap()
					runtime.KeepAlive(id)
					runtime.KeepAlive(db)
					cost := withID - base
					if index != "id" {
						cost = both - withID - (withID - base)
					}
					b.ReportMetric(float64(int64(cost))/n, "B/user")
				}
			})
		}
	}
}
