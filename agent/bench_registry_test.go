package agent_test

import (
	"fmt"
	"net/http"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/berth-cluster/berth/agent/testenv"
	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/registrytest"
)

// pullSamples is how many pulls each side makes (the median of 5).
const pullSamples = 5

// BenchmarkPullThroughASessionVsCtr measures the ~100 MB image (the base
// image and 100 MiB more in 4 layers) from a loopback registry: from POST
// /v1/sessions to RUNNING on an agent that lacks it (create, the registry's
// HEAD, placement, the pull with unpacking, the start), and `ctr image pull`
// of the same image from the same registry into a fresh namespace of the
// same containerd (fetch and unpack), alternately, in the same run; medians
// of 5. Between samples the image is removed on both sides (the agent's
// through DELETE /v1/images, ctr's with images rm --sync), so that neither
// finds its blobs on disk. The agent heartbeats every 3 s, its default.
func BenchmarkPullThroughASessionVsCtr(b *testing.B) {
	reg := registrytest.Start(b, registrytest.Options{})
	base := registrytest.OCIArchive(b, testenv.BaseImage(b))
	reg.Push(registrytest.WithData(b, base, 100<<20, 4, 42), "lab/big:1")
	ref := reg.Ref("lab/big:1")
	socket := testenv.Containerd(b)
	sc := startBareClusterTB(b, socket, 3*time.Second)
	sc.want(sc.do(sc.admin, http.MethodPost, "/v1/registries", map[string]any{"name": "lab", "url": "http://" + reg.Host, "insecure_http": true}), http.StatusCreated)
	agentID, _ := sc.agentOccupied()

	var viaSession, viaCtr []float64
	for i := range pullSamples {
		t0 := time.Now()
		s := sc.created(sc.startImage(ref))
		for sc.get(s.ID).Status != api.SessionRunning {
			if st := sc.get(s.ID); st.Status == api.SessionError || time.Since(t0) > 5*time.Minute {
				b.Fatalf("session %s: %s (%s)", s.ID, st.Status, st.StatusInfo)
			}
			time.Sleep(10 * time.Millisecond)
		}
		viaSession = append(viaSession, float64(time.Since(t0).Microseconds())/1000)
		sc.terminate(s.ID)
		sc.wait(s.ID, api.SessionTerminated)
		testcluster.Eventually(b, time.Minute, func() error { // once its container is gone
			if r := sc.do(sc.admin, http.MethodDelete, "/v1/images/"+ref+"?agent="+agentID, nil); r.Status != http.StatusNoContent {
				return fmt.Errorf("remove: %d %s", r.Status, r.Body)
			}
			return nil
		})

		ns := fmt.Sprintf("ctrpull%d", i)
		t0 = time.Now()
		if out, err := exec.Command("ctr", "--address", socket, "--namespace", ns, "images", "pull", "--plain-http", ref).CombinedOutput(); err != nil {
			b.Fatalf("ctr images pull: %v\n%s", err, out)
		}
		viaCtr = append(viaCtr, float64(time.Since(t0).Microseconds())/1000)
		if out, err := exec.Command("ctr", "--address", socket, "--namespace", ns, "images", "rm", "--sync", ref).CombinedOutput(); err != nil {
			b.Fatalf("ctr images rm: %v\n%s", err, out)
		}
	}
	ms, mc := median(viaSession), median(viaCtr)
	b.ReportMetric(ms, "session-median-ms")
	b.ReportMetric(mc, "ctr-median-ms")
	b.ReportMetric(ms/mc, "session/ctr")
	b.Logf("100 MiB image: through a session %v ms (median %.0f), ctr image pull %v ms (median %.0f), ratio %.2f", viaSession, ms, viaCtr, mc, ms/mc)
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
