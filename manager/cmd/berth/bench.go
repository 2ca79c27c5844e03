package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/client"
	"github.com/berth-cluster/berth/shared/slots"
)

func (c *cli) benchCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Load generators for the public API (run them against a cluster of simulated agents, not one that serves people)",
	}
	cmd.AddCommand(c.benchSessionsCmd())
	return cmd
}

// benchSessions is berth bench sessions: N sessions created by CONC
// concurrent callers through the client package, each followed until it is
// RUNNING (or SCHEDULED), then terminated.
type benchSessions struct {
	n, conc int
	wait    string // running or scheduled
	poll    time.Duration
	timeout time.Duration // for every session to reach the state
	keep    bool
	req     api.SessionCreate
	now     func() time.Time
	// progress, when set, is told now and then how far the run is.
	progress func(created, reached int)
}

// benchResult is what a run measured. Latencies are from each session's
// created_at to the moment its status history says it reached the state,
// both on the manager's clock, so the poll interval does not blur them;
// wall time and the create round trips are the caller's clock.
type benchResult struct {
	Wait         string `json:"wait"`
	Sessions     int    `json:"sessions"`
	Concurrency  int    `json:"concurrency"`
	Created      int    `json:"created"`
	CreateErrors int    `json:"create_errors"`
	Reached      int    `json:"reached"`
	// Failed ended (or was cancelled) before it reached the state.
	Failed     int    `json:"failed"`
	FirstError string `json:"first_error,omitempty"`
	// SessionsPerSecond is Reached over the manager's span from the first
	// created_at to the last session reaching the state.
	SessionsPerSecond float64 `json:"sessions_per_second"`
	// CreatesPerSecond is Created over the caller's time to create them all.
	CreatesPerSecond float64 `json:"creates_per_second"`
	// WallSeconds is the caller's time from the first create sent to the
	// poll that saw the last session reach the state.
	WallSeconds   float64     `json:"wall_seconds"`
	LatencyMS     percentiles `json:"latency_ms"`
	CreateMS      percentiles `json:"create_request_ms"`
	Terminated    int         `json:"terminated"`
	ManagerSpanMS float64     `json:"manager_span_ms"`
}

type percentiles struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// benchLimits bound what one run may ask for.
const (
	maxBenchSessions    = 1_000_000
	maxBenchConcurrency = 10_000
)

