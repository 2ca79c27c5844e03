package fsm

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/slots"
)

// benchSessionFSM is an FSM with 100 agents and sessionKey on an unlimited
// policy.
func benchSessionFSM(b *testing.B) (*FSM, *uint64) {
	f := newTestFSM()
	for i, e := range testLog(b, 1, 0)[:1] {
		f.ApplyEntry(uint64(i+1), e)
	}
	index := uint64(10)
	cmds := []Command{
		PolicyCreate{Policy: state.ResourcePolicy{ResourcePolicy: api.ResourcePolicy{Name: "open", MaxContainersPerSession: 4}}},
		KeypairPut{Keypair: state.Keypair{AccessKey: sessionKey, User: "admin@x.io", IsActive: true, ResourcePolicy: "open"}},
	}
	for i := range 100 {
		cmds = append(cmds, AgentPut{Agent: state.Agent{ID: fmt.Sprintf("a%03d", i), Status: state.AgentAlive, Schedulable: true,
			Capacity: slots.Slots{slots.CPU: 1 << 40, slots.Mem: 1 << 50}}})
	}
	for _, c := range cmds {
		e, _ := Encode(c)
		index++
		if r := f.ApplyEntry(index, e); r.Err != nil {
			b.Fatal(r.Err)
		}
	}
	return f, &index
}

func benchCreates(b *testing.B, n int) [][]byte {
	out := make([][]byte, n)
	now := time.Now()
	for i := range out {
		out[i], _ = Encode(newSession(fmt.Sprintf("s%08d", i), sessionKey, api.SessionBatch, 100, 1, now))
	}
	return out
}

// BenchmarkApplySessionCreate is the FSM side of one SessionCreate entry.
func BenchmarkApplySessionCreate(b *testing.B) {
	f, index := benchSessionFSM(b)
	entries := benchCreates(b, b.N)
	b.ResetTimer()
	for i := range b.N {
		*index++
		if r := f.ApplyEntry(*index, entries[i]); r.Err != nil {
			b.Fatal(r.Err)
		}
	}
}

// BenchmarkApplyPlan is the FSM side of placing one session, in plans of
// 500 placements (the per-op figure is per placement).
func BenchmarkApplyPlan(b *testing.B) {
	f, index := benchSessionFSM(b)
	for _, e := range benchCreates(b, b.N) {
		*index++
		f.ApplyEntry(*index, e)
	}
	var plans [][]byte
	for start := 0; start < b.N; start += 500 {
		p := Plan{At: time.Now()}
		for i := start; i < min(b.N, start+500); i++ {
			p.Placements = append(p.Placements, Placement{SessionID: fmt.Sprintf("s%08d", i), Containers: on(fmt.Sprintf("a%03d", i%100))})
		}
		e, _ := Encode(p)
		plans = append(plans, e)
	}
	b.ResetTimer()
	for _, e := range plans {
		*index++
		if r := f.ApplyEntry(*index, e); r.Err != nil || len(r.Value.(*PlanResult).Refused) > 0 {
			b.Fatal(r.Err, r.Value)
		}
	}
}

// BenchmarkApplySessionCreateBatched is what a SessionsCreate entry
// carrying 64 sessions would cost the FSM per session: the same applier,
// 64 sessions to one write transaction and one decode of the batch. (No
// such entry exists; this measures whether one would pay.)
func BenchmarkApplySessionCreateBatched(b *testing.B) {
	f, index := benchSessionFSM(b)
	now := time.Now()
	var batches [][]byte
	for start := 0; start < b.N; start += 64 {
		var batch []SessionCreate
		for i := start; i < min(b.N, start+64); i++ {
			batch = append(batch, newSession(fmt.Sprintf("s%08d", i), sessionKey, api.SessionBatch, 100, 1, now))
		}
		e, _ := json.Marshal(batch)
		batches = append(batches, e)
	}
	b.ResetTimer()
	for _, e := range batches {
		var batch []SessionCreate
		if err := json.Unmarshal(e, &batch); err != nil {
			b.Fatal(err)
		}
		*index++
		tx := f.State().Write()
		for i := range batch {
			if _, err := applySessionCreate(tx, *index, &batch[i]); err != nil {
				b.Fatal(err)
			}
		}
		tx.Commit()
	}
}
