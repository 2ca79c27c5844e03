// Package leader runs what only the leader does. Each duty is a small type
// with its own loop (liveness.go, scheduler.go, idle.go, usage.go,
// folders.go, keypairs.go, tokens.go); the memory the leader keeps between
// Raft writes (heartbeats and reports, session activity, keypairs' last use)
// belongs to one leadership and is started afresh by the next. The HTTP
// layer decodes and authorises requests and hands the leader what it
// needs to know (a heartbeat, an exec); it keeps no leader state itself.
//
// A leadership begins with the barrier (every entry of earlier terms
// applied), then Config.Setup; only then do the duties start. A leader
// that cannot get that far steps down, handing leadership to another
// manager, rather than lead without doing its duties.
package leader

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/berth-cluster/berth/manager/folderfs"
	"github.com/berth-cluster/berth/manager/fsm"
	"github.com/berth-cluster/berth/manager/sched"
	"github.com/berth-cluster/berth/manager/state"
)

// Cluster is what the leader needs of the replicated state: propose an
// entry, read the state, follow the applied index.
type Cluster interface {
	// Propose commits a command and returns the FSM's response; a rule the
	// command broke comes back as Response.Err.
	Propose(ctx context.Context, c fsm.Command) (*fsm.Response, error)
	// Read is a consistent view of the state as applied here now.
	Read() *state.Txn
	// AppliedIndex is the index of the last entry applied here.
	AppliedIndex() uint64
	// WaitIndex returns the applied index once it is greater than after,
	// or the applied index then with ctx's error.
	WaitIndex(ctx context.Context, after uint64) (uint64, error)
}

// Node is this manager's place in the Raft cluster, as far as leading it
// goes.
type Node interface {
	// LeaderCh delivers true when this manager becomes the leader and false
	// when it stops; Run is its only reader.
	LeaderCh() <-chan bool
	// Barrier returns once every entry committed before it is applied here.
	Barrier(ctx context.Context) error
	// LeadershipTransfer hands leadership to another voter, returning once
	// it has or could not.
	LeadershipTransfer() error
}

// Defaults of the duties' periods.
const (
	// DefaultHeartbeatTimeout is how long an agent may be silent before it
	// is DISCONNECTED.
	DefaultHeartbeatTimeout = 30 * time.Second
	// DefaultDisconnectGrace is how long a DISCONNECTED agent keeps its
	// sessions before it is LOST, counted from its last heartbeat.
	DefaultDisconnectGrace = 5 * time.Minute
	// DefaultKeypairTouchEvery is how often keypairs' last use is recorded.
	DefaultKeypairTouchEvery = 15 * time.Second
	// DefaultIdleCheckEvery is how often session activity is recorded and
	// idle and overlong sessions are ended. Idle timeouts are set in
	// seconds to days; a few seconds of lateness is within their meaning.
	DefaultIdleCheckEvery = 5 * time.Second
	// DefaultUsageCheckEvery is how often usage is checked for drift.
	DefaultUsageCheckEvery = time.Minute
	// DefaultFolderUsageEvery is how often the folders on this manager's
	// hosts are measured. Writes through the files API are checked against
	// max_vfolder_size as they happen; this catches what sessions write.
	DefaultFolderUsageEvery = 30 * time.Second
	// DefaultSetupRetry is how long a leader that could neither set up nor
	// hand leadership over (it is the only voter) waits before trying to
	// set up again.
	DefaultSetupRetry = 5 * time.Second
	// DefaultCollectEvery is how often finished sessions past the
	// retention are looked for (at least once a minute, as issue 22 asks).
	DefaultCollectEvery = time.Minute
	// DefaultCollectBatch is how many sessions one collection entry
	// removes at most.
	DefaultCollectBatch = 500
	// DefaultMeasureEvery is how often what agents measured of sessions is
	// written to the usage rows.
	DefaultMeasureEvery = time.Minute
	// tokenSweepEvery is how often expired login tokens are removed.
	tokenSweepEvery = time.Minute
)

