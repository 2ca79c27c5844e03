package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/berth-cluster/berth/manager/testcluster"
)

func TestMetricsCountSessionsByStatus(t *testing.T) {
	t.Parallel()
	c := testcluster.StartFake(t)
	r := testcluster.Do(t, http.MethodGet, testcluster.URL(c.Servers[0])+"/metrics", "", nil)
	wantStatus(t, r, http.StatusOK)
	for _, st := range []string{"PENDING", "SCHEDULED", "PREPARING", "RUNNING", "TERMINATING", "TERMINATED", "ERROR", "CANCELLED"} {
		line := `berth_sessions{status="` + st + `"} 0`
		if !strings.Contains(string(r.Body), line) {
			t.Errorf("no %q in /metrics", line)
		}
	}
}