func (c *cli) benchSessionsCmd() *cobra.Command {
	b := benchSessions{now: time.Now}
	var cpu, mem, image, typ string
	cmd := &cobra.Command{
		Use:   "sessions -n N -c CONC [--wait running|scheduled] [flags] [-- COMMAND [ARG...]]",
		Short: "Create N sessions with CONC concurrent callers, wait until each is RUNNING (or SCHEDULED), print sessions/s and latency percentiles, then terminate them",
		Long: "Creates N sessions through the API with CONC callers at once, follows them until each reaches\n" +
			"the state (--wait), and prints sessions per second and the percentiles of create → state, taken\n" +
			"from each session's created_at and status history (the manager's clock), with the create\n" +
			"requests' own round trips. The sessions are terminated afterwards unless --keep.\n\n" +
			"Run it against a cluster of simulated agents (berth-agent -runtime sim -sim-count N, managers\n" +
			"with -allow-simulated-agents): the sessions are real to the managers, which place and follow\n" +
			"them, and cost the agents nothing. The command defaults to `sleep infinity`.",
		Example: "  berth bench sessions -n 20000 -c 64\n" +
			"  berth bench sessions -n 1000 -c 16 --wait scheduled --cpu 0.5 --mem 256MiB -o json",
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := b.setup(image, typ, cpu, mem, args); err != nil {
				return err
			}
			cfg, err := c.clientConfig()
			if err != nil {
				return err
			}
			// One pool with a connection per caller: Go's default keeps
			// two idle, and the run would measure new connections.
			tr := http.DefaultTransport.(*http.Transport).Clone()
			tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 2*b.conc+8, 2*b.conc+8
			tr.TLSClientConfig = cfg.TLS
			cfg.HTTPClient = &http.Client{Transport: tr}
			defer tr.CloseIdleConnections()
			cl, err := client.New(cfg)
			if err != nil {
				return err
			}
			b.progress = func(created, reached int) {
				fmt.Fprintf(c.stderr, "bench: %d/%d created, %d %s\n", created, b.n, reached, strings.ToUpper(b.wait))
			}
			res, err := b.run(cmd.Context(), cl)
			if err != nil {
				return err
			}
			if err := render(c.stdout, c.output, benchView(res)); err != nil {
				return err
			}
			if res.Reached < res.Sessions {
				return fmt.Errorf("%d of %d sessions did not reach %s (%d create errors, %d failed)%s",
					res.Sessions-res.Reached, res.Sessions, res.Wait, res.CreateErrors, res.Failed, firstError(res.FirstError))
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.IntVarP(&b.n, "sessions", "n", 0, "how many sessions to create")
	fl.IntVarP(&b.conc, "concurrency", "c", 8, "how many callers create at once")
	fl.StringVar(&b.wait, "wait", "running", "the state each session must reach: running or scheduled")
	fl.DurationVar(&b.poll, "poll", 250*time.Millisecond, "how often to list the sessions still short of the state (latencies come from the status history, not from this)")
	fl.DurationVar(&b.timeout, "timeout", 10*time.Minute, "how long to wait for every session to reach the state; those that have not count as failed")
	fl.BoolVar(&b.keep, "keep", false, "leave the sessions running afterwards")
	fl.StringVar(&image, "image", "berth/base:latest", "image of the sessions")
	fl.StringVar(&typ, "type", api.SessionInteractive, "interactive or batch")
	fl.StringVar(&cpu, "cpu", "0.1", "cores per session")
	fl.StringVar(&mem, "mem", "64MiB", "memory per session")
	return cmd
}

func firstError(s string) string {
	if s == "" {
		return ""
	}
	return "; first error: " + s
}

// setup checks the flags, every problem at once, and makes the request.
func (b *benchSessions) setup(image, typ, cpu, mem string, command []string) error {
	var bad []string
	if b.n < 1 || b.n > maxBenchSessions {
		bad = append(bad, fmt.Sprintf("-n %d: must be from 1 to %d", b.n, maxBenchSessions))
	}
	if b.conc < 1 || b.conc > maxBenchConcurrency {
		bad = append(bad, fmt.Sprintf("-c %d: must be from 1 to %d", b.conc, maxBenchConcurrency))
	}
	b.wait = strings.ToLower(b.wait)
	if b.wait != "running" && b.wait != "scheduled" {
		bad = append(bad, fmt.Sprintf("--wait %q: must be running or scheduled", b.wait))
	}
	if b.poll <= 0 {
		bad = append(bad, fmt.Sprintf("--poll %s: must be positive", b.poll))
	}
	if b.timeout <= 0 {
		bad = append(bad, fmt.Sprintf("--timeout %s: must be positive", b.timeout))
	}
	b.req = api.SessionCreate{Image: image, Type: typ, Command: command, Resources: slots.Slots{}}
	if len(b.req.Command) == 0 {
		b.req.Command = []string{"sleep", "infinity"}
	}
	if q, err := slots.Parse(slots.CPU, cpu); err != nil {
		bad = append(bad, "--cpu: "+err.Error())
	} else {
		b.req.Resources[slots.CPU] = q
	}
	if q, err := slots.ParseSize(mem); err != nil {
		bad = append(bad, "--mem: "+err.Error())
	} else {
		b.req.Resources[slots.Mem] = q
	}
	if len(bad) > 0 {
		return errors.New(strings.Join(bad, "; "))
	}
	return nil
}

// benchSession is one session of the run.
type benchSession struct {
	id         string
	sent, back time.Time // the create request, caller's clock
	err        error
	// seen: a poll found it no longer short of the state (caller's clock).
	seen time.Time
}

// run creates the sessions, waits for them and measures.
func (b *benchSessions) run(ctx context.Context, cl *client.Client) (benchResult, error) {
	res := benchResult{Wait: strings.ToUpper(b.wait), Sessions: b.n, Concurrency: b.conc}
	target, short := api.SessionRunning, []api.SessionStatus{api.SessionPending, api.SessionScheduled, api.SessionPreparing}
	if b.wait == "scheduled" {
		target, short = api.SessionScheduled, []api.SessionStatus{api.SessionPending}
	}
	var (
		mu   sync.Mutex
		runs = make([]benchSession, b.n)
		next atomic.Int64
		wg   sync.WaitGroup
	)
	start := b.now()
	for range b.conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= b.n || ctx.Err() != nil {
					return
				}
				sent := b.now()
				s, err := cl.CreateSession(ctx, b.req)
				back := b.now()
				mu.Lock()
				runs[i] = benchSession{sent: sent, back: back, err: err}
				if err == nil {
					runs[i].id = s.ID
				}
				mu.Unlock()
			}
		}()
	}
	created := make(chan struct{})
	go func() { wg.Wait(); close(created) }()

	// Follow them: a session no longer listed in a state short of the
	// target has reached it (or ended).
	tick := time.NewTicker(b.poll)
	defer tick.Stop()
	creating, lastProgress := created, start
	for {
		mu.Lock()
		open := map[string]int{}
		made, reached := 0, 0
		for i, r := range runs {
			if r.id == "" {
				continue
			}
			made++
			if r.seen.IsZero() {
				open[r.id] = i
			} else {
				reached++
			}
		}
		mu.Unlock()
		if creating == nil && len(open) == 0 {
			break
		}
		if b.timeout > 0 && b.now().Sub(start) > b.timeout {
			break // what has not reached the state by now counts as failed
		}
		if b.progress != nil && b.now().Sub(lastProgress) >= 2*time.Second {
			b.progress(made, reached)
			lastProgress = b.now()
		}
		if len(open) > 0 {
			waiting, err := listShort(ctx, cl, short)
			if err != nil {
				return res, fmt.Errorf("follow the sessions: %w", err)
			}
			at := b.now()
			mu.Lock()
			for id, i := range open {
				if !waiting[id] {
					runs[i].seen = at
				}
			}
			mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-creating:
			creating = nil
		case <-tick.C:
		}
	}

	var ids []string
	var lastBack, lastSeen time.Time
	var createMS []float64
	for _, r := range runs {
		if r.id == "" && r.err == nil {
			continue // never sent (the run was stopped)
		}
		createMS = append(createMS, ms(r.back.Sub(r.sent)))
		lastBack = later(lastBack, r.back)
		if r.err != nil {
			res.CreateErrors++
			if res.FirstError == "" {
				res.FirstError = r.err.Error()
			}
			continue
		}
		ids = append(ids, r.id)
		lastSeen = later(lastSeen, r.seen)
	}
	res.Created = len(ids)
	res.CreateMS = percentilesOf(createMS)
	if d := lastBack.Sub(start); d > 0 {
		res.CreatesPerSecond = round(float64(res.Created) / d.Seconds())
	}
	if !lastSeen.IsZero() {
		res.WallSeconds = round(lastSeen.Sub(start).Seconds())
	}

	sessions, err := gather(ctx, cl, ids)
	if err != nil {
		return res, err
	}
	var latencies []float64
	var first, last time.Time
	for _, id := range ids {
		s, ok := sessions[id]
		if !ok {
			res.Failed++
			continue
		}
		at, ok := reachedAt(s, target)
		if !ok {
			res.Failed++
			if res.FirstError == "" {
				res.FirstError = fmt.Sprintf("session %s is %s: %s", s.ID, s.Status, s.StatusInfo)
			}
			continue
		}
		res.Reached++
		latencies = append(latencies, ms(at.Sub(s.CreatedAt)))
		if first.IsZero() || s.CreatedAt.Before(first) {
			first = s.CreatedAt
		}
		last = later(last, at)
	}
	res.LatencyMS = percentilesOf(latencies)
	if span := last.Sub(first); span > 0 {
		res.ManagerSpanMS = ms(span)
		res.SessionsPerSecond = round(float64(res.Reached) / span.Seconds())
	}
	if !b.keep {
		res.Terminated = terminateAll(ctx, cl, ids, b.conc)
	}
	return res, nil
}

