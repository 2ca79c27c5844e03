package fsm

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
)

// heapAfterGC is the live heap once garbage is collected.
func heapAfterGC() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkMemoryPerRecord is what the manager's state holds per user
// (with its first keypair, as POST /v1/users makes them) and per session
// record: the live heap after applying n of them, less the heap before,
// divided by n. Every manager holds all of it.
func BenchmarkMemoryPerRecord(b *testing.B) {
	const n = 20000
	now := time.Now().UTC()
	b.Run("user+keypair", func(b *testing.B) {
		for range b.N {
			f := newTestFSM()
			index := uint64(0)
			for _, e := range testLog(b, 1, 0)[:1] { // the first-start objects
				index++
				f.ApplyEntry(index, e)
			}
			before := heapAfterGC()
			for i := range n {
				email := fmt.Sprintf("user%06d@example.com", i)
				e, _ := Encode(UserCreate{User: state.User{Email: email, Username: fmt.Sprintf("user%06d", i),
					FullName: fmt.Sprintf("User Number %d", i), PasswordHash: "$argon2id$v=19$m=65536,t=1,p=2$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
					Role: api.RoleUser, Status: api.StatusActive, Domain: "default", Groups: []string{"default"}, CreatedAt: now, ModifiedAt: now},
					Keypair: state.Keypair{AccessKey: fmt.Sprintf("AK%018d", i), SecretKey: "0123456789012345678901234567890123456789",
						User: email, IsActive: true, ResourcePolicy: "default", CreatedAt: now}})
				index++
				if r := f.ApplyEntry(index, e); r.Err != nil {
					b.Fatal(r.Err)
				}
			}
			after := heapAfterGC()
			runtime.KeepAlive(f)
			b.ReportMetric(float64(after-before)/n, "B/user")
		}
	})
	b.Run("session", func(b *testing.B) {
		for range b.N {
			f, index := benchSessionFSM(b)
			entries := benchCreates(b, n)
			before := heapAfterGC()
			for _, e := range entries {
				*index++
				if r := f.ApplyEntry(*index, e); r.Err != nil {
					b.Fatal(r.Err)
				}
			}
			after := heapAfterGC()
			// The entries were allocated before the first reading: they
			// must live until the second, or their bytes are subtracted
			// from the records'.
			runtime.KeepAlive(entries)
			runtime.KeepAlive(f)
			b.ReportMetric(float64(after-before)/n, "B/session")
		}
	})
}
