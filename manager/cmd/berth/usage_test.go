package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/berth-cluster/berth/shared/api"
)

func TestUsageCommandsSendTheirQueryAndShowEveryItem(t *testing.T) {
	item := api.UsageItem{Period: "2026-03", GroupBy: "group", Key: "default/ml",
		Allocated: api.UsageAllocated{CPU: "14400.5", Mem: "7730941132800", CUDADevice: "0", CUDAShares: "1.25"},
		Sessions:  api.UsageSessions{Started: 3, Finished: 2, Failed: 1},
		Measured:  api.UsageMeasured{CPUSeconds: "5.25", PeakMemBytes: 123456}}
	answers := map[string]adminAnswer{
		"GET /v1/usage":            {http.StatusOK, api.Usage{Items: []api.UsageItem{item}}},
		"GET /v1/export/usage.csv": {http.StatusOK, "x"},
	}
	for _, c := range []struct {
		name       string
		args       []string
		want       adminCall
		wantStdout []string
	}{
		{"every flag", []string{"usage", "--from", "2026-03-01", "--to", "2026-03-31", "--group-by", "group", "--step", "month"},
			adminCall{"GET", "/v1/usage", "from=2026-03-01&group_by=group&step=month&to=2026-03-31", ""},
			[]string{"PERIOD", "ALLOCATED.CPU", "MEASURED.PEAK_MEM_BYTES", "2026-03", "default/ml", "14400.5", "7730941132800", "1.25", "5.25", "123456"}},
		{"the manager's defaults", []string{"usage"}, adminCall{"GET", "/v1/usage", "", ""}, []string{"default/ml"}},
		{"as CSV", []string{"usage", "-o", "csv"}, adminCall{"GET", "/v1/usage", "", ""},
			[]string{"period,group_by,key,allocated.cpu,allocated.mem,allocated.cuda.device,allocated.cuda.shares,sessions.started,sessions.finished,sessions.failed,measured.cpu_seconds,measured.peak_mem_bytes",
				"2026-03,group,default/ml,14400.5,7730941132800,0,1.25,3,2,1,5.25,123456"}},
		{"the export", []string{"export", "usage", "--group-by", "domain", "--filename", "march"},
			adminCall{"GET", "/v1/export/usage.csv", "filename=march&group_by=domain", ""}, []string{"x"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newAdminFake(t, answers)
			res := berth(t, f.env(), "", c.args...)
			if res.code != 0 {
				t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
			}
			if got := f.only(t); got != c.want {
				t.Errorf("sent %+v, want %+v", got, c.want)
			}
			for _, w := range c.wantStdout {
				if !strings.Contains(res.stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, res.stdout)
				}
			}
		})
	}
}
