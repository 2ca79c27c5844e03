package httpapi_test

import (
	"context"
	"encoding/csv"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/berth-cluster/berth/manager/fsm"
	"github.com/berth-cluster/berth/manager/server"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/slots"
)

// usageEnv is a manager on a fake cluster whose clock the test sets, with
// users in two domains and sessions run at chosen times (see newUsageEnv).
type usageEnv struct {
	*sessionEnv
	clock *fakeClock
	keys  map[string]api.Keypair // by email
	n     int
}

func (e *usageEnv) at(t time.Time) {
	e.clock.mu.Lock()
	e.clock.now = t
	e.clock.mu.Unlock()
}

func (e *usageEnv) propose(c fsm.Command) *fsm.Response {
	e.t.Helper()
	resp, err := e.s.Propose(context.Background(), c)
	if err != nil || resp.Err != nil {
		e.t.Fatalf("%T: %v %v", c, err, resp.Err)
	}
	return resp
}

// run runs a session of cpu cores of the user's first keypair from placed
// to end (zero: still running), ending ERROR when failed; it returns its id.
func (e *usageEnv) run(email string, cpu int64, placed, end time.Time, failed bool) string {
	e.t.Helper()
	e.n++
	id := fmt.Sprintf("s-usage%06d", e.n)
	e.at(placed)
	e.propose(fsm.SessionCreate{Session: state.Session{ID: id, AccessKey: e.keys[email].AccessKey, Image: baseImage, Type: api.SessionBatch,
		ClusterSize: 1, Requested: slots.Slots{slots.CPU: cpu * 1000, slots.Mem: 1 << 30}, CreatedAt: placed}})
	// The scheduler may place it first, at the same (stopped) clock.
	e.propose(fsm.Plan{Version: fsm.PlanVersion, At: placed, Placements: []fsm.Placement{{SessionID: id, Containers: []fsm.PlacedContainer{{Agent: e.agent.ID}}}}})
	e.waitStatus(id, api.SessionScheduled)
	e.propose(fsm.SessionsReport{At: placed, Agent: e.agent.ID, Reports: []fsm.ContainerReport{{SessionID: id, Status: api.ContainerRunning}}})
	if end.IsZero() {
		return id
	}
	e.at(end)
	done := fsm.ContainerReport{SessionID: id, Status: api.ContainerExited, ExitCode: new(int)}
	if failed {
		done = fsm.ContainerReport{SessionID: id, Status: api.ContainerFailed, Reason: "broke"}
	}
	e.propose(fsm.SessionsReport{At: end, Agent: e.agent.ID, Reports: []fsm.ContainerReport{done}})
	return id
}

// Users of the usage tests: alice and bob (users of default; alice also in
// group ml), dana (admin of default), carl (a user of d2, in no group) and
// dora (admin of d2), each with a keypair; the superadmin.
const (
	aliceEmail = "alice@example.com"
	bobEmail   = "bob@example.com"
	danaEmail  = "dana@example.com"
	carlEmail  = "carl@example.com"
	doraEmail  = "dora@example.com"
)

func newUsageEnv(t *testing.T, tweak ...func(*server.Config)) *usageEnv {
	t.Helper()
	clock := &fakeClock{now: time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)}
	e := &usageEnv{clock: clock, keys: map[string]api.Keypair{}}
	e.sessionEnv = newSessionEnv(t, "10.0.0.9:6001", `{"cpu":64,"mem":68719476736}`, `{}`, append([]func(*server.Config){
		withClock(clock, 365*24*time.Hour), func(c *server.Config) { c.HeartbeatTimeout = 365 * 24 * time.Hour }}, tweak...)...)
	admin := e.admin
	wantStatus(t, testcluster.Do(t, http.MethodPost, e.url("/v1/domains"), admin, map[string]any{"name": "d2"}), http.StatusCreated)
	wantStatus(t, testcluster.Do(t, http.MethodPost, e.url("/v1/domains/default/groups"), admin, map[string]any{"name": "ml"}), http.StatusCreated)
	for _, u := range []struct {
		email, role, domain string
		groups              []string
	}{
		{aliceEmail, api.RoleUser, "default", []string{"default", "ml"}},
		{bobEmail, api.RoleUser, "default", []string{"default"}},
		{danaEmail, api.RoleAdmin, "default", []string{"default"}},
		{carlEmail, api.RoleUser, "d2", []string{}},
		{doraEmail, api.RoleAdmin, "d2", []string{}},
	} {
		r := testcluster.Do(t, http.MethodPost, e.url("/v1/users"), admin, map[string]any{"email": u.email, "username": strings.Split(u.email, "@")[0],
			"password": testPassword, "role": u.role, "domain": u.domain, "groups": u.groups})
		wantStatus(t, r, http.StatusCreated)
		var out createdUser
		r.JSON(t, &out)
		e.keys[u.email] = out.Keypair
	}
	var me api.List[api.Keypair]
	r := testcluster.Do(t, http.MethodGet, e.url("/v1/keypairs?user="+url.QueryEscape(testcluster.AdminEmail)), admin, nil)
	wantStatus(t, r, http.StatusOK)
	r.JSON(t, &me)
	e.keys[testcluster.AdminEmail] = me.Items[0]
	return e
}

