package httpapi

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/berth-cluster/berth/manager/apierr"
	"github.com/berth-cluster/berth/shared/sign"
)

// Limits bound what one request may cost the manager before and while it
// is served. Zero fields take the defaults.
type Limits struct {
	// BodyTimeout is how long the body of a request that is not a stream
	// (at most MaxBody) may take to arrive (30s).
	BodyTimeout time.Duration
	// WriteTimeout bounds the answer of a route that is neither a stream
	// nor Long (2m).
	WriteTimeout time.Duration
	// StreamWindow and StreamMinBytes are the slowest a streamed body
	// (an upload) may arrive: StreamMinBytes in every StreamWindow (30s,
	// 64 KiB, about 2 KiB/s), else it is cut off.
	StreamWindow   time.Duration
	StreamMinBytes int64
	// UploadsPerUser and Uploads bound the streamed bodies (uploads,
	// snapshot restores) one user, and all users together, may send to
	// this manager at once (4, 32); beyond, 429 with Retry-After.
	UploadsPerUser int
	Uploads        int
	// StreamStall is how long a terminal, port-forward, followed log or
	// streamed exec may wait on a client that reads nothing before it is
	// disconnected (1m): its output is held back meanwhile, never piled
	// up in the manager.
	StreamStall time.Duration
}

func (l Limits) withDefaults() Limits {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.BodyTimeout, 30*time.Second)
	def(&l.WriteTimeout, 2*time.Minute)
	def(&l.StreamWindow, 30*time.Second)
	def(&l.StreamStall, time.Minute)
	if l.StreamMinBytes <= 0 {
		l.StreamMinBytes = 64 << 10
	}
	if l.UploadsPerUser <= 0 {
		l.UploadsPerUser = 4
	}
	if l.Uploads <= 0 {
		l.Uploads = 32
	}
	return l
}

// uploadRetryAfter is what a refused upload is told to wait.
const uploadRetryAfter = 5 * time.Second

// timeBody puts a clock on reading r's body, so a client that trickles it
// is cut off: a body that is not a stream must arrive within BodyTimeout; a
// stream must deliver StreamMinBytes every StreamWindow. The read deadline
// is lifted once the whole body is read: net/http cancels a request whose
// connection read times out after that, which would end a blocking query.
// Set before the request is forwarded, so a follower is covered too.
func (a *API) timeBody(rt *Route, w http.ResponseWriter, r *http.Request) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return
	}
	b := &timedBody{ReadCloser: r.Body, rc: http.NewResponseController(w), window: a.limits.BodyTimeout}
	if rt.Stream {
		b.window, b.minBytes = a.limits.StreamWindow, a.limits.StreamMinBytes
	}
	// Unsupported only under test recorders; a real server always has it.
	_ = b.rc.SetReadDeadline(time.Now().Add(b.window))
	r.Body = b
}

type timedBody struct {
	io.ReadCloser
	rc       *http.ResponseController
	window   time.Duration
	minBytes int64 // a stream: bytes due every window; 0: the whole body in one
	got      int64
	ended    bool
}

