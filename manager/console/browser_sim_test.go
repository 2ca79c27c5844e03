package console_test

import (
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/berth-cluster/berth/manager/server"
	"github.com/berth-cluster/berth/manager/testcluster"
)

// The console marks a simulated agent (berth-agent -runtime sim) on the
// Agents and Information pages, and only that one.
func TestConsoleMarksSimulatedAgents(t *testing.T) {
	chromiumPath(t)
	s := testcluster.StartDev(t, func(cfg *server.Config) {
		cfg.AgentToken = agentToken
		cfg.AllowSimulatedAgents = true
	}).Servers[0]
	real := registerAgentAs(t, s, agentToken, "127.0.0.1:2", false)
	sim := registerAgentAs(t, s, agentToken, "127.0.0.1:3", true)
	b := startBrowser(t, testcluster.URL(s))
	b.do("open the console", chromedp.Navigate(b.base+"/"), chromedp.WaitVisible(chromedp.CSS("#login-email")))
	b.login(testcluster.AdminEmail, testcluster.AdminPassword)
	b.nav("agents")
	b.do("agents", waitText("#agents-list", "127.0.0.1:3"), waitText(`#agents-list [data-simulated="`+sim+`"]`, "simulated"),
		waitJS(`!document.querySelector('#agents-list [data-simulated="`+real+`"]')`),
		waitJS(`document.querySelectorAll('#agents-list [data-simulated]').length === 1`))
	b.shot("90-agents-simulated")
	b.nav("info")
	b.do("information", waitText("#agents-list", "ALIVE (simulated)"),
		waitJS(`[...document.querySelectorAll('#agents-list tbody tr')].filter(r => r.textContent.includes("(simulated)")).length === 1`))
}
