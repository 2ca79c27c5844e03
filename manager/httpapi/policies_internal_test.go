package httpapi

import (
	"testing"
	"time"

	"github.com/berth-cluster/berth/manager/apierr"
	"github.com/berth-cluster/berth/shared/slots"
)

// FuzzPolicyDecode feeds the policy request decoder arbitrary bodies: it
// must never panic, must refuse only with a validation error, and whatever
// it accepts must be within every maximum.
func FuzzPolicyDecode(f *testing.F) {
	for _, s := range []string{
		`{"name":"p"}`,
		`{"name":"p","total_resource_slots":{"cpu":2.5,"mem":4294967296,"cuda.device":null,"cuda.shares":0.25}}`,
		`{"name":"p","total_resource_slots":null,"max_concurrent_sessions":null,"max_session_lifetime":0}`,
		`{"name":"p","total_resource_slots":{"cpu":1e999999,"mem":-1e-999999}}`,
		`{"name":"p","allowed_vfolder_hosts":["a","a",""],"max_vfolder_size":1099511627776}`,
		`{"name":"..","max_containers_per_session":"1","idle_timeout":1.5,"x":1}`,
		`{"idle_timeout":15552000,"max_vfolder_count":50}`,
		`[]`, `null`, ``, `{"name":"p"} {}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, path := range []string{"", "p"} {
			b, err := decodePolicyBody(body, path)
			if err != nil {
				if !apierr.Is(err, apierr.Invalid) {
					t.Fatalf("decode error is not a validation error: %v", err)
				}
				continue
			}
			if path != "" {
				if _, err := b.update(path, time.Unix(0, 0)); err != nil && !apierr.Is(err, apierr.Invalid) {
					t.Fatalf("update error is not a validation error: %v", err)
				}
				if b.Name != nil && *b.Name != path {
					t.Fatalf("accepted a rename to %q", *b.Name)
				}
				// The values a PATCH sets are checked as a create's are.
				b.Name = &path
			}
			p := b.newPolicy(time.Unix(0, 0))
			if p.Name == "" || !policyNameChars(p.Name) || len(p.Name) > maxNameLen {
				t.Fatalf("accepted the name %q", p.Name)
			}
			maxima := slots.Limits{slots.CPU: policyMaxCPU * 1000, slots.Mem: policyMaxMemGiB << 30,
				slots.CUDADevice: policyMaxGPUs, slots.CUDAShares: policyMaxShares * 100}
			for n, v := range p.TotalResourceSlots {
				if lim, known := maxima[n]; !known || v < 0 || v > lim {
					t.Fatalf("accepted %s = %d", n, v)
				}
			}
			if p.MaxContainersPerSession < 1 || p.MaxContainersPerSession > policyMaxContainers ||
				p.IdleTimeout < 0 || p.IdleTimeout > policyMaxIdleTimeout ||
				p.MaxVfolderCount < 0 || p.MaxVfolderCount > policyMaxVfolderCount ||
				(p.MaxConcurrentSessions != nil && (*p.MaxConcurrentSessions < 1 || *p.MaxConcurrentSessions > policyMaxConcurrent)) ||
				(p.MaxSessionLifetime != nil && *p.MaxSessionLifetime < 0) ||
				(p.MaxVfolderSize != nil && (*p.MaxVfolderSize < 0 || *p.MaxVfolderSize > policyMaxVfolderSize)) ||
				p.AllowedVfolderHosts == nil {
				t.Fatalf("accepted a policy out of bounds: %+v", p.ResourcePolicy)
			}
		}
	})
}
