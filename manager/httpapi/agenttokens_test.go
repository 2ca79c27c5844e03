package httpapi_test

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-cluster/berth/manager/httpapi"
	"github.com/berth-cluster/berth/manager/server"
	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/api"
)

// createAgentToken issues an agent token as the caller and returns it.
func createAgentToken(t *testing.T, s *server.Server, token string, body any) api.AgentToken {
	t.Helper()
	r := testcluster.Do(t, http.MethodPost, testcluster.URL(s)+"/v1/agents/tokens", token, body)
	wantStatus(t, r, http.StatusCreated)
	var out api.AgentToken
	r.JSON(t, &out)
	return out
}

// registerWith sends a new agent's registration with the join token.
func registerWith(t *testing.T, s *server.Server, joinToken, addr string) *testcluster.Response {
	t.Helper()
	return agentCall(t, s, http.MethodPost, "/v1/agents/register", joinToken, "", registration(addr))
}

func TestAgentTokenIsShownOnceAndListedWithoutSecrets(t *testing.T) {
	t.Parallel()
	s := testcluster.StartFake(t).Servers[0]
	admin := testcluster.Login(t, s, testcluster.AdminEmail, testcluster.AdminPassword)
	tok := createAgentToken(t, s, admin, map[string]any{"uses": 3, "ttl": 3600, "auto_approve": true})
	if !strings.HasPrefix(tok.Token, "berth-agent-") || len(tok.Token) < 40 || !strings.HasPrefix(tok.ID, "agtok-") {
		t.Fatalf("created %+v: want an id agtok-… and a token berth-agent-… of at least 40 characters", tok)
	}
	if tok.Status != api.AgentTokenActive || tok.Uses != 3 || tok.Used != 0 || !tok.AutoApprove || tok.CreatedBy != testcluster.AdminEmail ||
		tok.ExpiresAt == nil || tok.ExpiresAt.Sub(tok.CreatedAt) != time.Hour || tok.RevokedAt != nil {
		t.Fatalf("created %+v", tok)
	}
	r := testcluster.Do(t, http.MethodGet, testcluster.URL(s)+"/v1/agents/tokens", admin, nil)
	wantStatus(t, r, http.StatusOK)
	if strings.Contains(string(r.Body), tok.Token) || strings.Contains(string(r.Body), `"token"`) || strings.Contains(string(r.Body), "hash") {
		t.Fatalf("the list shows a secret: %s", r.Body)
	}
	var l api.List[api.AgentToken]
	r.JSON(t, &l)
	if len(l.Items) != 1 || l.Items[0].ID != tok.ID || l.Items[0].Status != api.AgentTokenActive {
		t.Fatalf("list %+v", l.Items)
	}
	// A token that never expires and admits any number of agents.
	open := createAgentToken(t, s, admin, map[string]any{})
	if open.ExpiresAt != nil || open.Uses != 0 || open.AutoApprove {
		t.Fatalf("default token %+v: want no expiry, any number of uses, no auto-approval", open)
	}
}

func TestAgentTokenRequestIsValidatedAllAtOnce(t *testing.T) {
	t.Parallel()
	s := testcluster.StartFake(t).Servers[0]
	admin := testcluster.Login(t, s, testcluster.AdminEmail, testcluster.AdminPassword)
	before := lastIndex(s)
	r := testcluster.Do(t, http.MethodPost, testcluster.URL(s)+"/v1/agents/tokens", admin, map[string]any{"uses": -1, "ttl": 400 * 24 * 3600})
	wantFields(t, wantProblem(t, r, http.StatusBadRequest, api.ProblemValidation), map[string][]string{
		"uses": {"uses must be from 0 (any number of agents) to 10000"},
		"ttl":  {"ttl must be from 0 (never expires) to 31536000 seconds (a year)"},
	})
	for _, body := range []string{`{"ttl":"24h"}`, `{"uses":1.5}`, `{"secret":"mine"}`} {
		r := testcluster.Do(t, http.MethodPost, testcluster.URL(s)+"/v1/agents/tokens", admin, body)
		wantProblem(t, r, http.StatusBadRequest, api.ProblemValidation)
	}
	if lastIndex(s) != before {
		t.Fatal("a refused token request wrote to the log")
	}
}

