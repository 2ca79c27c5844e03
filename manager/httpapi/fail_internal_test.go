package httpapi

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/berth-cluster/berth/manager/raftnode"
	"github.com/berth-cluster/berth/shared/api"
)

// A write refused before it was appended may be sent again (no-leader); one
// whose leader was lost after appending may have been applied, and says so
// (outcome-unknown), so clients do not apply it twice.
func TestLeadershipErrorsTellWhetherARetryIsSafe(t *testing.T) {
	t.Parallel()
	a := &API{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	cases := []struct {
		err  error
		want string
	}{
		{fmt.Errorf("propose: %w", raftnode.ErrNotLeader), api.ProblemNoLeader},
		{fmt.Errorf("propose: %w", raftnode.ErrOutcomeUnknown), api.ProblemOutcomeUnknown},
	}
	for _, c := range cases {
		w := httptest.NewRecorder()
		a.fail(w, httptest.NewRequest(http.MethodPost, "/v1/users", nil), c.err)
		var p api.Problem
		if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
			t.Fatal(err)
		}
		if w.Code != http.StatusServiceUnavailable || p.Type != c.want {
			t.Errorf("%v → %d %s, want 503 %s", c.err, w.Code, p.Type, c.want)
		}
	}
}