// day is 2026-03-d h:00 UTC.
func day(d, h int) time.Time { return time.Date(2026, 3, d, h, 0, 0, 0, time.UTC) }

// usageFixture runs the sessions the rollup and scope tests read, and
// stops the clock at 2026-03-12 00:00:
//
//	alice 2 cpu  10th 08:00–10:00        TERMINATED
//	bob   1 cpu  10th 23:00–11th 01:00   ERROR
//	admin 1 cpu  11th 00:00–01:00        TERMINATED
//	carl  4 cpu  11th 12:00–             running
func usageFixture(t *testing.T) *usageEnv {
	e := newUsageEnv(t)
	e.run(aliceEmail, 2, day(10, 8), day(10, 10), false)
	e.run(bobEmail, 1, day(10, 23), day(11, 1), true)
	e.run(testcluster.AdminEmail, 1, day(11, 0), day(11, 1), false)
	e.run(carlEmail, 4, day(11, 12), time.Time{}, false)
	e.at(day(12, 0))
	return e
}

// usage asks GET /v1/usage with the query and renders each item as
// "PERIOD KEY cpu=… started/finished/failed".
func (e *usageEnv) usage(token, query string) []string {
	e.t.Helper()
	r := testcluster.Do(e.t, http.MethodGet, e.url("/v1/usage?"+query), token, nil)
	wantStatus(e.t, r, http.StatusOK)
	var out api.Usage
	r.JSON(e.t, &out)
	var lines []string
	for _, it := range out.Items {
		lines = append(lines, fmt.Sprintf("%s %s cpu=%s %d/%d/%d", it.Period, it.Key, it.Allocated.CPU, it.Sessions.Started, it.Sessions.Finished, it.Sessions.Failed))
	}
	return lines
}

func wantLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\n got\n  %s\n want\n  %s", what, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

func TestUsageRollsUpPerUserGroupDomainAndKeypairByDayAndMonth(t *testing.T) {
	t.Parallel()
	e := usageFixture(t)
	span := "from=2026-03-10&to=2026-03-12"
	wantLines(t, "per user and day", e.usage(e.admin, span+"&group_by=user&step=day"), []string{
		"2026-03-10 alice@example.com cpu=14400 1/1/0",
		"2026-03-10 bob@example.com cpu=3600 1/0/0",
		"2026-03-11 admin@berth.local cpu=3600 1/1/0",
		"2026-03-11 bob@example.com cpu=3600 0/0/1",
		"2026-03-11 carl@example.com cpu=172800 1/0/0",
	})
	wantLines(t, "per domain and month", e.usage(e.admin, span+"&group_by=domain&step=month"), []string{
		"2026-03 d2 cpu=172800 1/0/0",
		"2026-03 default cpu=25200 3/2/1",
	})
	wantLines(t, "per group and month (a user in two groups counts in both, one in none under DOMAIN/)",
		e.usage(e.admin, span+"&group_by=group&step=month"), []string{
			"2026-03 d2/ cpu=172800 1/0/0",
			"2026-03 default/default cpu=25200 3/2/1",
			"2026-03 default/ml cpu=14400 1/1/0",
		})
	wantLines(t, "per keypair", e.usage(e.admin, span+"&group_by=keypair&step=month"), sortedLines(
		"2026-03 "+e.keys[aliceEmail].AccessKey+" cpu=14400 1/1/0",
		"2026-03 "+e.keys[bobEmail].AccessKey+" cpu=7200 1/0/1",
		"2026-03 "+e.keys[testcluster.AdminEmail].AccessKey+" cpu=3600 1/1/0",
		"2026-03 "+e.keys[carlEmail].AccessKey+" cpu=172800 1/0/0"))
	wantLines(t, "one day", e.usage(e.admin, "from=2026-03-11&to=2026-03-11&group_by=domain"), []string{
		"2026-03-11 d2 cpu=172800 1/0/0",
		"2026-03-11 default cpu=7200 1/1/1",
	})
	// The running session goes on counting as the clock moves.
	e.at(day(12, 6))
	wantLines(t, "six hours later", e.usage(e.admin, "from=2026-03-12&to=2026-03-12&group_by=user"), []string{
		"2026-03-12 carl@example.com cpu=86400 0/0/0",
	})
	// Every item has every slot, mem in byte-seconds.
	r := testcluster.Do(t, http.MethodGet, e.url("/v1/usage?from=2026-03-10&to=2026-03-10&group_by=user"), e.admin, nil)
	if !strings.Contains(string(r.Body), `"allocated":{"cpu":"14400","mem":"7730941132800","cuda.device":"0","cuda.shares":"0"}`) &&
		!strings.Contains(string(r.Body), `"allocated":{"cpu":14400,"mem":7730941132800,"cuda.device":0,"cuda.shares":0}`) {
		t.Errorf("alice's day: %s", r.Body)
	}
}

