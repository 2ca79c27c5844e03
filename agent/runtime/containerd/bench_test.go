package containerd

import (
	"context"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/berth-cluster/berth/agent/testenv"
)

// minSamples is how many create→running measurements each side gets at
// least, whatever b.N is: the median needs enough of them to mean anything.
const minSamples = 20

// BenchmarkRunToRunning measures create → running through Runtime.Run and,
// for scale, through `ctr run -d` on the same containerd and image. Each
// reports the median in ms; the ratio Runtime/ctr is logged and reported
// with the ctr side. Removing the container between samples is not timed.
func BenchmarkRunToRunning(b *testing.B) {
	e := newEnv(b, true)
	rt := e.runtime(b)
	ctx := context.Background()
	var runtimeMedian, ctrMedian float64

	b.Run("runtime", func(b *testing.B) {
		runtimeMedian = sample(b, rt, func(id string) error {
			_, err := rt.Run(ctx, baseSpec(id, "sleep", "300"))
			return err
		})
	})
	b.Run("ctr", func(b *testing.B) {
		runc := filepath.Join(filepath.Dir(e.socket), "runc")
		ctrMedian = sample(b, rt, func(id string) error {
			// -d returns once the task is started, as Run does.
			out, err := exec.Command("ctr", "--address", e.socket, "--namespace", e.ns,
				"run", "-d", "--runc-root", runc, testenv.BaseImageName, id, "sleep", "300").CombinedOutput()
			if err != nil {
				return &ctrError{err: err, out: string(out)}
			}
			return nil
		})
		if runtimeMedian > 0 && ctrMedian > 0 {
			b.ReportMetric(runtimeMedian/ctrMedian, "runtime/ctr")
		}
	})
	if runtimeMedian > 0 && ctrMedian > 0 {
		b.Logf("create→running median: Runtime.Run %.1f ms, ctr run -d %.1f ms, ratio %.2f",
			runtimeMedian, ctrMedian, runtimeMedian/ctrMedian)
	}
}

// sample times start(id) for max(b.N, minSamples) fresh ids, removing each
// container untimed, and reports and returns the median in ms. Only the first
// b.N samples count towards ns/op.
func sample(b *testing.B, rt *Runtime, start func(id string) error) float64 {
	b.Helper()
	return sampleWith(b, start, func(id string) error { return rt.Remove(context.Background(), id) })
}

// sampleWith is sample with its own untimed removal.
func sampleWith(b *testing.B, start, remove func(id string) error) float64 {
	b.Helper()
	b.StopTimer()
	n := max(b.N, minSamples)
	samples := make([]float64, 0, n)
	for i := range n {
		id := "bench-" + strconv.Itoa(i)
		timed := i < b.N
		if timed {
			b.StartTimer()
		}
		t0 := time.Now()
		err := start(id)
		d := time.Since(t0)
		if timed {
			b.StopTimer()
		}
		if err != nil {
			b.Fatalf("start %s: %v", id, err)
		}
		samples = append(samples, float64(d.Microseconds())/1000)
		if err := remove(id); err != nil {
			b.Fatalf("remove %s: %v", id, err)
		}
	}
	slices.Sort(samples)
	median := samples[len(samples)/2]
	if len(samples)%2 == 0 {
		median = (samples[len(samples)/2-1] + samples[len(samples)/2]) / 2
	}
	b.ReportMetric(median, "median-ms")
	return median
}

type ctrError struct {
	err error
	out string
}

func (e *ctrError) Error() string { return e.err.Error() + ": " + e.out }
