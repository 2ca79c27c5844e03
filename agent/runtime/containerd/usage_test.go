package containerd

import (
	"math"
	"strings"
	"testing"

	v1 "github.com/containerd/cgroups/v3/cgroup1/stats"
	v2 "github.com/containerd/cgroups/v3/cgroup2/stats"
	"github.com/containerd/typeurl/v2"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/berth-cluster/berth/agent/runtime"
)

func TestDecodeMetrics(t *testing.T) {
	cases := map[string]struct {
		m    any
		want runtime.Usage
	}{
		"cgroup v1": {
			&v1.Metrics{
				CPU: &v1.CPUStat{Usage: &v1.CPUUsage{Total: 2_500_000_000}},
				Memory: &v1.MemoryStat{
					Usage:             &v1.MemoryEntry{Usage: 100 << 20, Limit: 64 << 20},
					TotalInactiveFile: 30 << 20,
					InactiveFile:      1, // the hierarchical total is what counts
				},
			},
			runtime.Usage{CPUSeconds: 2.5, MemoryWorkingSet: 70 << 20, MemoryLimit: 64 << 20},
		},
		"cgroup v1 no limit": {
			&v1.Metrics{Memory: &v1.MemoryStat{Usage: &v1.MemoryEntry{Usage: 10, Limit: 9223372036854771712}, TotalInactiveFile: 20}},
			runtime.Usage{MemoryWorkingSet: 0, MemoryLimit: 0},
		},
		"cgroup v2": {
			&v2.Metrics{
				CPU:    &v2.CPUStat{UsageUsec: 1_500_000},
				Memory: &v2.MemoryStat{Usage: 50 << 20, InactiveFile: 10 << 20, UsageLimit: 1 << 30},
			},
			runtime.Usage{CPUSeconds: 1.5, MemoryWorkingSet: 40 << 20, MemoryLimit: 1 << 30},
		},
		"cgroup v2 max": {
			&v2.Metrics{Memory: &v2.MemoryStat{Usage: 5, UsageLimit: math.MaxUint64}},
			runtime.Usage{MemoryWorkingSet: 5},
		},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			a, err := typeurl.MarshalAny(c.m)
			if err != nil {
				t.Fatal(err)
			}
			got, err := decodeMetrics(a)
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Errorf("usage = %+v, want %+v", got, c.want)
			}
		})
	}
}

// containerd 1.6 daemons send the type URL without a host prefix; newer ones
// and typeurl v2 may add one. Both must decode.
func TestDecodeMetricsTypeURLs(t *testing.T) {
	b, err := proto.Marshal(&v1.Metrics{CPU: &v1.CPUStat{Usage: &v1.CPUUsage{Total: 1e9}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, url := range []string{"io.containerd.cgroups.v1.Metrics", "type.googleapis.com/io.containerd.cgroups.v1.Metrics"} {
		got, err := decodeMetrics(&anypb.Any{TypeUrl: url, Value: b})
		if err != nil || got.CPUSeconds != 1 {
			t.Errorf("%s: usage %+v, err %v", url, got, err)
		}
	}
}

func TestDecodeMetricsUnknown(t *testing.T) {
	_, err := decodeMetrics(&anypb.Any{TypeUrl: "example.com/Other", Value: nil})
	if err == nil || !strings.Contains(err.Error(), "unknown metrics type") {
		t.Errorf("err = %v", err)
	}
	if _, err := decodeMetrics(nil); err == nil {
		t.Error("nil data decoded")
	}
}