// Config is what the leader needs; zero periods take the defaults.
type Config struct {
	Cluster Cluster
	Node    Node
	Log     *slog.Logger
	Metrics prometheus.Registerer
	Now     func() time.Time
	// Setup runs at the start of every leadership, after the barrier and
	// before the duties: what must be in the state before this manager
	// leads (its member record, the first-start objects). An error makes
	// the leader step down.
	Setup func(ctx context.Context) error

	HeartbeatTimeout time.Duration
	// DisconnectGrace: see DefaultDisconnectGrace; never less than
	// HeartbeatTimeout (the flag refuses it, and a smaller value here is
	// raised to it).
	DisconnectGrace   time.Duration
	KeypairTouchEvery time.Duration
	IdleCheckEvery    time.Duration
	// UsageCheckEvery: negative turns the periodic check off (the
	// endpoint still runs it).
	UsageCheckEvery  time.Duration
	FolderUsageEvery time.Duration
	SetupRetry       time.Duration
	// Sched is how the scheduler orders and places sessions.
	Sched sched.Options
	// Folders measures the folders on this manager's hosts (nil: none).
	Folders *folderfs.Store
	// SessionRetention is how long a finished session stays before it is
	// collected (0: for ever); CollectEvery how often the leader looks,
	// CollectBatch how many one entry removes.
	SessionRetention time.Duration
	CollectEvery     time.Duration
	CollectBatch     int
	// MeasureEvery is how often agents' measurements are written.
	MeasureEvery time.Duration
}

func (c *Config) withDefaults() {
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Setup == nil {
		c.Setup = func(context.Context) error { return nil }
	}
	setDefault(&c.HeartbeatTimeout, DefaultHeartbeatTimeout)
	setDefault(&c.DisconnectGrace, DefaultDisconnectGrace)
	c.DisconnectGrace = max(c.DisconnectGrace, c.HeartbeatTimeout)
	setDefault(&c.KeypairTouchEvery, DefaultKeypairTouchEvery)
	setDefault(&c.IdleCheckEvery, DefaultIdleCheckEvery)
	if c.UsageCheckEvery == 0 {
		c.UsageCheckEvery = DefaultUsageCheckEvery
	}
	setDefault(&c.FolderUsageEvery, DefaultFolderUsageEvery)
	setDefault(&c.SetupRetry, DefaultSetupRetry)
	setDefault(&c.CollectEvery, DefaultCollectEvery)
	setDefault(&c.MeasureEvery, DefaultMeasureEvery)
	if c.CollectBatch <= 0 || c.CollectBatch > fsm.MaxCollectBatch {
		c.CollectBatch = DefaultCollectBatch
	}
	if c.Sched.Batch <= 0 {
		c.Sched.Batch = sched.DefaultBatch
	}
	if c.Folders == nil {
		c.Folders = folderfs.New(nil, 0, 0, c.Now)
	}
}

func setDefault(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}

// Leader runs the duties while this manager leads, and holds what they
// remember.
type Leader struct {
	cfg Config
	log *slog.Logger
	// term is the memory of the current leadership; nil while this
	// manager does not lead.
	term atomic.Pointer[term]

	metrics *metrics
	// usageMu makes usage checks (the periodic one and the endpoint's)
	// run one at a time.
	usageMu sync.Mutex
}

// term is what one leadership remembers between Raft writes. None of it is
// replicated: a new leader starts with a fresh one, so an agent has a full
// heartbeat timeout to find it before it is LOST, and nothing a previous
// leadership gathered is written late.
type term struct {
	// since is when this leadership began: every agent counts as seen then.
	since time.Time
	// ready: the barrier returned, so this manager has applied every entry
	// a previous leader acknowledged.
	ready    atomic.Bool
	agents   *agentMemory
	activity *activity
	keypairs *lastSeen
	measures *measurements
}

func newTerm(now time.Time) *term {
	return &term{since: now, agents: newAgentMemory(), activity: newActivity(), keypairs: newLastSeen(), measures: newMeasurements()}
}

// New builds a leader; Run makes it lead whenever the node does.
func New(cfg Config) *Leader {
	cfg.withDefaults()
	return &Leader{cfg: cfg, log: cfg.Log, metrics: newMetrics(cfg.Metrics)}
}

// DisconnectGrace is how long a DISCONNECTED agent keeps its sessions
// (the configured grace, with its default).
func (l *Leader) DisconnectGrace() time.Duration { return l.cfg.DisconnectGrace }

func (l *Leader) now() time.Time { return l.cfg.Now().UTC() }

// current is the memory of the leadership under way, or nil.
func (l *Leader) current() *term { return l.term.Load() }

// Ready says whether this manager leads and has applied every entry
// committed before its term (its barrier returned). Until then it must not
// answer requests as the leader: it could miss a write the previous leader
// acknowledged.
func (l *Leader) Ready() bool {
	t := l.current()
	return t != nil && t.ready.Load()
}

// SetReady overrides Ready for the leadership under way (tests hold a
// leader between its election and its barrier with it); the leader sets it
// itself otherwise.
func (l *Leader) SetReady(ready bool) {
	if t := l.current(); t != nil {
		t.ready.Store(ready)
	}
}

