package httpapi

import (
	"slices"
	"testing"

	"github.com/berth-cluster/berth/manager/apierr"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/slots"
)

// FuzzSessionCreate feeds POST /v1/sessions bodies through the decoder and
// every static check: whatever arrives, the answer is a 400 or 422 with
// reasons, or a request with positive cpu and mem — never a panic.
func FuzzSessionCreate(f *testing.F) {
	for _, s := range []string{
		`{"image":"berth/base:latest","type":"batch","command":["sh"],"resources":{"cpu":1,"mem":1024}}`,
		`{"image":"x","type":"interactive","resources":{"cpu":3,"mem":1e300,"cuda.device":1,"cuda.shares":0.5},"cluster_size":1e9}`,
		`{"resources":{"cpu":"1","mem":null,"x":1},"cluster_size":-1,"env":{"1":"\u0000"},"mounts":["a"]}`,
		`{"resources":[]}`, `{"cluster_size":"2"}`, `{}`, `null`,
	} {
		f.Add([]byte(s))
	}
	policy := &state.ResourcePolicy{ResourcePolicy: api.ResourcePolicy{Name: "default", MaxContainersPerSession: 2,
		TotalResourceSlots: slots.Limits{slots.CPU: 2000, slots.Mem: 4 << 30}}}
	agents := []*state.Agent{{ID: "a", Status: state.AgentAlive, Schedulable: true,
		Capacity: slots.Slots{slots.CPU: 1500, slots.Mem: 2 << 30}, Images: []api.Image{{Name: "berth/base:latest"}}}}
	f.Fuzz(func(t *testing.T, body []byte) {
		var b sessionCreateBody
		if err := DecodeJSON(body, &b); err != nil {
			if !apierr.Is(err, apierr.Invalid) {
				t.Fatalf("decode error is not a validation error: %v", err)
			}
			return
		}
		req, shape := checkSessionShape(b)
		err := sessionProblems(shape, checkSessionFit(req, policy, slices.Values(agents), "AKFUZZ"))
		switch {
		case err == nil:
			if req.resources[slots.CPU] <= 0 || req.resources[slots.Mem] <= 0 || req.clusterSize < 1 || req.clusterSize > 2 {
				t.Fatalf("accepted %s as %+v", body, req)
			}
		case !apierr.Is(err, apierr.Invalid) && !apierr.Is(err, apierr.Unprocessable):
			t.Fatalf("check error is neither 400 nor 422: %v", err)
		}
	})
}
