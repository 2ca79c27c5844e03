package httpapi

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"

	"github.com/berth-cluster/berth/manager/apierr"
)

// Streams are the answers that last as long as someone watches them:
// terminals, port-forwards (WebSockets), followed logs and streamed execs.
// Two rules hold for all of them:
//
//   - Back-pressure, never buffering: each relays one message or chunk at a
//     time and writes it before reading the next, so a client that reads
//     slowly slows the process behind it down (through the agent), and the
//     manager holds at most one chunk per stream. A client that takes
//     nothing for Limits.StreamStall is disconnected.
//   - They end with the manager: WebSockets are hijacked connections, which
//     http.Server.Shutdown neither closes nor waits for, so Close closes
//     each with a reason the user sees; a followed log is cut.

// streams tracks the open streams of this manager.
type streams struct {
	mu     sync.Mutex
	next   int
	open   map[int]func(reason string)
	reason string // set once closing
}

func newStreams() *streams { return &streams{open: map[int]func(string){}} }

// add tracks a stream that stop ends; remove forgets it. ok is false when
// the manager is closing (the stream must not start).
func (s *streams) add(stop func(reason string)) (remove func(), ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reason != "" {
		return func() {}, false
	}
	id := s.next
	s.next++
	s.open[id] = stop
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.open, id)
	}, true
}

// closing tells whether the manager is closing: a new stream is refused
// before anything is asked of an agent.
func (s *streams) closing() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reason != "" {
		return apierr.New(apierr.Unavailable, "%s", s.reason)
	}
	return nil
}

// closeAll ends every stream with reason and waits for their stops.
func (s *streams) closeAll(reason string) {
	s.mu.Lock()
	s.reason = reason
	open := s.open
	s.open = map[int]func(string){}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, stop := range open {
		wg.Go(func() { stop(reason) })
	}
	wg.Wait()
}

// Close ends every open terminal, port-forward and followed log of this
// manager, telling their users why; new ones are refused from then on.
func (a *API) Close(reason string) { a.streams.closeAll(reason) }

// closeReason fits a reason into a close frame (123 bytes at most).
func closeReason(s string) string {
	const limit = 123
	if len(s) <= limit {
		return s
	}
	s = s[:limit]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// writeWithin writes one message to c, giving up (and closing c) when it
// is not taken within the stall bound.
func (a *API) writeWithin(ctx context.Context, c *websocket.Conn, typ websocket.MessageType, b []byte) error {
	wctx, cancel := context.WithTimeout(ctx, a.limits.StreamStall)
	defer cancel()
	return c.Write(wctx, typ, b)
}

// stallWriter is an HTTP answer whose every write must be taken within the
// stall bound, flushed at once: a streamed body.
type stallWriter struct {
	w     http.ResponseWriter
	rc    *http.ResponseController
	stall time.Duration
}

func (a *API) stallWriter(w http.ResponseWriter) stallWriter {
	return stallWriter{w: w, rc: http.NewResponseController(w), stall: a.limits.StreamStall}
}

func (s stallWriter) Write(b []byte) (int, error) {
	_ = s.rc.SetWriteDeadline(time.Now().Add(s.stall))
	n, err := s.w.Write(b)
	if err == nil {
		err = s.rc.Flush()
	}
	return n, err
}

// relay copies two connections into each other until either side ends,
// then closes both; each write must complete within stall.
func relay(x, y net.Conn, stall time.Duration) {
	var once sync.Once
	done := make(chan struct{})
	end := func() { once.Do(func() { close(done) }) }
	for _, pair := range [][2]net.Conn{{x, y}, {y, x}} {
		go func() {
			defer end()
			_, _ = io.Copy(deadlineConn{pair[0], stall}, pair[1])
		}()
	}
	<-done
	x.Close()
	y.Close()
}

// deadlineConn bounds each write to a connection.
type deadlineConn struct {
	c     net.Conn
	stall time.Duration
}

func (d deadlineConn) Write(b []byte) (int, error) {
	_ = d.c.SetWriteDeadline(time.Now().Add(d.stall))
	return d.c.Write(b)
}

// keepActive tells the leader, while ctx lasts, that the session is in use
// (an open terminal or port-forward keeps it from its idle timeout).
func (a *API) keepActive(ctx context.Context, session string) {
	a.leader.SessionUsed(session)
	t := time.NewTicker(a.cfg.ActivityEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			a.leader.SessionUsed(session)
		}
	}
}