func (b *timedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if b.minBytes > 0 && !b.ended {
		if b.got += int64(n); b.got >= b.minBytes {
			b.got = 0
			_ = b.rc.SetReadDeadline(time.Now().Add(b.window))
		}
	}
	if err == io.EOF && !b.ended {
		// Kept on any other error, so net/http's draining of what is
		// left after the answer stops at it too.
		b.ended = true
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	if err != nil && err != io.EOF {
		err = &bodyError{err: err, timeout: isTimeout(err), window: b.window, minBytes: b.minBytes}
	}
	return n, err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// bodyError is a failure to read the request body (as opposed to, say, a
// disk that failed while the body was written to it).
type bodyError struct {
	err      error
	timeout  bool
	window   time.Duration
	minBytes int64
}

func (e *bodyError) Error() string { return "reading the request body: " + e.err.Error() }
func (e *bodyError) Unwrap() error { return e.err }

// contentMismatch is a body that did not hash to its X-Berth-Content-SHA256.
type contentMismatch struct {
	got, want string
	signed    bool
}

func (e *contentMismatch) Error() string {
	return "the body's SHA-256 is " + e.got + " but " + sign.ContentHeader + " says " + e.want
}

// checkContent makes r's body check itself against X-Berth-Content-SHA256
// as it is read: at its end, a body that hashes otherwise fails the read
// (contentMismatch), so whoever reads it keeps nothing. A request without
// the header is not checked here (a signature without it covers a body the
// verifier hashed itself).
func checkContent(r *http.Request) error {
	want := r.Header.Get(sign.ContentHeader)
	if want == "" {
		return nil
	}
	signed := strings.HasPrefix(r.Header.Get("Authorization"), sign.Scheme+" ")
	if err := sign.CheckContentHash(want); err != nil {
		if signed {
			return unauthorized("%v", err)
		}
		return apierr.New(apierr.Invalid, "%v", err)
	}
	body := r.Body
	if body == nil {
		body = http.NoBody
	}
	r.Body = &hashedBody{ReadCloser: body, h: sha256.New(), want: want, signed: signed}
	return nil
}

type hashedBody struct {
	io.ReadCloser
	h      hash.Hash
	want   string
	signed bool
}

func (b *hashedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.h.Write(p[:n])
	if err == io.EOF {
		if got := hex.EncodeToString(b.h.Sum(nil)); got != b.want {
			return n, &contentMismatch{got: got, want: b.want, signed: b.signed}
		}
	}
	return n, err
}

// bodyErr turns a failure to read the request body into the answer, or
// returns nil when err is something else. what names the body ("the
// upload"); nothing of it was kept.
func bodyErr(err error, what string) error {
	if m, ok := errors.AsType[*contentMismatch](err); ok {
		if m.signed {
			return unauthorized("%s is not the one signed: %v; nothing was kept", what, m)
		}
		return apierr.New(apierr.Invalid, "%s arrived damaged: %v; nothing was kept", what, m)
	}
	be, ok := errors.AsType[*bodyError](err)
	if !ok {
		return nil
	}
	switch {
	case be.timeout && be.minBytes > 0:
		return apierr.New(apierr.Timeout, "%s stalled: less than %d bytes arrived in %s; nothing was kept", what, be.minBytes, be.window)
	case be.timeout:
		return apierr.New(apierr.Timeout, "%s did not arrive within %s; nothing was kept", what, be.window)
	}
	return apierr.New(apierr.Invalid, "could not read %s: %v; nothing was kept", what, be.err)
}

// uploadSlots bounds the streamed bodies in flight, per user and in all.
type uploadSlots struct {
	mu      sync.Mutex
	perUser map[string]int
	total   int
	limits  Limits
}

func newUploadSlots(l Limits) *uploadSlots {
	return &uploadSlots{perUser: map[string]int{}, limits: l}
}

// take holds a slot for user's upload; release gives it back.
func (u *uploadSlots) take(user string) (release func(), err error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	switch {
	case u.perUser[user] >= u.limits.UploadsPerUser:
		return nil, &apierr.Error{Kind: apierr.RateLimited, RetryAfter: uploadRetryAfter,
			Detail: fmt.Sprintf("you already have %d uploads in progress on this manager, the most one user may; wait for one to end", u.perUser[user])}
	case u.total >= u.limits.Uploads:
		return nil, &apierr.Error{Kind: apierr.RateLimited, RetryAfter: uploadRetryAfter,
			Detail: fmt.Sprintf("this manager is receiving %d uploads, the most it takes at once; retry shortly", u.total)}
	}
	u.perUser[user]++
	u.total++
	var once sync.Once
	return func() {
		once.Do(func() {
			u.mu.Lock()
			defer u.mu.Unlock()
			if u.perUser[user]--; u.perUser[user] == 0 {
				delete(u.perUser, user)
			}
			u.total--
		})
	}, nil
}