// listShort lists the caller's sessions in the given states, every page.
func listShort(ctx context.Context, cl *client.Client, statuses []api.SessionStatus) (map[string]bool, error) {
	out := map[string]bool{}
	for _, st := range statuses {
		cursor := ""
		for {
			q := url.Values{"status": {string(st)}, "limit": {"1000"}}
			if cursor != "" {
				q.Set("cursor", cursor)
			}
			page, err := cl.ListSessions(ctx, q)
			if err != nil {
				return nil, err
			}
			for _, s := range page.Items {
				out[s.ID] = true
			}
			if cursor = page.NextCursor; cursor == "" {
				break
			}
		}
	}
	return out, nil
}

// gather reads the sessions of ids from the caller's session list, newest
// first, until it has them all.
func gather(ctx context.Context, cl *client.Client, ids []string) (map[string]api.Session, error) {
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	out := make(map[string]api.Session, len(ids))
	cursor := ""
	for len(out) < len(want) {
		q := url.Values{"limit": {"1000"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		page, err := cl.ListSessions(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("read the sessions back: %w", err)
		}
		for _, s := range page.Items {
			if want[s.ID] {
				out[s.ID] = s
			}
		}
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	return out, nil
}

// reachedAt is when the session's history first shows the state.
func reachedAt(s api.Session, status api.SessionStatus) (time.Time, bool) {
	for _, h := range s.StatusHistory {
		if h.Status == status {
			return h.At, true
		}
	}
	return time.Time{}, false
}

// terminateAll ends the sessions, conc at a time, and counts those ended.
func terminateAll(ctx context.Context, cl *client.Client, ids []string, conc int) int {
	var (
		next atomic.Int64
		done atomic.Int64
		wg   sync.WaitGroup
	)
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(ids) || ctx.Err() != nil {
					return
				}
				if _, err := cl.TerminateSession(ctx, ids[i]); err == nil {
					done.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return int(done.Load())
}

// percentilesOf are nearest-rank percentiles of values (milliseconds).
func percentilesOf(values []float64) percentiles {
	if len(values) == 0 {
		return percentiles{}
	}
	v := slices.Clone(values)
	slices.Sort(v)
	rank := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(v)))) - 1
		return v[max(0, min(i, len(v)-1))]
	}
	return percentiles{P50: round(rank(0.50)), P90: round(rank(0.90)), P99: round(rank(0.99)), Max: round(v[len(v)-1])}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// round keeps one decimal: figures, not noise.
func round(f float64) float64 { return math.Round(f*10) / 10 }

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

var benchColumns = []string{"wait", "sessions", "concurrency", "created", "create_errors", "reached", "failed",
	"sessions_per_s", "creates_per_s", "wall_s", "p50_ms", "p90_ms", "p99_ms", "max_ms",
	"create_p50_ms", "create_p90_ms", "create_p99_ms", "terminated", "first_error"}

func benchView(r benchResult) view {
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	return view{data: r, columns: benchColumns, single: true, rows: [][]string{{r.Wait, fmtInt(r.Sessions), fmtInt(r.Concurrency),
		fmtInt(r.Created), fmtInt(r.CreateErrors), fmtInt(r.Reached), fmtInt(r.Failed), f(r.SessionsPerSecond), f(r.CreatesPerSecond),
		f(r.WallSeconds), f(r.LatencyMS.P50), f(r.LatencyMS.P90), f(r.LatencyMS.P99), f(r.LatencyMS.Max),
		f(r.CreateMS.P50), f(r.CreateMS.P90), f(r.CreateMS.P99), fmtInt(r.Terminated), r.FirstError}}}
}
