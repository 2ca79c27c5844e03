package sched

import (
	"cmp"
	"container/heap"
	"fmt"
	"slices"
	"strings"
)

// Order is the order PENDING sessions are considered in.
type Order int

const (
	// FIFO is creation order (the Raft index of the SessionCreate).
	FIFO Order = iota + 1
	// DRF takes next the oldest session of the keypair with the smallest
	// dominant share of the cluster's capacity (its largest share over the
	// slots), so a keypair with little running goes before one with much.
	DRF
)

// ParseOrder reads the -scheduler flag.
func ParseOrder(s string) (Order, error) {
	switch s {
	case "", "fifo":
		return FIFO, nil
	case "drf":
		return DRF, nil
	}
	return 0, fmt.Errorf("scheduler %q must be fifo or drf", s)
}

func (o Order) String() string {
	if o == DRF {
		return "drf"
	}
	return "fifo"
}

func byCreation(x, y Request) int {
	return cmp.Or(cmp.Compare(x.CreateIndex, y.CreateIndex), x.CreatedAt.Compare(y.CreatedAt), strings.Compare(x.SessionID, y.SessionID))
}

// queue hands out requests one at a time; after says whether the last one
// was placed (DRF shares move when one is).
type queue interface {
	next() (Request, bool)
	after(placed bool)
}

type fifoQueue struct {
	reqs []Request
	pos  int
}

func newFIFO(pending []Request) *fifoQueue {
	reqs := slices.Clone(pending)
	slices.SortFunc(reqs, byCreation)
	return &fifoQueue{reqs: reqs}
}

func (q *fifoQueue) next() (Request, bool) {
	if q.pos >= len(q.reqs) {
		return Request{}, false
	}
	return q.reqs[q.pos], true
}

func (q *fifoQueue) after(bool) { q.pos++ }

// drfQueue is a heap of keypairs, each with its sessions in creation order,
// ordered by dominant share, then by the age of its oldest session.
type drfQueue struct {
	c     *Cluster
	total vec
	items []*drfItem
}

type drfItem struct {
	accessKey string
	reqs      []Request
	share     float64
}

func newDRF(c *Cluster, pending []Request) (*drfQueue, error) {
	total, err := c.capacity()
	if err != nil {
		return nil, err
	}
	q := &drfQueue{c: c, total: total}
	byKey := map[string]*drfItem{}
	sorted := slices.Clone(pending)
	slices.SortFunc(sorted, byCreation)
	for _, r := range sorted {
		it := byKey[r.AccessKey]
		if it == nil {
			it = &drfItem{accessKey: r.AccessKey}
			byKey[r.AccessKey] = it
			q.items = append(q.items, it)
		}
		it.reqs = append(it.reqs, r)
	}
	for _, it := range q.items {
		if it.share, err = q.share(it.accessKey); err != nil {
			return nil, err
		}
	}
	heap.Init(q)
	return q, nil
}

// share is the keypair's dominant share: its largest fraction of the alive
// agents' capacity over the slots.
func (q *drfQueue) share(ak string) (float64, error) {
	k, err := q.c.keypair(ak)
	if err != nil || k == nil {
		return 0, err
	}
	best := 0.0
	for i, t := range q.total {
		if t > 0 {
			best = max(best, float64(k.occupied[i])/float64(t))
		}
	}
	return best, nil
}

func (q *drfQueue) next() (Request, bool) {
	if len(q.items) == 0 {
		return Request{}, false
	}
	return q.items[0].reqs[0], true
}

func (q *drfQueue) after(placed bool) {
	it := q.items[0]
	it.reqs = it.reqs[1:]
	if len(it.reqs) == 0 {
		heap.Pop(q)
		return
	}
	if placed {
		// The view loaded this keypair already, so this cannot fail.
		it.share, _ = q.share(it.accessKey)
	}
	heap.Fix(q, 0)
}

func (q *drfQueue) Len() int { return len(q.items) }

func (q *drfQueue) Less(i, j int) bool {
	a, b := q.items[i], q.items[j]
	if a.share != b.share {
		return a.share < b.share
	}
	return byCreation(a.reqs[0], b.reqs[0]) < 0
}

func (q *drfQueue) Swap(i, j int) { q.items[i], q.items[j] = q.items[j], q.items[i] }

func (q *drfQueue) Push(x any) { q.items = append(q.items, x.(*drfItem)) }

func (q *drfQueue) Pop() any {
	last := q.items[len(q.items)-1]
	q.items = q.items[:len(q.items)-1]
	return last
}
