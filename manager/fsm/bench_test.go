package fsm

import (
	"fmt"
	"testing"
	"time"

	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
)

// BenchmarkApplyUserCreate measures the FSM side of creating a user with its
// keypair (uniqueness checks, two inserts, commit).
func BenchmarkApplyUserCreate(b *testing.B) {
	f := newTestFSM()
	for i, e := range testLog(b, 1, 0) {
		f.ApplyEntry(uint64(i+1), e)
	}
	entries := make([][]byte, b.N)
	now := time.Now()
	for i := range entries {
		email := fmt.Sprintf("bench%d@x.io", i)
		entries[i], _ = Encode(UserCreate{
			User:    state.User{Email: email, Username: fmt.Sprintf("bench%d", i), Role: api.RoleUser, Status: api.StatusActive, Domain: "default", CreatedAt: now},
			Keypair: state.Keypair{AccessKey: fmt.Sprintf("AK%018d", i+1000), User: email, IsActive: true, ResourcePolicy: "default", CreatedAt: now},
		})
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if r := f.ApplyEntry(uint64(i+100), entries[i]); r.Err != nil {
			b.Fatal(r.Err)
		}
	}
}

// BenchmarkSnapshot100kUsers measures persisting a snapshot of 100,000 users.
func BenchmarkSnapshot100kUsers(b *testing.B) {
	f := newTestFSM()
	for i, e := range testLog(b, 1, 0) {
		f.ApplyEntry(uint64(i+1), e)
	}
	now := time.Now()
	for i := 0; i < 100000; i++ {
		email := fmt.Sprintf("bench%d@x.io", i)
		e, _ := Encode(UserCreate{
			User:    state.User{Email: email, Username: fmt.Sprintf("bench%d", i), Role: api.RoleUser, Status: api.StatusActive, Domain: "default", CreatedAt: now},
			Keypair: state.Keypair{AccessKey: fmt.Sprintf("AK%018d", i+1000), User: email, IsActive: true, ResourcePolicy: "default", CreatedAt: now},
		})
		f.ApplyEntry(uint64(i+100), e)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		snap, _ := f.Snapshot()
		sink := &bufferSink{}
		if err := snap.Persist(sink); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(sink.Len()))
	}
}
