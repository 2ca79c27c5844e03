package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/api"
)

// Concurrent creates of one email (or one username) through the three
// managers of a cluster: the FSM decides, so exactly one wins.
func TestConcurrentCreatesThroughDifferentManagersExactlyOneWins(t *testing.T) {
	c := testcluster.Start(t, 3, testcluster.InsecureRaft) // about the FSM, not the transport
	token := testcluster.Login(t, c.Servers[0], testcluster.AdminEmail, testcluster.AdminPassword)
	testcluster.Eventually(t, 10*time.Second, func() error {
		for _, s := range c.Servers {
			if r := testcluster.Do(t, http.MethodGet, testcluster.URL(s)+"/v1/auth/whoami?stale=true", token, nil); r.Status != 200 {
				return fmt.Errorf("%s does not know the token yet", s.ID())
			}
		}
		return nil
	})
	for round, same := range []string{"email", "username"} {
		t.Run("same "+same, func(t *testing.T) {
			const racers = 6
			statuses := make([]int, racers)
			var wg sync.WaitGroup
			for i := 0; i < racers; i++ {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					email, name := fmt.Sprintf("race%d@example.com", round), fmt.Sprintf("racer%d-%d", round, i)
					if same == "username" {
						email, name = fmt.Sprintf("race%d-%d@example.com", round, i), fmt.Sprintf("racer%d", round)
					}
					s := c.Servers[i%len(c.Servers)]
					statuses[i] = createRetryingNoLeader(t, testcluster.URL(s)+"/v1/users", token, map[string]any{
						"email": email, "username": name, "password": testPassword})
				}(i)
			}
			wg.Wait()
			// A leadership change mid-race (a loaded machine re-elects)
			// answers a write that may have been applied "outcome
			// unknown": such a racer may be the winner whose answer was
			// lost, never a second winner. The state below settles it.
			won, lost, unknown := 0, 0, 0
			for _, st := range statuses {
				switch st {
				case 201:
					won++
				case 409:
					lost++
				case outcomeUnknown:
					unknown++
				}
			}
			if won > 1 || won+lost+unknown != racers || won+unknown < 1 || (unknown == 0 && won != 1) {
				t.Fatalf("statuses %v: want exactly one 201 and the rest 409", statuses)
			}
		})
	}
	// And every manager agrees on the winners.
	leader := c.Leader()
	r := testcluster.Do(t, http.MethodGet, testcluster.URL(leader)+"/v1/users?username=racer", token, nil)
	var l api.List[api.User]
	r.JSON(t, &l)
	if len(l.Items) != 2 {
		t.Fatalf("%d racers exist, want 2", len(l.Items))
	}
}

// outcomeUnknown stands for a 503 outcome-unknown answer among statuses.
const outcomeUnknown = -1

// createRetryingNoLeader posts body and returns the status, sending it again
// while the answer is 503 no-leader (nothing was applied: a busy machine
// can make the cluster re-elect mid-test) but never after any other answer.
func createRetryingNoLeader(t *testing.T, url, token string, body any) int {
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := testcluster.Do(t, http.MethodPost, url, token, body)
		var p api.Problem
		if r.Status == http.StatusServiceUnavailable && json.Unmarshal(r.Body, &p) == nil && p.Type == api.ProblemOutcomeUnknown {
			return outcomeUnknown
		}
		if r.Status != http.StatusServiceUnavailable || p.Type != api.ProblemNoLeader || time.Now().After(deadline) {
			return r.Status
		}
		<-time.After(50 * time.Millisecond) // an election takes a moment
	}
}