// Every way a stranger or a holder of a spent credential might register
// an agent is refused with 401, and the agent is not recorded. The control
// row shows the same request with a good token gets in.
func TestAgentRegistrationWithoutAValidTokenIsRefused(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	s := testcluster.StartFake(t, withAgentToken, withClock(clock, 24*time.Hour)).Servers[0]
	admin := testcluster.Login(t, s, testcluster.AdminEmail, testcluster.AdminPassword)
	good := createAgentToken(t, s, admin, map[string]any{})
	revoked := createAgentToken(t, s, admin, map[string]any{})
	wantStatus(t, testcluster.Do(t, http.MethodDelete, testcluster.URL(s)+"/v1/agents/tokens/"+revoked.ID, admin, nil), http.StatusNoContent)
	expiring := createAgentToken(t, s, admin, map[string]any{"ttl": 60})
	usedUp := createAgentToken(t, s, admin, map[string]any{"uses": 1})
	wantStatus(t, registerWith(t, s, usedUp.Token, "10.0.9.1:6001"), http.StatusCreated)
	clock.Advance(61 * time.Second)

	cases := []struct {
		name, token string
		status      int
		detail      string
	}{
		{"no token", "", http.StatusUnauthorized, "wrong or missing agent token"},
		{"wrong token", "berth-agent-" + strings.Repeat("x", 43), http.StatusUnauthorized, "wrong or missing agent token"},
		{"the shared token with a character changed", testAgentToken + "!", http.StatusUnauthorized, "wrong or missing agent token"},
		{"a token's id instead of the token", good.ID, http.StatusUnauthorized, "wrong or missing agent token"},
		{"revoked token", revoked.Token, http.StatusUnauthorized, "this agent token was revoked at"},
		{"expired token", expiring.Token, http.StatusUnauthorized, "this agent token expired at"},
		{"used-up token", usedUp.Token, http.StatusUnauthorized, "this agent token is used up (1 of 1 registrations)"},
		{"control: a valid issued token", good.Token, http.StatusCreated, ""},
		{"control: the shared token", testAgentToken, http.StatusCreated, ""},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			addr := fmt.Sprintf("10.0.8.%d:6001", i+1)
			r := registerWith(t, s, c.token, addr)
			if c.status == http.StatusCreated {
				wantStatus(t, r, http.StatusCreated)
				return
			}
			wantDetail(t, wantProblem(t, r, c.status, api.ProblemUnauthorized), c.detail)
			var l api.List[api.Agent]
			testcluster.Do(t, http.MethodGet, testcluster.URL(s)+"/v1/agents", admin, nil).JSON(t, &l)
			for _, a := range l.Items {
				if a.Address == addr {
					t.Fatalf("the refused agent was recorded: %+v", a)
				}
			}
		})
	}
	var l api.List[api.AgentToken]
	testcluster.Do(t, http.MethodGet, testcluster.URL(s)+"/v1/agents/tokens", admin, nil).JSON(t, &l)
	status := map[string]string{}
	for _, k := range l.Items {
		status[k.ID] = k.Status + "/" + strconv.Itoa(k.Used)
	}
	want := map[string]string{good.ID: "active/1", revoked.ID: "revoked/0", expiring.ID: "expired/0", usedUp.ID: "used/1"}
	for id, w := range want {
		if status[id] != w {
			t.Errorf("token %s is %s, want %s", id, status[id], w)
		}
	}
}

