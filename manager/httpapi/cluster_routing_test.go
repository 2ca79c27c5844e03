package httpapi_test

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-cluster/berth/manager/server"
	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/api"
)

// clusterDeadline bounds waits for replication and peer probes on a loaded
// two-core machine.
const clusterDeadline = 20 * time.Second

// TestAnyManagerServesAnyRequest runs a three-manager cluster: writes sent to
// a follower are forwarded to the leader, ?stale=true reads are answered
// locally with their staleness, and the information, operator, readiness and
// metrics routes describe the cluster from every manager.
func TestAnyManagerServesAnyRequest(t *testing.T) {
	c := testcluster.Start(t, 3, testcluster.InsecureRaft) // about routing, not the transport
	leader := c.Leader()
	var followers []*server.Server
	for _, s := range c.Servers {
		if s != leader {
			followers = append(followers, s)
		}
	}
	follower := followers[0]
	fURL := testcluster.URL(follower)

	// Logging in is a write too: through a follower.
	super := testcluster.Login(t, follower, testcluster.AdminEmail, testcluster.AdminPassword)
	// A token is committed when login answers, but a follower may apply it a
	// moment later; wait until every manager knows it before local routes.
	for _, s := range c.Servers {
		testcluster.Eventually(t, clusterDeadline, func() error {
			if r := whoamiStale(t, s, super); r.Status != http.StatusOK {
				return fmt.Errorf("%s: whoami %d %s", s.ID(), r.Status, r.Body)
			}
			return nil
		})
	}

	t.Run("a write sent to a follower succeeds and is readable from every manager", func(t *testing.T) {
		r := testcluster.Do(t, http.MethodPost, fURL+"/v1/users", super, map[string]any{
			"email": "via-follower@example.com", "username": "via-follower", "password": testPassword, "role": api.RoleAdmin,
		})
		wantStatus(t, r, http.StatusCreated)
		for _, s := range c.Servers {
			// Without ?stale the leader answers, so the write is visible at once.
			r := testcluster.Do(t, http.MethodGet, testcluster.URL(s)+"/v1/users/via-follower@example.com", super, nil)
			wantStatus(t, r, http.StatusOK)
			// Each manager's own copy catches up.
			testcluster.Eventually(t, clusterDeadline, func() error {
				r := testcluster.Do(t, http.MethodGet, testcluster.URL(s)+"/v1/users/via-follower@example.com?stale=true", super, nil)
				if r.Status != http.StatusOK {
					return fmt.Errorf("%s: stale read %d %s", s.ID(), r.Status, r.Body)
				}
				return nil
			})
		}
	})

	t.Run("a keypair-signed write sent to a follower keeps its signature valid", func(t *testing.T) {
		r := testcluster.Do(t, http.MethodPost, fURL+"/v1/users", super, map[string]any{
			"email": "signer@example.com", "username": "signer", "password": testPassword, "role": api.RoleAdmin,
		})
		wantStatus(t, r, http.StatusCreated)
		var signer createdUser
		r.JSON(t, &signer)
		body := mustJSON(t, map[string]string{"email": "signed-via-follower@example.com", "username": "signed-via-follower", "password": testPassword})
		wantStatus(t, send(t, signedRequest(t, http.MethodPost, fURL+"/v1/users?x=1", signer.Keypair, body, time.Now())), http.StatusCreated)
		wantStatus(t, testcluster.Do(t, http.MethodGet, fURL+"/v1/users/signed-via-follower@example.com", super, nil), http.StatusOK)
	})

	t.Run("a stale read is answered by the follower with its index and last contact", func(t *testing.T) {
		r := testcluster.Do(t, http.MethodGet, fURL+"/v1/users?stale=true", super, nil)
		wantStatus(t, r, http.StatusOK)
		index, err := strconv.ParseUint(r.Header.Get("X-Berth-Index"), 10, 64)
		if err != nil || index == 0 {
			t.Errorf("X-Berth-Index %q, want the follower's applied index > 0", r.Header.Get("X-Berth-Index"))
		}
		contact, err := strconv.ParseInt(r.Header.Get("X-Berth-Last-Contact"), 10, 64)
		if err != nil || contact < 0 {
			t.Errorf("X-Berth-Last-Contact %q, want milliseconds ≥ 0", r.Header.Get("X-Berth-Last-Contact"))
		}
		var list api.List[api.User]
		r.JSON(t, &list)
		if len(list.Items) == 0 {
			t.Error("the stale list is empty")
		}
		// A consistent read on the same follower goes to the leader, which
		// does not describe a local view.
		r = testcluster.Do(t, http.MethodGet, fURL+"/v1/users", super, nil)
		wantStatus(t, r, http.StatusOK)
		if h := r.Header.Get("X-Berth-Index"); h != "" {
			t.Errorf("a consistent read carries X-Berth-Index %q; only stale reads should", h)
		}
	})

	t.Run("info on a follower shows the leader and every member's state", func(t *testing.T) {
		testcluster.Eventually(t, clusterDeadline, func() error {
			r := testcluster.Do(t, http.MethodGet, fURL+"/v1/info", super, nil)
			if r.Status != http.StatusOK {
				return fmt.Errorf("info %d %s", r.Status, r.Body)
			}
			var info api.Info
			r.JSON(t, &info)
			// Leadership may move on a loaded machine: compare with the current leader.
			cur := c.Leader()
			if info.Cluster.Leader != cur.ID() {
				return fmt.Errorf("leader %q, want %q", info.Cluster.Leader, cur.ID())
			}
			if info.Version == "" || info.APIVersion == "" || info.Cluster.RaftIndex == 0 {
				return fmt.Errorf("info %+v lacks version, api_version or raft_index", info)
			}
			return wantMembers(c, cur, info.Cluster.Members)
		})
	})

	t.Run("the raft configuration is for superadmins", func(t *testing.T) {
		createUser(t, follower, super, "plain@example.com", "plain", api.RoleUser)
		plain := testcluster.Login(t, follower, "plain@example.com", testPassword)
		for _, s := range c.Servers {
			testcluster.Eventually(t, clusterDeadline, func() error {
				r := testcluster.Do(t, http.MethodGet, testcluster.URL(s)+"/v1/operator/raft", plain, nil)
				if r.Status == http.StatusUnauthorized {
					return fmt.Errorf("%s does not know the new token yet", s.ID())
				}
				p := wantProblem(t, r, http.StatusForbidden, api.ProblemForbidden)
				wantDetail(t, p, "superadmin")
				return nil
			})
			testcluster.Eventually(t, clusterDeadline, func() error {
				r := testcluster.Do(t, http.MethodGet, testcluster.URL(s)+"/v1/operator/raft", super, nil)
				if r.Status != http.StatusOK {
					return fmt.Errorf("%s: %d %s", s.ID(), r.Status, r.Body)
				}
				var cfg api.RaftConfiguration
				r.JSON(t, &cfg)
				cur := c.Leader()
				if cfg.Leader != cur.ID() || cfg.Term == 0 || cfg.LastIndex == 0 {
					return fmt.Errorf("%s: configuration %+v, want leader %s and indexes", s.ID(), cfg, cur.ID())
				}
				return wantMembers(c, cur, cfg.Servers)
			})
		}
	})

	t.Run("every manager is ready", func(t *testing.T) {
		for _, s := range c.Servers {
			for _, path := range []string{"/readyz", "/healthz"} {
				testcluster.Eventually(t, clusterDeadline, func() error {
					r := testcluster.Do(t, http.MethodGet, testcluster.URL(s)+path, "", nil)
					if r.Status != http.StatusOK {
						return fmt.Errorf("%s %s: %d %s", s.ID(), path, r.Status, r.Body)
					}
					return nil
				})
			}
		}
	})

	t.Run("metrics count requests by route pattern and show the raft role", func(t *testing.T) {
		// The follower answered (by forwarding) POST /v1/users and, itself,
		// GET /v1/users/{email}?stale=true.
		r := testcluster.Do(t, http.MethodGet, fURL+"/metrics", "", nil)
		wantStatus(t, r, http.StatusOK)
		text := string(r.Body)
		for _, want := range []*regexp.Regexp{
			regexp.MustCompile(`(?m)^berth_http_requests_total\{[^}]*route="/v1/users"[^}]*\} [1-9]`),
			regexp.MustCompile(`(?m)^berth_http_requests_total\{[^}]*route="/v1/users/\{email\}"[^}]*\} [1-9]`),
		} {
			if !want.MatchString(text) {
				t.Errorf("metrics lack %s", want)
			}
		}
		if strings.Contains(text, `route="/v1/users/via-follower@example.com"`) {
			t.Error("metrics label a route with a concrete path instead of its pattern")
		}
		testcluster.Eventually(t, clusterDeadline, func() error {
			cur := c.Leader()
			for _, s := range c.Servers {
				want := "berth_raft_state 0" // follower
				if s == cur {
					want = "berth_raft_state 2"
				}
				r := testcluster.Do(t, http.MethodGet, testcluster.URL(s)+"/metrics", "", nil)
				if r.Status != http.StatusOK {
					return fmt.Errorf("%s: metrics %d", s.ID(), r.Status)
				}
				if !slices.Contains(strings.Split(string(r.Body), "\n"), want) {
					return fmt.Errorf("%s: metrics lack the line %q", s.ID(), want)
				}
			}
			return nil
		})
	})
}

