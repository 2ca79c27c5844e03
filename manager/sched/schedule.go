package sched

import "github.com/berth-cluster/berth/manager/state"

// Defaults of Options.
const (
	DefaultSkipAfter = 3
	DefaultBatch     = 512
)

// Options tune a scheduling pass.
type Options struct {
	Order    Order
	Strategy Strategy
	// SkipAfter is how many failed tries a session that finds no room may
	// hold the head of the queue for: before that, nothing behind it is
	// tried (a big request is not starved by a stream of small ones);
	// after, it is passed over so it does not block the queue for good.
	SkipAfter int
	// Batch is the most sessions one pass places.
	Batch int
}

func (o Options) skipAfter() int {
	if o.SkipAfter > 0 {
		return o.SkipAfter
	}
	return DefaultSkipAfter
}

func (o Options) batch() int {
	if o.Batch > 0 {
		return o.Batch
	}
	return DefaultBatch
}

// Decision is the pass's answer for one session: the agents of its
// containers and their GPU slices, or why it waits.
type Decision struct {
	Request Request
	Agents  []string
	// GPUs[i] are container i's slices of its agent's GPUs (nil for a
	// container without a GPU request): the plan carries them, and the
	// applier records them as they are.
	GPUs    [][]state.GPUSlice
	Failure *Failure
	// Blocking: it found no room with fewer than SkipAfter tries, so it
	// held the head of the queue and nothing after it was tried.
	Blocking bool
}

// Schedule takes the PENDING sessions in the order's turn and decides each
// against the view, committing every placement to it so later ones see
// them. Sessions that wait on their keypair's limits never block others;
// one that finds no room blocks the rest while its tries are under
// SkipAfter. Sessions after a blocking one, or past the batch, get no
// decision this pass.
func Schedule(c *Cluster, pending []Request, opt Options) ([]Decision, error) {
	var q queue
	if opt.Order == DRF {
		d, err := newDRF(c, pending)
		if err != nil {
			return nil, err
		}
		q = d
	} else {
		q = newFIFO(pending)
	}
	var out []Decision
	for placed := 0; placed < opt.batch(); {
		r, ok := q.next()
		if !ok {
			break
		}
		agents, f, err := c.Place(r, opt.Strategy)
		if err != nil {
			return nil, err
		}
		if f == nil {
			gpus, err := c.commit(r, agents)
			if err != nil {
				return nil, err
			}
			out = append(out, Decision{Request: r, Agents: agents, GPUs: gpus})
			placed++
			q.after(true)
			continue
		}
		d := Decision{Request: r, Failure: f}
		if f.Kind == KindCapacity && r.Attempts < opt.skipAfter() {
			d.Blocking = true
			out = append(out, d)
			break
		}
		out = append(out, d)
		q.after(false)
	}
	return out, nil
}