// A token for N agents admits N, and the (N+1)th is refused, also when
// agents race for the last use: the FSM, not the handler, counts.
func TestAgentTokenAdmitsAsManyAgentsAsItsUses(t *testing.T) {
	t.Parallel()
	s := testcluster.StartFake(t).Servers[0]
	admin := testcluster.Login(t, s, testcluster.AdminEmail, testcluster.AdminPassword)
	three := createAgentToken(t, s, admin, map[string]any{"uses": 3})
	for i := range 3 {
		wantStatus(t, registerWith(t, s, three.Token, fmt.Sprintf("10.0.1.%d:6001", i+1)), http.StatusCreated)
	}
	r := registerWith(t, s, three.Token, "10.0.1.4:6001")
	wantDetail(t, wantProblem(t, r, http.StatusUnauthorized, api.ProblemUnauthorized), "used up (3 of 3 registrations)")

	// Each round's losers count against this address's failures (10 at most).
	const rounds, racers = 4, 3
	for round := range rounds {
		last := createAgentToken(t, s, admin, map[string]any{"uses": 1})
		var wg sync.WaitGroup
		statuses := make([]int, racers)
		for i := range racers {
			wg.Go(func() {
				statuses[i] = registerWith(t, s, last.Token, fmt.Sprintf("10.0.2.%d:6001", round*racers+i+1)).Status
			})
		}
		wg.Wait()
		won := 0
		for _, st := range statuses {
			switch st {
			case http.StatusCreated:
				won++
			case http.StatusUnauthorized:
			default:
				t.Fatalf("round %d: a racer got %d", round, st)
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d of %d racers registered with a one-use token (%v), want exactly 1", round, won, racers, statuses)
		}
	}
}

// An agent that joined with a token that does not approve it gets no
// session: the session waits, saying why, and runs once a superadmin
// approves the agent. The agent's desired state stays empty until then, so
// it never sees a user's image, environment or folders.
func TestAgentAwaitingApprovalGetsNoSessionUntilApproved(t *testing.T) {
	t.Parallel()
	s := testcluster.StartFake(t).Servers[0]
	admin := testcluster.Login(t, s, testcluster.AdminEmail, testcluster.AdminPassword)
	tok := createAgentToken(t, s, admin, map[string]any{"uses": 1})
	in := registration("10.0.3.1:6001", api.Image{Name: baseImage, Digest: "sha256:aa", Size: 1 << 20})
	r := agentCall(t, s, http.MethodPost, "/v1/agents/register", tok.Token, "", in)
	wantStatus(t, r, http.StatusCreated)
	var ag api.AgentRegistered
	r.JSON(t, &ag)
	if got := getAgent(t, s, admin, ag.ID); got.Approved || !got.Schedulable || got.Status != api.AgentAlive || got.JoinToken != tok.ID {
		t.Fatalf("agent %+v: want ALIVE, schedulable, not approved, joined with %s", got, tok.ID)
	}

	r = testcluster.Do(t, http.MethodPost, testcluster.URL(s)+"/v1/sessions", admin, oneCPU(map[string]any{"env": map[string]string{"SECRET": "s3cr3t"}}))
	wantStatus(t, r, http.StatusCreated)
	var sess api.Session
	r.JSON(t, &sess)
	want := "no agent is alive, schedulable and approved; " + ag.ID + " awaiting approval (berth agent approve " + ag.ID + ")"
	testcluster.Eventually(t, 15*time.Second, func() error {
		var got api.Session
		testcluster.Do(t, http.MethodGet, testcluster.URL(s)+"/v1/sessions/"+sess.ID, admin, nil).JSON(t, &got)
		if got.Status != api.SessionPending || got.StatusInfo != want {
			return fmt.Errorf("session %s %q, want PENDING %q", got.Status, got.StatusInfo, want)
		}
		return nil
	})
	r = agentCall(t, s, http.MethodGet, "/v1/agents/"+ag.ID+"/desired", "", ag.Secret, nil)
	wantStatus(t, r, http.StatusOK)
	var desired api.DesiredState
	r.JSON(t, &desired)
	if len(desired.Containers) != 0 || strings.Contains(string(r.Body), "s3cr3t") {
		t.Fatalf("the unapproved agent is handed work: %s", r.Body)
	}

	r = testcluster.Do(t, http.MethodPost, testcluster.URL(s)+"/v1/agents/"+ag.ID+"/approve", admin, nil)
	wantStatus(t, r, http.StatusOK)
	var approved api.Agent
	r.JSON(t, &approved)
	if !approved.Approved {
		t.Fatalf("after approval: %+v", approved)
	}
	testcluster.Eventually(t, 15*time.Second, func() error {
		var got api.Session
		testcluster.Do(t, http.MethodGet, testcluster.URL(s)+"/v1/sessions/"+sess.ID, admin, nil).JSON(t, &got)
		if got.Status != api.SessionScheduled || len(got.Containers) != 1 || got.Containers[0].Agent != ag.ID {
			return fmt.Errorf("session %s %q on %+v, want SCHEDULED on %s", got.Status, got.StatusInfo, got.Containers, ag.ID)
		}
		return nil
	})
	// Approving again changes nothing; an unknown agent is 404.
	wantStatus(t, testcluster.Do(t, http.MethodPost, testcluster.URL(s)+"/v1/agents/"+ag.ID+"/approve", admin, nil), http.StatusOK)
	r = testcluster.Do(t, http.MethodPost, testcluster.URL(s)+"/v1/agents/agent-000000000000/approve", admin, nil)
	wantProblem(t, r, http.StatusNotFound, api.ProblemNotFound)
}

// Which agents take sessions at once: those of an auto_approve token and
// of the managers' shared token, unless the managers run with
// -agent-auto-approve=false.
func TestWhichAgentsAreApprovedAtRegistration(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name          string
		needsApproval bool
		token         func(t *testing.T, s *server.Server, admin string) string
		approved      bool
	}{
		{"shared token", false, func(*testing.T, *server.Server, string) string { return testAgentToken }, true},
		{"shared token, -agent-auto-approve=false", true, func(*testing.T, *server.Server, string) string { return testAgentToken }, false},
		{"issued token with auto_approve", true, func(t *testing.T, s *server.Server, admin string) string {
			return createAgentToken(t, s, admin, map[string]any{"auto_approve": true}).Token
		}, true},
		{"issued token without auto_approve", false, func(t *testing.T, s *server.Server, admin string) string {
			return createAgentToken(t, s, admin, map[string]any{}).Token
		}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := testcluster.StartFake(t, withAgentToken, func(cfg *server.Config) { cfg.AgentTokenNeedsApproval = c.needsApproval }).Servers[0]
			admin := testcluster.Login(t, s, testcluster.AdminEmail, testcluster.AdminPassword)
			r := registerWith(t, s, c.token(t, s, admin), "10.0.4.1:6001")
			wantStatus(t, r, http.StatusCreated)
			var ag api.AgentRegistered
			r.JSON(t, &ag)
			if got := getAgent(t, s, admin, ag.ID); got.Approved != c.approved {
				t.Fatalf("approved = %v, want %v", got.Approved, c.approved)
			}
		})
	}
}

