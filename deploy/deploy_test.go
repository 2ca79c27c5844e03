package deploy_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metricsql"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"gopkg.in/yaml.v3"

	"github.com/berth-cluster/berth/agent"
	"github.com/berth-cluster/berth/agent/runtime"
	"github.com/berth-cluster/berth/manager/testcluster"
)

// exported is every series name a dev manager and an agent export, plus
// Prometheus's own up.
func exported(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{"up": true}

	c := testcluster.StartDev(t)
	// The request series exist once a request was answered.
	if r := testcluster.Do(t, http.MethodGet, testcluster.URL(c.Servers[0])+"/healthz", "", nil); r.Status != http.StatusOK {
		t.Fatalf("healthz: %d", r.Status)
	}
	r := testcluster.Do(t, http.MethodGet, testcluster.URL(c.Servers[0])+"/metrics", "", nil)
	if r.Status != http.StatusOK {
		t.Fatalf("scrape the manager: %d", r.Status)
	}
	sc := bufio.NewScanner(bytes.NewReader(r.Body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		names[strings.FieldsFunc(line, func(r rune) bool { return r == '{' || r == ' ' })[0]] = true
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}

	// The agent registers its series when it is made; it never runs here.
	// Labelled series show only once a value was set, so names are taken
	// from what is registered, not only from what is gathered.
	reg := prometheus.NewRegistry()
	rec := &recorder{Registerer: reg, names: names}
	if _, err := agent.New(agent.Config{Managers: []string{"http://127.0.0.1:1"}, Token: "t", StateDir: t.TempDir(),
		HTTPAddr: "127.0.0.1:0", Runtime: unusedRuntime{}, Metrics: rec, Gatherer: reg,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		n := mf.GetName()
		names[n] = true
		switch mf.GetType() {
		case dto.MetricType_HISTOGRAM:
			names[n+"_bucket"], names[n+"_sum"], names[n+"_count"] = true, true, true
		case dto.MetricType_SUMMARY:
			names[n+"_sum"], names[n+"_count"] = true, true
		}
	}
	return names
}

// recorder notes the name of every series registered through it.
type recorder struct {
	prometheus.Registerer
	names map[string]bool
}

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

func (r *recorder) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc)
	go func() { c.Describe(ch); close(ch) }()
	for d := range ch {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			r.names[m[1]] = true
		}
	}
	return r.Registerer.Register(c)
}

func (r *recorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// unusedRuntime satisfies the agent's constructor; nothing calls it.
type unusedRuntime struct{ runtime.Runtime }

// metricNames parses a PromQL expression (with MetricsQL's parser, a
// superset of PromQL) and returns the metric names it reads.
func metricNames(t *testing.T, expr string) []string {
	t.Helper()
	e, err := metricsql.Parse(expr)
	if err != nil {
		t.Errorf("expression does not parse: %v\n%s", err, expr)
		return nil
	}
	var out []string
	metricsql.VisitAll(e, func(x metricsql.Expr) {
		me, ok := x.(*metricsql.MetricExpr)
		if !ok {
			return
		}
		for _, group := range me.LabelFilterss {
			for _, f := range group {
				if f.Label == "__name__" {
					out = append(out, f.Value)
				}
			}
		}
	})
	if len(out) == 0 {
		t.Errorf("expression reads no metric: %s", expr)
	}
	return out
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(strings.NewReader(string(raw)))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func TestAlertRulesParseAndReadExportedMetrics(t *testing.T) {
	var rf ruleFile
	readYAML(t, filepath.Join("prometheus", "alerts.yml"), &rf)
	names := exported(t)
	seen := map[string]bool{}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || seen[r.Alert] {
				t.Errorf("group %s: alert name %q is empty or repeated", g.Name, r.Alert)
			}
			seen[r.Alert] = true
			if r.For != "" {
				if _, err := time.ParseDuration(r.For); err != nil {
					t.Errorf("%s: for %q: %v", r.Alert, r.For, err)
				}
			}
			if r.Labels["severity"] == "" || r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("%s: needs a severity label, a summary and a description", r.Alert)
			}
			for _, m := range metricNames(t, r.Expr) {
				if !names[m] {
					t.Errorf("%s reads %s, which neither daemon exports", r.Alert, m)
				}
			}
		}
	}
	// The conditions deploy/README.md promises alerts for.
	for _, want := range []string{"BerthNoLeader", "BerthAgentLost", "BerthPendingQueueGrowing", "BerthUsageDrift", "BerthRaftApplySlow"} {
		if !seen[want] {
			t.Errorf("alerts.yml has no %s rule", want)
		}
	}
}

