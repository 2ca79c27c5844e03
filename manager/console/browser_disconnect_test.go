package console_test

import (
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/berth-cluster/berth/manager/server"
	"github.com/berth-cluster/berth/manager/testcluster"
)

// An agent silent past the heartbeat timeout, within the grace, is on the
// Agents page's DISCONNECTED tab with since when and until when, and the
// Information page counts it.
func TestConsoleShowsDisconnectedAgents(t *testing.T) {
	chromiumPath(t)
	s := testcluster.StartDev(t, func(cfg *server.Config) {
		cfg.AgentToken = agentToken
		cfg.HeartbeatTimeout, cfg.DisconnectGrace = 300*time.Millisecond, time.Hour
	}).Servers[0]
	silent := registerAgent(t, s, agentToken, "127.0.0.1:4") // it never beats
	b := startBrowser(t, testcluster.URL(s))
	b.do("open the console", chromedp.Navigate(b.base+"/"), chromedp.WaitVisible(chromedp.CSS("#login-email")))
	b.login(testcluster.AdminEmail, testcluster.AdminPassword)
	b.open("agents?status=DISCONNECTED")
	b.do("the disconnected tab", waitText(`#agents-list [data-disconnected="`+silent+`"]`, "disconnected"),
		waitText(`#agents-list [data-status-info="`+silent+`"]`, "disconnected since"))
	b.shot("91-agents-disconnected")
	b.nav("info")
	b.do("information", waitText("#info-agents", "1 disconnected"), waitText("#agents-list", "DISCONNECTED"))
}