// An agent that joined with a one-use token registers again after a
// restart with its id and secret: the spent token is no longer needed.
func TestAgentRegistersAgainWithItsSecretAfterItsTokenIsSpent(t *testing.T) {
	t.Parallel()
	s := testcluster.StartFake(t).Servers[0]
	admin := testcluster.Login(t, s, testcluster.AdminEmail, testcluster.AdminPassword)
	tok := createAgentToken(t, s, admin, map[string]any{"uses": 1, "auto_approve": true})
	r := registerWith(t, s, tok.Token, "10.0.5.1:6001")
	wantStatus(t, r, http.StatusCreated)
	var ag api.AgentRegistered
	r.JSON(t, &ag)
	wantStatus(t, testcluster.Do(t, http.MethodDelete, testcluster.URL(s)+"/v1/agents/tokens/"+tok.ID, admin, nil), http.StatusNoContent)
	again := registration("10.0.5.2:6001")
	again.ID = ag.ID
	wantStatus(t, agentCall(t, s, http.MethodPost, "/v1/agents/register", tok.Token, ag.Secret, again), http.StatusOK)
	if got := getAgent(t, s, admin, ag.ID); got.Address != "10.0.5.2:6001" || !got.Approved {
		t.Fatalf("after registering again: %+v", got)
	}
	// The spent token admits no new agent, nor does a stray secret.
	wantProblem(t, agentCall(t, s, http.MethodPost, "/v1/agents/register", tok.Token, ag.Secret, registration("10.0.5.3:6001")),
		http.StatusUnauthorized, api.ProblemUnauthorized)
}

// Issuing and revoking tokens and approving agents are a superadmin's: an
// admin of the cluster's domain may read the tokens, no one else may.
func TestOnlySuperadminsIssueAgentTokensAndApproveAgents(t *testing.T) {
	t.Parallel()
	s := testcluster.StartFake(t).Servers[0]
	super := testcluster.Login(t, s, testcluster.AdminEmail, testcluster.AdminPassword)
	tok := createAgentToken(t, s, super, map[string]any{"uses": 1})
	r := registerWith(t, s, tok.Token, "10.0.6.1:6001")
	wantStatus(t, r, http.StatusCreated)
	var ag api.AgentRegistered
	r.JSON(t, &ag)
	createUser(t, s, super, "adm@example.com", "adm", api.RoleAdmin)
	createUser(t, s, super, "usr@example.com", "usr", api.RoleUser)
	createUser(t, s, super, "mon@example.com", "mon", api.RoleMonitor)
	tokens := map[string]string{
		"admin":   testcluster.Login(t, s, "adm@example.com", testPassword),
		"user":    testcluster.Login(t, s, "usr@example.com", testPassword),
		"monitor": testcluster.Login(t, s, "mon@example.com", testPassword),
	}
	before := lastIndex(s)
	for who, token := range tokens {
		for _, c := range []struct {
			method, path string
			body         any
		}{
			{http.MethodPost, "/v1/agents/tokens", map[string]any{"auto_approve": true}},
			{http.MethodDelete, "/v1/agents/tokens/" + tok.ID, nil},
			{http.MethodPost, "/v1/agents/" + ag.ID + "/approve", nil},
		} {
			r := testcluster.Do(t, c.method, testcluster.URL(s)+c.path, token, c.body)
			wantDetail(t, wantProblem(t, r, http.StatusForbidden, api.ProblemForbidden), "requires the superadmin role")
			_ = who
		}
	}
	for who, want := range map[string]int{"admin": http.StatusOK, "monitor": http.StatusOK, "user": http.StatusForbidden} {
		if r := testcluster.Do(t, http.MethodGet, testcluster.URL(s)+"/v1/agents/tokens", tokens[who], nil); r.Status != want {
			t.Errorf("%s lists agent tokens: %d, want %d", who, r.Status, want)
		}
	}
	for _, path := range []string{"/v1/agents/tokens", "/v1/agents/" + ag.ID + "/approve"} {
		wantProblem(t, testcluster.Do(t, http.MethodPost, testcluster.URL(s)+path, "", map[string]any{}), http.StatusUnauthorized, api.ProblemUnauthorized)
	}
	if lastIndex(s) != before {
		t.Fatal("a refused request wrote to the log")
	}
	if got := getAgent(t, s, super, ag.ID); got.Approved {
		t.Fatal("the agent was approved by someone who may not")
	}
}

