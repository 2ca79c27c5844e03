package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/berth-cluster/berth/shared/api"
)

func TestMaintenanceRecalculateUsageShowsEveryDifference(t *testing.T) {
	r := api.UsageRecalculation{Drift: []api.UsageDrift{
		{Scope: "keypair/AKTEST", Slot: "cpu", Recorded: "3", Actual: "1"},
		{Scope: "agent/agent-a", Slot: "containers", Recorded: "0", Actual: "2"},
	}, Fixed: 2}
	r.Checked.Agents, r.Checked.Keypairs, r.Checked.UsageDays = 2, 5, 7
	f := newAdminFake(t, map[string]adminAnswer{"POST /v1/maintenance/recalculate-usage": {http.StatusOK, r}})
	res := berth(t, f.env(), "", "maintenance", "recalculate-usage")
	if res.code != 0 {
		t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
	}
	if got, want := f.only(t), (adminCall{"POST", "/v1/maintenance/recalculate-usage", "", ""}); got != want {
		t.Errorf("sent %+v, want %+v", got, want)
	}
	for _, w := range []string{"SCOPE", "RECORDED", "keypair/AKTEST", "cpu", "agent/agent-a", "containers"} {
		if !strings.Contains(res.stdout, w) {
			t.Errorf("stdout lacks %q:\n%s", w, res.stdout)
		}
	}
	if want := "Checked 2 agents, 5 keypairs and 7 usage rows: 2 differences, 2 fixed."; !strings.Contains(res.stderr, want) {
		t.Errorf("stderr %q lacks %q", res.stderr, want)
	}
}