func sortedLines(lines ...string) []string {
	out := append([]string(nil), lines...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// A user who asks for everyone's usage, any way rolled up, gets their own
// only; an admin gets their domain's users but not a superadmin's; an admin
// of d2 gets nothing of default. The superadmin's own view (the first
// check) shows the others are there to be seen.
func TestUsageReachesOnlyWhatTheCallerMaySee(t *testing.T) {
	t.Parallel()
	e := usageFixture(t)
	span := "from=2026-03-10&to=2026-03-12&step=month"
	all := e.usage(e.admin, span+"&group_by=user")
	if len(all) != 4 {
		t.Fatalf("the superadmin sees %v", all)
	}
	alice := testcluster.Login(t, e.s, aliceEmail, testPassword)
	for _, groupBy := range []string{"user", "domain", "group", "keypair"} {
		got := e.usage(alice, span+"&group_by="+groupBy)
		if len(got) == 0 || strings.Contains(strings.Join(got, " "), "7200") || strings.Contains(strings.Join(got, " "), "172800") {
			t.Errorf("alice by %s sees %v", groupBy, got)
		}
		for _, l := range got {
			if !strings.Contains(l, "cpu=14400 1/1/0") {
				t.Errorf("alice by %s sees more than her own: %v", groupBy, got)
			}
		}
	}
	// Her keypair's signature acts as her, whatever the query.
	signed := send(t, signedRequest(t, http.MethodGet, e.url("/v1/usage?"+span+"&group_by=domain"), e.keys[aliceEmail], nil, e.clock.Now()))
	wantStatus(t, signed, http.StatusOK)
	if !strings.Contains(string(signed.Body), `"key":"default"`) || strings.Contains(string(signed.Body), "25200") {
		t.Errorf("alice's keypair by domain: %s", signed.Body)
	}
	dana := testcluster.Login(t, e.s, danaEmail, testPassword)
	wantLines(t, "an admin of default", e.usage(dana, span+"&group_by=user"), []string{
		"2026-03 alice@example.com cpu=14400 1/1/0",
		"2026-03 bob@example.com cpu=7200 1/0/1",
	})
	dora := testcluster.Login(t, e.s, doraEmail, testPassword)
	wantLines(t, "an admin of d2", e.usage(dora, span+"&group_by=domain"), []string{"2026-03 d2 cpu=172800 1/0/0"})
	carl := testcluster.Login(t, e.s, carlEmail, testPassword)
	wantLines(t, "carl's CSV", csvLines(t, e, carl, span+"&group_by=user"), []string{
		"2026-03,user,carl@example.com,172800,46385646796800,0,0,1,0,0,0,0",
	})
	for _, tok := range []string{dora, carl} {
		r := testcluster.Do(t, http.MethodGet, e.url("/v1/export/usage.csv?"+span+"&group_by=user"), tok, nil)
		if strings.Contains(string(r.Body), "example.com,14400") || strings.Contains(string(r.Body), "admin@berth.local") {
			t.Errorf("the CSV leaks default's usage to d2: %s", r.Body)
		}
	}
	wantStatus(t, testcluster.Do(t, http.MethodGet, e.url("/v1/usage"), "", nil), http.StatusUnauthorized)
}

// csvLines downloads the usage CSV and returns its rows after the header,
// checking the header and the download's headers.
func csvLines(t *testing.T, e *usageEnv, token, query string) []string {
	t.Helper()
	r := testcluster.Do(t, http.MethodGet, e.url("/v1/export/usage.csv?"+query), token, nil)
	wantStatus(t, r, http.StatusOK)
	if ct := r.Header.Get("Content-Type"); ct != "text/csv; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if cd := r.Header.Get("Content-Disposition"); !strings.HasPrefix(cd, "attachment") || !strings.Contains(cd, ".csv") {
		t.Errorf("Content-Disposition %q", cd)
	}
	rows, err := csv.NewReader(strings.NewReader(string(r.Body))).ReadAll()
	if err != nil {
		t.Fatalf("CSV %s: %v", r.Body, err)
	}
	header := "period,group_by,key,allocated.cpu,allocated.mem,allocated.cuda.device,allocated.cuda.shares,sessions.started,sessions.finished,sessions.failed,measured.cpu_seconds,measured.peak_mem_bytes"
	if len(rows) == 0 || strings.Join(rows[0], ",") != header {
		t.Fatalf("CSV header %v", rows)
	}
	var out []string
	for _, row := range rows[1:] {
		out = append(out, strings.Join(row, ","))
	}
	return out
}

func TestUsageCSVHasOneRowPerItemWithTheMapsFlattened(t *testing.T) {
	t.Parallel()
	e := usageFixture(t)
	// What agents measured of alice's session, written as the leader does.
	e.propose(fsm.SessionsMeasured{At: day(10, 9), Sessions: []fsm.SessionMeasure{{SessionID: "s-usage000001",
		Containers: []fsm.ContainerMeasure{{Index: 0, CPUMillis: 5_250}}, PeakMemBytes: 123456}}})
	wantLines(t, "usage by domain", csvLines(t, e, e.admin, "from=2026-03-10&to=2026-03-11&group_by=domain&filename=march"), []string{
		"2026-03-10,domain,default,18000,11596411699200,0,0,2,1,0,5.25,123456",
		"2026-03-11,domain,d2,172800,46385646796800,0,0,1,0,0,0,0",
		"2026-03-11,domain,default,7200,7730941132800,0,0,1,1,1,0,0",
	})
	r := testcluster.Do(t, http.MethodGet, e.url("/v1/export/usage.csv?from=2026-03-10&to=2026-03-11&filename=march"), e.admin, nil)
	if cd := r.Header.Get("Content-Disposition"); !strings.Contains(cd, `filename=march.csv`) {
		t.Errorf("Content-Disposition %q", cd)
	}
}

func TestUsageRefusesBadQueriesWithEveryReason(t *testing.T) {
	t.Parallel()
	e := newUsageEnv(t)
	for _, c := range []struct {
		name, query string
		want        map[string][]string
	}{
		{"from after to", "from=2026-03-10&to=2026-03-09", map[string][]string{"from": {"from (2026-03-10) is after to (2026-03-09)"}}},
		{"over 400 days at day step", "from=2025-01-01&to=2026-03-01",
			map[string][]string{"to": {"a day-step query spans at most 400 days (this one 425); narrow from and to, or ask step=month"}}},
		{"400 days at month step is fine, 121 months is not", "from=2016-01-01&to=2026-01-31&step=month",
			map[string][]string{"to": {"a month-step query spans at most 120 months (this one 121); narrow from and to"}}},
		{"unknown group_by and step, a bad date, all at once", "from=yesterday&group_by=team&step=week",
			map[string][]string{
				"group_by": {`group_by must be one of user, group, domain, keypair, not "team"`},
				"step":     {`step must be day or month, not "week"`},
				"from":     {`from must be a date as YYYY-MM-DD (UTC), not "yesterday"`},
			}},
		{"a time is not a date", "to=2026-03-10T00:00:00Z", map[string][]string{"to": {`to must be a date as YYYY-MM-DD (UTC), not "2026-03-10T00:00:00Z"`}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, path := range []string{"/v1/usage?", "/v1/export/usage.csv?"} {
				p := wantProblem(t, testcluster.Do(t, http.MethodGet, e.url(path+c.query), e.admin, nil), http.StatusBadRequest, api.ProblemValidation)
				wantFields(t, p, c.want)
			}
		})
	}
	// The CSV's file name is refused with the query's problems.
	p := wantProblem(t, testcluster.Do(t, http.MethodGet, e.url("/v1/export/usage.csv?group_by=team&filename=a/b"), e.admin, nil),
		http.StatusBadRequest, api.ProblemValidation)
	if r := fieldReasons(p); len(r["group_by"]) != 1 || len(r["filename"]) != 1 {
		t.Errorf("fields %v", r)
	}
	// 400 days exactly is allowed.
	wantStatus(t, testcluster.Do(t, http.MethodGet, e.url("/v1/usage?from=2025-02-04&to=2026-03-10"), e.admin, nil), http.StatusOK)
}

// Finished sessions are collected after the retention, in batches; a GET
// of one says it was collected and when, to whoever could see it, and
// nothing to anyone else; its usage stays.
func TestCollectedSessionsAnswer404SayingWhenAndKeepTheirUsage(t *testing.T) {
	t.Parallel()
	e := newUsageEnv(t, func(c *server.Config) {
		c.SessionRetention, c.CollectEvery = time.Minute, 20*time.Millisecond
	})
	// The leader collects as soon as its clock passes an end by the
	// retention: every session ends within 20 s of 11:00, and the clock
	// stays before that until the test moves it past.
	var ended []string
	for i := range 3 {
		ended = append(ended, e.run(aliceEmail, 1, day(10, 8).Add(time.Duration(i)*30*time.Minute),
			day(10, 11).Add(time.Duration(i)*10*time.Second), i == 2))
	}
	live := e.run(aliceEmail, 1, day(10, 10), time.Time{}, false)
	before := e.usage(e.admin, "from=2026-03-10&to=2026-03-10&group_by=user")
	// A blocking GET of an ended session, waiting past its last write,
	// when the session is collected under it: it answers as a GET after
	// the collection does.
	last := testcluster.Do(t, http.MethodGet, e.url("/v1/sessions/"+ended[2]), e.admin, nil)
	wantStatus(t, last, http.StatusOK)
	blocked := make(chan *testcluster.Response, 1)
	go func() {
		blocked <- testcluster.Do(t, http.MethodGet, e.url("/v1/sessions/"+ended[2]+"?wait=60s&index="+last.Header.Get("X-Berth-Index")), e.admin, nil)
	}()
	e.at(day(10, 11).Add(90 * time.Second)) // the last one ended 70 s ago
	collectedAt := e.clock.Now()
	testcluster.Eventually(t, 15*time.Second, func() error {
		for _, id := range ended {
			if r := testcluster.Do(t, http.MethodGet, e.url("/v1/sessions/"+id), e.admin, nil); r.Status != http.StatusNotFound {
				return fmt.Errorf("%s: %d", id, r.Status)
			}
		}
		return nil
	})
	alice := testcluster.Login(t, e.s, aliceEmail, testPassword)
	dana := testcluster.Login(t, e.s, danaEmail, testPassword)
	for _, tok := range []string{alice, dana, e.admin} {
		p := wantProblem(t, testcluster.Do(t, http.MethodGet, e.url("/v1/sessions/"+ended[0]), tok, nil), http.StatusNotFound, api.ProblemNotFound)
		wantDetail(t, p, "session "+ended[0]+" was collected at "+collectedAt.Format(time.RFC3339), "it ended at "+day(10, 11).Format(time.RFC3339), "-session-retention")
	}
	select {
	case r := <-blocked:
		p := wantProblem(t, r, http.StatusNotFound, api.ProblemNotFound)
		wantDetail(t, p, "session "+ended[2]+" was collected at")
	case <-time.After(30 * time.Second):
		t.Fatal("the blocking GET of a collected session did not answer")
	}
	// Who could not see the session learns nothing: not even that it was.
	bob := testcluster.Login(t, e.s, bobEmail, testPassword)
	dora := testcluster.Login(t, e.s, doraEmail, testPassword)
	for _, tok := range []string{bob, dora} {
		for _, method := range []string{http.MethodGet, http.MethodDelete} {
			p := wantProblem(t, testcluster.Do(t, method, e.url("/v1/sessions/"+ended[0]), tok, nil), http.StatusNotFound, api.ProblemNotFound)
			if p.Detail != "no session "+ended[0] {
				t.Errorf("%s %s to a stranger: %q", method, ended[0], p.Detail)
			}
		}
	}
	// The owner's DELETE gets the same answer as the GET.
	p := wantProblem(t, testcluster.Do(t, http.MethodDelete, e.url("/v1/sessions/"+ended[1]), alice, nil), http.StatusNotFound, api.ProblemNotFound)
	wantDetail(t, p, "was collected at")
	if got := e.get(e.admin, live); got.Status != api.SessionRunning {
		t.Errorf("the running session is %s", got.Status)
	}
	e.at(day(10, 10)) // the same now as before, for the running session
	wantLines(t, "usage after the collection", e.usage(e.admin, "from=2026-03-10&to=2026-03-10&group_by=user"), before)
}
