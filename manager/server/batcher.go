package server

import (
	"context"
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/berth-cluster/berth/manager/batch"
	"github.com/berth-cluster/berth/manager/fsm"
	"github.com/berth-cluster/berth/manager/raftnode"
	"github.com/berth-cluster/berth/manager/state"
)

// Session creates are the one write that comes in thousands a second, and
// one Raft entry each costs a round trip and an FSM transaction on every
// manager. The leader proposes the creates that arrive together as one
// SessionsCreate entry instead (manager/batch): what queues while a
// proposal is in flight goes into the next one.
const (
	// sessionBatchMax bounds an entry: 256 sessions are ~150 KB of JSON,
	// one batch's worth of a busy second, small enough to replicate in
	// one go.
	sessionBatchMax = 256
	// sessionBatchInFlight is how many SessionsCreate proposals may be in
	// flight at once: with two, the next batch is already on its way while
	// the previous one is applied, and each still has a commit's time to
	// fill.
	sessionBatchInFlight = 2
)

// sessionCreates batches the leader's session creates.
type sessionCreates struct {
	b    *batch.Batcher[state.Session, *fsm.Response]
	size prometheus.Histogram
}

// newSessionCreates batches the creates that propose commits.
func newSessionCreates(reg prometheus.Registerer, propose func(context.Context, fsm.Command) (*fsm.Response, error)) *sessionCreates {
	c := &sessionCreates{size: prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "berth_session_create_batch_size",
		Help:    "Sessions per SessionsCreate entry the leader proposed.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 9), // 1 .. 256
	})}
	reg.MustRegister(c.size)
	c.b = batch.New(batch.Options{MaxItems: sessionBatchMax, InFlight: sessionBatchInFlight},
		func(ctx context.Context, sessions []state.Session) ([]*fsm.Response, error) {
			c.size.Observe(float64(len(sessions)))
			return proposeSessions(ctx, propose, sessions)
		})
	return c
}

// propose puts the session into the next SessionsCreate entry; the response
// is its own (the session recorded, or the rule it broke), whatever
// happened to the others.
func (c *sessionCreates) propose(ctx context.Context, sess state.Session) (*fsm.Response, error) {
	resp, err := c.b.Do(ctx, sess)
	switch {
	case errors.Is(err, batch.ErrClosed):
		// A manager shutting down leads no more, and the session was never
		// proposed: the client retries.
		return nil, fmt.Errorf("%w: %w", raftnode.ErrNotLeader, err)
	case errors.Is(err, batch.ErrInFlight):
		// The request gave up while its entry was being committed: the
		// session may still be created, so a blind retry could make two.
		return nil, fmt.Errorf("%w: %w", raftnode.ErrOutcomeUnknown, err)
	}
	return resp, err
}

// proposeSessions commits one SessionsCreate and splits its response into
// one per session. A manager that lost leadership refuses the whole batch
// with ErrNotLeader (Propose), so every request queued behind it gets the
// usual 503 and retries on the new leader; a batch in flight when
// leadership goes fails with ErrOutcomeUnknown (raftnode) instead, since
// its entry may still commit.
func proposeSessions(ctx context.Context, propose func(context.Context, fsm.Command) (*fsm.Response, error), sessions []state.Session) ([]*fsm.Response, error) {
	resp, err := propose(ctx, fsm.SessionsCreate{Sessions: sessions})
	if err != nil {
		return nil, fmt.Errorf("propose %d session creates: %w", len(sessions), err)
	}
	out := make([]*fsm.Response, len(sessions))
	if resp.Err != nil {
		// The entry as a whole was refused (the store failed): every
		// session shares the answer.
		for i := range out {
			out[i] = &fsm.Response{Index: resp.Index, Err: resp.Err}
		}
		return out, nil
	}
	created, err := fsm.Value[[]fsm.SessionCreated](resp)
	if err != nil {
		return nil, err
	}
	if len(created) != len(sessions) {
		return nil, fmt.Errorf("fsm answered %d session creates with %d answers", len(sessions), len(created))
	}
	for i, c := range created {
		out[i] = &fsm.Response{Index: resp.Index, Err: c.Err}
		if c.Err == nil {
			out[i].Value = c.Session
		}
	}
	return out, nil
}
