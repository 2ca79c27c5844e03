package console_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/berth-cluster/berth/manager/fsm"
	"github.com/berth-cluster/berth/manager/server"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/slots"
)

// setClock is a manager clock the test sets.
type setClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *setClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *setClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// TestConsoleStatisticsShowsUsageOverTime opens the Statistics page in a
// real browser against a real manager holding yesterday's sessions: the
// chart and the table show the user's own usage only, the grouping and the
// chart's measure change through the form, a bad range is refused under
// its field, the CSV export downloads, and an admin sees every user of the
// domain.
func TestConsoleStatisticsShowsUsageOverTime(t *testing.T) {
	// Not parallel: one chromium at a time.
	chromiumPath(t)
	now := time.Now().UTC()
	y := now.Add(-24 * time.Hour)
	yesterday := y.Format(state.DayLayout)
	at := func(h, m int) time.Time { return time.Date(y.Year(), y.Month(), y.Day(), h, m, 0, 0, time.UTC) }
	clock := &setClock{now: at(9, 0)}
	c := testcluster.StartFake(t, func(cfg *server.Config) {
		cfg.AgentToken = agentToken
		cfg.Now = clock.Now
		// The agent never beats; it must stay ALIVE while the clock moves
		// through yesterday.
		cfg.HeartbeatTimeout = 72 * time.Hour
	})
	s := c.Servers[0]
	admin := testcluster.Login(t, s, testcluster.AdminEmail, testcluster.AdminPassword)
	var created struct {
		Keypair api.Keypair `json:"keypair"`
	}
	adminDo(t, s, admin, http.MethodPost, "/v1/users", map[string]any{"email": annEmail, "username": "ann", "password": annPassword},
		http.StatusCreated).JSON(t, &created)
	var mine api.List[api.Keypair]
	apiGet(t, s, admin, "/v1/keypairs?user="+testcluster.AdminEmail, &mine)
	agent := registerAgent(t, s, agentToken, "127.0.0.1:1")

	// Yesterday: ann 2 cores 10:00–12:00 and 1 core 13:00–13:30 (failed),
	// the superadmin 1 core 10:00–11:00. The manager's clock stands at
	// each placement, so whoever places the session (this test's plan or
	// the scheduler) places it then.
	n := 0
	run := func(ak string, cores int64, from, to time.Time, failed bool) {
		t.Helper()
		n++
		id := fmt.Sprintf("s-stats%07d", n)
		clock.set(from)
		propose := func(cmd fsm.Command) {
			t.Helper()
			if r, err := s.Propose(context.Background(), cmd); err != nil || r.Err != nil {
				t.Fatalf("%T: %v %v", cmd, err, r.Err)
			}
		}
		propose(fsm.SessionCreate{Session: state.Session{ID: id, AccessKey: ak, Image: "berth/base:latest", Type: api.SessionBatch,
			ClusterSize: 1, Requested: slots.Slots{slots.CPU: cores * 1000, slots.Mem: 4 << 30}, CreatedAt: from}})
		propose(fsm.Plan{Version: fsm.PlanVersion, At: from, Placements: []fsm.Placement{{SessionID: id, Containers: []fsm.PlacedContainer{{Agent: agent}}}}})
		testcluster.Eventually(t, 10*time.Second, func() error {
			ses, _ := s.State().Read().Session(id)
			if ses == nil || !ses.Status.Occupying() {
				return fmt.Errorf("session %s not placed", id)
			}
			return nil
		})
		end := fsm.ContainerReport{SessionID: id, Status: api.ContainerExited, ExitCode: new(int)}
		if failed {
			end = fsm.ContainerReport{SessionID: id, Status: api.ContainerFailed, Reason: "broke"}
		}
		propose(fsm.SessionsReport{At: from, Agent: agent, Reports: []fsm.ContainerReport{{SessionID: id, Status: api.ContainerRunning}}})
		clock.set(to)
		propose(fsm.SessionsReport{At: to, Agent: agent, Reports: []fsm.ContainerReport{end}})
	}
	run(created.Keypair.AccessKey, 2, at(10, 0), at(12, 0), false)
	run(created.Keypair.AccessKey, 1, at(13, 0), at(13, 30), true)
	run(mine.Items[0].AccessKey, 1, at(10, 0), at(11, 0), false)
	clock.set(now)

	step := func(name string, f func(t *testing.T)) {
		t.Helper()
		if !t.Run(name, f) {
			t.FailNow()
		}
	}
	b := startBrowser(t, testcluster.URL(s))
	b.do("open the console", chromedp.Navigate(b.base+"/"), chromedp.WaitVisible(chromedp.CSS("#login-email")))

	step("a user sees a chart and a table of their own usage", func(t *testing.T) {
		b.t = t
		b.login(annEmail, annPassword)
		b.nav("statistics")
		bar := fmt.Sprintf(`#usage-chart g[data-period=%s] rect[data-key=%s]`, js(yesterday), js(annEmail))
		b.do("chart and table",
			chromedp.WaitVisible(chromedp.CSS("#usage-chart")),
			waitJS(fmt.Sprintf(`Math.abs(Number(document.querySelector(%s)?.dataset.value) - 4.5) < 1e-9`, js(bar))),
			waitText("#usage-table", annEmail),
			waitJS(fmt.Sprintf(`(() => { const r = %s; return r && r.children[1].textContent === "4.5" && r.children[5].textContent === "2" && r.children[7].textContent === "1"; })()`,
				rowWith("usage-table", annEmail))))
		if got := b.eval(`document.querySelector("#page").textContent.includes(` + js(testcluster.AdminEmail) + `) ? "leak" : ""`); got != "" {
			t.Fatal("a user's Statistics page shows the superadmin's usage")
		}
		b.shot("statistics-user")
	})

	step("the grouping and the chart's measure change through the form", func(t *testing.T) {
		b.t = t
		b.do("per domain, sessions started", choose("#usage-group-by", "domain"), choose("#usage-measure", "started"), click("#usage-apply"),
			waitJS(`location.hash.includes("group_by=domain") && location.hash.includes("measure=started")`), pageLoaded(),
			waitJS(fmt.Sprintf(`Number(document.querySelector(%s)?.dataset.value) === 2`,
				js(fmt.Sprintf(`#usage-chart g[data-period="%s"] rect[data-key="default"]`, yesterday)))),
			waitText("#usage-table", "default"))
	})

	step("a range that ends before it starts is refused under its field", func(t *testing.T) {
		b.t = t
		b.do("from after to", setValue("#usage-from", "2026-03-10"), setValue("#usage-to", "2026-03-01"), click("#usage-apply"), pageLoaded(),
			waitText(fieldError("usage-from"), "from (2026-03-10) is after to (2026-03-01)"))
	})

	step("the CSV export downloads what the table shows", func(t *testing.T) {
		b.t = t
		b.open("statistics?group_by=user&step=month")
		b.do("export", click("#usage-export"), chromedp.WaitVisible(chromedp.CSS("#export-dialog")),
			typeIn("#export-filename", "ann-usage"), click("#export-submit"))
		csv := b.downloaded("ann-usage.csv")
		month := yesterday[:7]
		for _, want := range []string{"period,group_by,key,allocated.cpu,allocated.mem", month + ",user," + annEmail + ",16200,"} {
			if !strings.Contains(csv, want) {
				t.Errorf("the export lacks %q:\n%s", want, csv)
			}
		}
		if strings.Contains(csv, testcluster.AdminEmail) {
			t.Errorf("ann's export holds the superadmin's usage:\n%s", csv)
		}
	})

	step("the superadmin sees everyone's usage", func(t *testing.T) {
		b.t = t
		b.logout()
		b.login(testcluster.AdminEmail, testcluster.AdminPassword)
		b.nav("statistics")
		b.do("both users", waitText("#usage-table", annEmail), waitText("#usage-table", testcluster.AdminEmail),
			waitJS(fmt.Sprintf(`document.querySelectorAll(%s).length === 2`, js(fmt.Sprintf(`#usage-chart g[data-period="%s"] rect`, yesterday)))))
		b.shot("statistics-admin")
	})
}