func TestDashboardParsesAndReadsExportedMetrics(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("grafana", "berth.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		UID    string `json:"uid"`
		Panels []struct {
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("berth.json: %v", err)
	}
	names := exported(t)
	queries := 0
	for _, p := range dash.Panels {
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			queries++
			// Grafana fills $__rate_interval in before Prometheus sees it.
			expr := strings.ReplaceAll(tg.Expr, "$__rate_interval", "1m")
			for _, m := range metricNames(t, expr) {
				if !names[m] {
					t.Errorf("panel %q reads %s, which neither daemon exports", p.Title, m)
				}
			}
		}
	}
	if dash.UID == "" || queries == 0 {
		t.Fatalf("dashboard uid %q with %d queries", dash.UID, queries)
	}
}

func TestPrometheusConfigScrapesBothDaemonsOverTLS(t *testing.T) {
	var cfg struct {
		Global        map[string]any   `yaml:"global"`
		RuleFiles     []string         `yaml:"rule_files"`
		Alerting      map[string]any   `yaml:"alerting"`
		ScrapeConfigs []map[string]any `yaml:"scrape_configs"`
	}
	readYAML(t, filepath.Join("prometheus", "prometheus.yml"), &cfg)
	if len(cfg.RuleFiles) == 0 {
		t.Error("no rule_files: the alerts would not load")
	}
	var jobs []string
	for _, sc := range cfg.ScrapeConfigs {
		jobs = append(jobs, sc["job_name"].(string))
		if sc["scheme"] != "https" {
			t.Errorf("job %s scrapes over %v, want https", sc["job_name"], sc["scheme"])
		}
	}
	slices.Sort(jobs)
	if !slices.Equal(jobs, []string{"berth-agent", "berth-manager"}) {
		t.Errorf("scrape jobs %v, want berth-agent and berth-manager (the alert rules name them)", jobs)
	}
}

// The units load their flags from /etc/berth/*.env and start the binaries
// deploy/README.md installs.
func TestSystemdUnitsNameTheirEnvironmentAndBinary(t *testing.T) {
	for unit, bin := range map[string]string{"berth-manager.service": "berth-manager", "berth-agent.service": "berth-agent"} {
		raw, err := os.ReadFile(filepath.Join("systemd", unit))
		if err != nil {
			t.Fatal(err)
		}
		sections := map[string]map[string][]string{}
		var cur string
		for _, line := range strings.Split(string(raw), "\n") {
			line = strings.TrimSpace(line)
			switch {
			case line == "" || strings.HasPrefix(line, "#"):
			case strings.HasPrefix(line, "["):
				cur = strings.Trim(line, "[]")
				sections[cur] = map[string][]string{}
			default:
				k, v, ok := strings.Cut(line, "=")
				if !ok || cur == "" {
					t.Fatalf("%s: line %q is not KEY=VALUE in a section", unit, line)
				}
				sections[cur][k] = append(sections[cur][k], v)
			}
		}
		svc := sections["Service"]
		if sections["Unit"] == nil || svc == nil || sections["Install"] == nil {
			t.Fatalf("%s: sections %v", unit, sections)
		}
		if ef := svc["EnvironmentFile"]; len(ef) != 1 || !strings.HasPrefix(ef[0], "/etc/berth/") || !strings.HasSuffix(ef[0], ".env") {
			t.Errorf("%s: EnvironmentFile %v", unit, ef)
		}
		if es := svc["ExecStart"]; len(es) != 1 || es[0] != "/usr/local/bin/"+bin {
			t.Errorf("%s: ExecStart %v", unit, es)
		}
	}
}
