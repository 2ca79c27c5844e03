package quota

import (
	"encoding/json"
	"testing"

	"github.com/berth-cluster/berth/shared/slots"
)

const gib = int64(1) << 30

func wire(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The expectations are the wire JSON (keys sorted: cpu, cuda.device,
// cuda.shares, mem), so decimals and byte counts are checked as clients see them.
func TestComputeIndicatorFigures(t *testing.T) {
	node := slots.Slots{slots.CPU: 8000, slots.Mem: 16 * gib, slots.CUDAShares: 200}
	tests := []struct {
		name                                         string
		limits                                       slots.Limits
		occupied                                     slots.Slots
		agents                                       []Agent
		remaining, total, free, largest, allocatable string
	}{
		{
			name:        "unlimited policy and no agents: nothing anywhere",
			remaining:   `{"cpu":null,"cuda.device":null,"cuda.shares":null,"mem":null}`,
			total:       `{"cpu":0,"cuda.device":0,"cuda.shares":0,"mem":0}`,
			free:        `{"cpu":0,"cuda.device":0,"cuda.shares":0,"mem":0}`,
			largest:     `{"cpu":0,"cuda.device":0,"cuda.shares":0,"mem":0}`,
			allocatable: `{"cpu":0,"cuda.device":0,"cuda.shares":0,"mem":0}`,
		},
		{
			name:        "unlimited policy shows what the node holds",
			agents:      []Agent{{Capacity: node, Alive: true, Schedulable: true}},
			remaining:   `{"cpu":null,"cuda.device":null,"cuda.shares":null,"mem":null}`,
			total:       `{"cpu":8,"cuda.device":0,"cuda.shares":2,"mem":17179869184}`,
			free:        `{"cpu":8,"cuda.device":0,"cuda.shares":2,"mem":17179869184}`,
			largest:     `{"cpu":8,"cuda.device":0,"cuda.shares":2,"mem":17179869184}`,
			allocatable: `{"cpu":8,"cuda.device":0,"cuda.shares":2,"mem":17179869184}`,
		},
		{
			name:        "limited policy under the node shows the limits (the manual's 2 CPU, 4 GiB, 1 fGPU)",
			limits:      slots.Limits{slots.CPU: 2000, slots.Mem: 4 * gib, slots.CUDAShares: 100},
			agents:      []Agent{{Capacity: node, Alive: true, Schedulable: true}},
			remaining:   `{"cpu":2,"cuda.device":null,"cuda.shares":1,"mem":4294967296}`,
			total:       `{"cpu":8,"cuda.device":0,"cuda.shares":2,"mem":17179869184}`,
			free:        `{"cpu":8,"cuda.device":0,"cuda.shares":2,"mem":17179869184}`,
			largest:     `{"cpu":8,"cuda.device":0,"cuda.shares":2,"mem":17179869184}`,
			allocatable: `{"cpu":2,"cuda.device":0,"cuda.shares":1,"mem":4294967296}`,
		},
		{
			name:     "partially occupied, decimal cpu and cuda.shares, mem in bytes",
			limits:   slots.Limits{slots.CPU: 2500, slots.Mem: 4 * gib, slots.CUDAShares: 75},
			occupied: slots.Slots{slots.CPU: 1500, slots.Mem: gib + 1, slots.CUDAShares: 25},
			agents: []Agent{{Capacity: node, Occupied: slots.Slots{slots.CPU: 7500, slots.Mem: 2 * gib, slots.CUDAShares: 125},
				Alive: true, Schedulable: true}},
			remaining:   `{"cpu":1,"cuda.device":null,"cuda.shares":0.5,"mem":3221225471}`,
			total:       `{"cpu":8,"cuda.device":0,"cuda.shares":2,"mem":17179869184}`,
			free:        `{"cpu":0.5,"cuda.device":0,"cuda.shares":0.75,"mem":15032385536}`,
			largest:     `{"cpu":0.5,"cuda.device":0,"cuda.shares":0.75,"mem":15032385536}`,
			allocatable: `{"cpu":0.5,"cuda.device":0,"cuda.shares":0.5,"mem":3221225471}`,
		},
		{
			name:     "over the limit (policy lowered under running sessions) leaves zero, never negative",
			limits:   slots.Limits{slots.CPU: 1000, slots.CUDADevice: 0},
			occupied: slots.Slots{slots.CPU: 3000, slots.CUDADevice: 1},
			agents: []Agent{{Capacity: slots.Slots{slots.CPU: 2000, slots.CUDADevice: 1},
				Occupied: slots.Slots{slots.CPU: 3000, slots.CUDADevice: 1}, Alive: true, Schedulable: true}},
			remaining:   `{"cpu":0,"cuda.device":0,"cuda.shares":null,"mem":null}`,
			total:       `{"cpu":2,"cuda.device":1,"cuda.shares":0,"mem":0}`,
			free:        `{"cpu":0,"cuda.device":0,"cuda.shares":0,"mem":0}`,
			largest:     `{"cpu":0,"cuda.device":0,"cuda.shares":0,"mem":0}`,
			allocatable: `{"cpu":0,"cuda.device":0,"cuda.shares":0,"mem":0}`,
		},
		{
			name:   "largest agent free is per slot, lost agents count nowhere, unschedulable ones only in the totals",
			limits: slots.Limits{slots.CUDADevice: 3},
			agents: []Agent{
				{Capacity: slots.Slots{slots.CPU: 16000, slots.Mem: 8 * gib}, Alive: true, Schedulable: true},
				{Capacity: slots.Slots{slots.CPU: 4000, slots.Mem: 32 * gib, slots.CUDADevice: 4},
					Occupied: slots.Slots{slots.CUDADevice: 2}, Alive: true, Schedulable: true},
				{Capacity: slots.Slots{slots.CPU: 64000, slots.Mem: 64 * gib}, Alive: true, Schedulable: false},
				{Capacity: slots.Slots{slots.CPU: 128000, slots.CUDADevice: 8}, Alive: false, Schedulable: true},
			},
			remaining:   `{"cpu":null,"cuda.device":3,"cuda.shares":null,"mem":null}`,
			total:       `{"cpu":84,"cuda.device":4,"cuda.shares":0,"mem":111669149696}`,
			free:        `{"cpu":84,"cuda.device":2,"cuda.shares":0,"mem":111669149696}`,
			largest:     `{"cpu":16,"cuda.device":2,"cuda.shares":0,"mem":34359738368}`,
			allocatable: `{"cpu":16,"cuda.device":2,"cuda.shares":0,"mem":34359738368}`,
		},
		{
			// Four GPUs: one given whole, one with 0.3 taken, two untouched.
			// Free cuda.shares sums what no slice holds; one container could
			// get the two untouched GPUs whole, or the 0.7 left on the third,
			// never both: a fraction of a GPU is never held beside other
			// GPUs (sched's allocate), so 2.7 would be refused.
			name:   "an agent's GPUs decide its GPU slots, not capacity minus occupied",
			limits: slots.Limits{slots.CUDAShares: 500},
			agents: []Agent{{Capacity: slots.Slots{slots.CPU: 8000, slots.CUDADevice: 4, slots.CUDAShares: 400},
				Occupied: slots.Slots{slots.CUDADevice: 1, slots.CUDAShares: 30}, Alive: true, Schedulable: true,
				GPUs: []GPU{{Shares: 100, Held: 100}, {Shares: 100, Held: 30}, {Shares: 100}, {Shares: 100}}}},
			remaining:   `{"cpu":null,"cuda.device":null,"cuda.shares":5,"mem":null}`,
			total:       `{"cpu":8,"cuda.device":4,"cuda.shares":4,"mem":0}`,
			free:        `{"cpu":8,"cuda.device":2,"cuda.shares":2.7,"mem":0}`,
			largest:     `{"cpu":8,"cuda.device":2,"cuda.shares":2,"mem":0}`,
			allocatable: `{"cpu":8,"cuda.device":2,"cuda.shares":2,"mem":0}`,
		},
		{
			name: "a partly held GPU's rest is the largest slice when no GPU is untouched",
			agents: []Agent{{Capacity: slots.Slots{slots.CPU: 8000, slots.CUDADevice: 2, slots.CUDAShares: 200},
				Occupied: slots.Slots{slots.CUDAShares: 140}, Alive: true, Schedulable: true,
				GPUs: []GPU{{Shares: 100, Held: 90}, {Shares: 100, Held: 50}}}},
			remaining:   `{"cpu":null,"cuda.device":null,"cuda.shares":null,"mem":null}`,
			total:       `{"cpu":8,"cuda.device":2,"cuda.shares":2,"mem":0}`,
			free:        `{"cpu":8,"cuda.device":0,"cuda.shares":0.6,"mem":0}`,
			largest:     `{"cpu":8,"cuda.device":0,"cuda.shares":0.5,"mem":0}`,
			allocatable: `{"cpu":8,"cuda.device":0,"cuda.shares":0.5,"mem":0}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := Compute(tt.limits, tt.occupied, tt.agents)
			for _, c := range []struct {
				what string
				got  any
				want string
			}{
				{"remaining", f.Remaining, tt.remaining},
				{"total", f.Total, tt.total},
				{"free", f.Free, tt.free},
				{"largest_agent_free", f.LargestAgentFree, tt.largest},
				{"allocatable", f.Allocatable, tt.allocatable},
			} {
				if got := wire(t, c.got); got != c.want {
					t.Errorf("%s = %s, want %s", c.what, got, c.want)
				}
			}
		})
	}
}

func TestComputeDoesNotChangeItsInputs(t *testing.T) {
	limits := slots.Limits{slots.CPU: 2000}
	occupied := slots.Slots{slots.CPU: 500}
	agents := []Agent{{Capacity: slots.Slots{slots.CPU: 4000}, Occupied: slots.Slots{slots.CPU: 1000}, Alive: true, Schedulable: true}}
	Compute(limits, occupied, agents)
	if limits[slots.CPU] != 2000 || occupied[slots.CPU] != 500 || agents[0].Capacity[slots.CPU] != 4000 || agents[0].Occupied[slots.CPU] != 1000 {
		t.Fatal("Compute changed its inputs")
	}
}
