package auth

import (
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/time/rate"
)

// Limiter bounds attempts per key (an email, a client address) with a token
// bucket per key. Keys are kept in an LRU so a flood of distinct keys cannot
// grow memory without bound.
type Limiter struct {
	mu      sync.Mutex
	buckets *lru.Cache[string, *rate.Limiter]
	every   time.Duration
	burst   int
	now     func() time.Time
}

// NewLimiter allows burst attempts at once per key, then one every `every`.
func NewLimiter(burst int, every time.Duration, now func() time.Time) *Limiter {
	c, err := lru.New[string, *rate.Limiter](65536)
	if err != nil {
		panic(err) // only for a non-positive size
	}
	return &Limiter{buckets: c, every: every, burst: burst, now: now}
}

// Allow takes one attempt for key; when refused it says how long to wait.
func (l *Limiter) Allow(key string) (ok bool, retryAfter time.Duration) {
	return l.AllowWith(key, l.burst, l.every)
}

// AllowWith is Allow with a bucket shape of the key's own (a keypair's
// rate_limit); a key whose shape changed starts a fresh bucket.
func (l *Limiter) AllowWith(key string, burst int, every time.Duration) (ok bool, retryAfter time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, found := l.buckets.Get(key)
	if !found || b.Burst() != burst || b.Limit() != rate.Every(every) {
		b = rate.NewLimiter(rate.Every(every), burst)
		l.buckets.Add(key, b)
	}
	now := l.now()
	r := b.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// Blocked reports, without taking an attempt, whether key has none left
// now and how long until it has one. A limit on failures alone checks it
// before each try and takes an attempt (Allow) only when a try fails, so
// a guesser is stopped before a right guess could tell it so, while the
// successes of many honest clients behind one address cost nothing.
func (l *Limiter) Blocked(key string) (blocked bool, retryAfter time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, found := l.buckets.Peek(key)
	if !found {
		return false, 0
	}
	tokens := b.TokensAt(l.now())
	if tokens >= 1 {
		return false, 0
	}
	return true, time.Duration((1 - tokens) / float64(b.Limit()) * float64(time.Second))
}