// whoamiStale asks a manager about a token from its own copy of the state.
func whoamiStale(t testing.TB, s *server.Server, token string) *testcluster.Response {
	t.Helper()
	return testcluster.Do(t, http.MethodGet, testcluster.URL(s)+"/v1/auth/whoami?stale=true", token, nil)
}

// wantMembers checks members list every manager of c once, at its address,
// as voters, with the leader as leader and the others as followers.
func wantMembers(c *testcluster.Cluster, leader *server.Server, members []api.Member) error {
	if len(members) != len(c.Servers) {
		return fmt.Errorf("%d members, want %d: %+v", len(members), len(c.Servers), members)
	}
	for _, s := range c.Servers {
		i := slices.IndexFunc(members, func(m api.Member) bool { return m.ID == s.ID() })
		if i < 0 {
			return fmt.Errorf("member %s missing from %+v", s.ID(), members)
		}
		m := members[i]
		want := api.MemberFollower
		if s == leader {
			want = api.MemberLeader
		}
		if m.State != want || m.Address != s.HTTPAddr() || m.RaftAddr != s.RaftAddr() || !m.Voter {
			return fmt.Errorf("member %+v, want state %s, address %s, raft address %s, voter", m, want, s.HTTPAddr(), s.RaftAddr())
		}
	}
	return nil
}