// Run leads whenever the node says it leads, until ctx ends.
func (l *Leader) Run(ctx context.Context) {
	var cur *leadership
	defer func() { cur.end() }()
	for {
		select {
		case <-ctx.Done():
			return
		case isLeader := <-l.cfg.Node.LeaderCh():
			cur.end()
			cur = nil
			if !isLeader {
				l.log.Info("lost leadership")
				continue
			}
			l.log.Info("gained leadership")
			cur = l.begin(ctx)
		}
	}
}

// leadership is one running lead.
type leadership struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func (l *Leader) begin(ctx context.Context) *leadership {
	ctx, cancel := context.WithCancel(ctx)
	ls := &leadership{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(ls.done)
		l.lead(ctx)
	}()
	return ls
}

// end stops the leadership and waits until its duties have.
func (ls *leadership) end() {
	if ls != nil {
		ls.cancel()
		<-ls.done
	}
}

// lead is one leadership: the memory starts before anything else, so the
// heartbeats that reach this leader while it settles in are kept; then the
// barrier and the setup; then the duties, until ctx ends.
func (l *Leader) lead(ctx context.Context) {
	t := newTerm(l.now())
	l.term.Store(t)
	defer l.term.Store(nil)
	for {
		err := l.establish(ctx, t)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return
		}
		t.ready.Store(false)
		if !l.stepDown(ctx, err) {
			return
		}
	}
	l.runDuties(ctx, t)
}

// establish brings this manager up to date with its leadership: every entry
// of earlier terms applied, then the setup.
func (l *Leader) establish(ctx context.Context, t *term) error {
	if err := l.cfg.Node.Barrier(ctx); err != nil {
		return fmt.Errorf("apply the entries of earlier terms: %w", err)
	}
	// Only now does this manager's state hold every write a previous
	// leader acknowledged: reads answered before could miss one.
	t.ready.Store(true)
	if err := l.cfg.Setup(ctx); err != nil {
		return fmt.Errorf("set up the leadership: %w", err)
	}
	return nil
}

// stepDown hands leadership to another manager after the setup failed, as
// Nomad does: a leader that runs no duties would schedule nothing and judge
// no agent while the cluster takes it for healthy. It reports whether the
// setup should be tried again: when no other manager could take over (a
// one-manager cluster, or none caught up), after Config.SetupRetry.
func (l *Leader) stepDown(ctx context.Context, cause error) (retry bool) {
	l.log.Error("leader setup failed; handing leadership to another manager", "err", cause)
	err := l.cfg.Node.LeadershipTransfer()
	if err == nil {
		l.metrics.stepDowns.Inc()
		// The node reports the loss on its leadership channel, which ends
		// this leadership's context.
		return false
	}
	l.log.Error("could not hand leadership over; setting up again", "err", err, "retry_in", l.cfg.SetupRetry)
	select {
	case <-ctx.Done():
		return false
	case <-time.After(l.cfg.SetupRetry):
		return true
	}
}

// runDuties runs every duty of the leadership until ctx ends.
func (l *Leader) runDuties(ctx context.Context, t *term) {
	duties := []func(context.Context){
		l.newLiveness(t).run,
		l.newScheduler().run,
		l.newIdle(t).run,
		l.newFolderUsage().run,
		l.newKeypairTouch(t).run,
		l.newTokenSweep().run,
		l.newMeasure(t).run,
	}
	if l.cfg.SessionRetention > 0 {
		duties = append(duties, l.newCollect().run)
	}
	if l.cfg.UsageCheckEvery > 0 {
		duties = append(duties, l.newUsageCheck().run)
	}
	var wg sync.WaitGroup
	for _, run := range duties {
		wg.Add(1)
		go func() {
			defer wg.Done()
			run(ctx)
		}()
	}
	wg.Wait()
}

// proposeValue is the leader's own write path (no HTTP request behind it):
// the applier's value as the type it returns, or the rule the entry broke.
func proposeValue[T any](ctx context.Context, c Cluster, cmd fsm.Command) (T, error) {
	var zero T
	resp, err := c.Propose(ctx, cmd)
	if err != nil {
		return zero, err
	}
	if resp.Err != nil {
		return zero, fmt.Errorf("%T refused: %w", cmd, resp.Err)
	}
	return fsm.Value[T](resp)
}

// propose commits an entry whose value the leader does not need.
func (l *Leader) propose(ctx context.Context, cmd fsm.Command) error {
	resp, err := l.cfg.Cluster.Propose(ctx, cmd)
	if err != nil {
		return err
	}
	if resp.Err != nil {
		return fmt.Errorf("%T refused: %w", cmd, resp.Err)
	}
	return nil
}

// every runs f every period until ctx ends.
func every(ctx context.Context, period time.Duration, f func(context.Context)) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f(ctx)
		}
	}
}
