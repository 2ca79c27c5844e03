package httpapi

import (
	"sync"
	"time"
)

// lastSeen gathers, per key, the latest time something was used, until the
// leader drains the batch into one Raft entry (keypairs' last_used,
// sessions' last activity): a request costs no Raft round trip of its own.
type lastSeen struct {
	mu sync.Mutex
	m  map[string]time.Time
}

func newLastSeen() *lastSeen { return &lastSeen{m: map[string]time.Time{}} }

// touch records a use of key at at (earlier times than the one kept are
// ignored).
func (l *lastSeen) touch(key string, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if at.After(l.m[key]) {
		l.m[key] = at
	}
}

// drain returns and forgets what was gathered.
func (l *lastSeen) drain() map[string]time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.m
	l.m = map[string]time.Time{}
	return out
}