// A leader whose barrier has not yet applied the entries of earlier terms
// answers routed requests (reads and writes, directly or forwarded) with
// 503 no-leader, which clients retry; local routes still answer.
func TestANewLeaderAnswersOnlyOnceCaughtUp(t *testing.T) {
	c := testcluster.Start(t, 3, testcluster.InsecureRaft) // about routing, not the transport
	leader, follower := c.Leader(), c.Follower()
	token := testcluster.Login(t, leader, testcluster.AdminEmail, testcluster.AdminPassword)
	leader.Leader().SetReady(false)
	for _, s := range []*server.Server{leader, follower} {
		r := testcluster.Do(t, http.MethodGet, testcluster.URL(s)+"/v1/auth/whoami", token, nil)
		wantProblem(t, r, http.StatusServiceUnavailable, api.ProblemNoLeader)
		r = testcluster.Do(t, http.MethodPost, testcluster.URL(s)+"/v1/domains", token, map[string]any{"name": "d-" + s.ID()})
		wantProblem(t, r, http.StatusServiceUnavailable, api.ProblemNoLeader)
	}
	wantStatus(t, testcluster.Do(t, http.MethodGet, testcluster.URL(leader)+"/v1/info", token, nil), http.StatusOK)
	leader.Leader().SetReady(true)
	wantStatus(t, testcluster.Do(t, http.MethodGet, testcluster.URL(follower)+"/v1/auth/whoami", token, nil), http.StatusOK)
}