// Guessing tokens from one address is cut off: after a burst of failures
// the address gets 429 with Retry-After, even with a right token (so a
// right guess is not confirmed), until the bucket refills. Successes cost
// nothing: many honest agents behind one address all register.
func TestWrongTokenAttemptsAreRateLimitedPerAddress(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	s := testcluster.StartFake(t, withAgentToken, withClock(clock, 24*time.Hour), func(cfg *server.Config) {
		cfg.JoinToken = "join-token-of-the-cluster"
		cfg.HeartbeatTimeout = time.Hour
	}).Servers[0]
	for i := range 20 {
		wantStatus(t, registerWith(t, s, testAgentToken, fmt.Sprintf("10.0.7.%d:6001", i+1)), http.StatusCreated)
	}

	statuses := make([]int, 20)
	for i := range statuses {
		r := registerWith(t, s, fmt.Sprintf("guess-%02d-%s", i, strings.Repeat("x", 20)), "10.0.7.100:6001")
		statuses[i] = r.Status
		if r.Status == http.StatusTooManyRequests {
			if ra, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || ra < 1 {
				t.Fatalf("429 without a Retry-After in seconds: %q", r.Header.Get("Retry-After"))
			}
			wantDetail(t, wantProblem(t, r, http.StatusTooManyRequests, api.ProblemRateLimited), "too many failed token attempts from this address")
		}
	}
	for i, st := range statuses {
		want := http.StatusUnauthorized
		if i >= 10 {
			want = http.StatusTooManyRequests
		}
		if st != want {
			t.Fatalf("wrong-token attempt %d: %d, want %d (all: %v)", i+1, st, want, statuses)
		}
	}
	// Blocked, a right token is refused too, and so is a manager join.
	wantStatus(t, registerWith(t, s, testAgentToken, "10.0.7.101:6001"), http.StatusTooManyRequests)
	join := newRequest(t, http.MethodPost, testcluster.URL(s)+"/v1/operator/raft/join",
		mustJSON(t, map[string]string{"id": "m9", "raft_address": "127.0.0.1:1", "http_address": "127.0.0.1:2"}))
	join.Header.Set(httpapi.JoinTokenHeader, "guess")
	wantStatus(t, send(t, join), http.StatusTooManyRequests)
	// The bucket refills: one attempt per 6 s.
	clock.Advance(7 * time.Second)
	wantStatus(t, registerWith(t, s, testAgentToken, "10.0.7.102:6001"), http.StatusCreated)
}

// Wrong join tokens from one address are limited like agent tokens.
func TestWrongJoinTokenAttemptsAreRateLimited(t *testing.T) {
	t.Parallel()
	s := testcluster.StartFake(t, func(cfg *server.Config) { cfg.JoinToken = "join-token-of-the-cluster" }).Servers[0]
	var statuses []int
	for i := range 20 {
		req := newRequest(t, http.MethodPost, testcluster.URL(s)+"/v1/operator/raft/join",
			mustJSON(t, map[string]string{"id": "m9", "raft_address": "127.0.0.1:1", "http_address": "127.0.0.1:2"}))
		req.Header.Set(httpapi.JoinTokenHeader, fmt.Sprintf("guess-%d", i))
		statuses = append(statuses, send(t, req).Status)
	}
	if statuses[0] != http.StatusUnauthorized || statuses[19] != http.StatusTooManyRequests {
		t.Fatalf("20 wrong join tokens: %v, want 401 first and 429 at the end", statuses)
	}
}
