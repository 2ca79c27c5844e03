package agent

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// streams are the agent's open WebSockets (terminals, port tunnels). They
// are hijacked connections, which http.Server.Shutdown neither waits for
// nor closes: on shutdown the agent closes each itself, with a reason the
// manager passes on to the user.
type streams struct {
	mu     sync.Mutex
	open   map[*websocket.Conn]bool
	reason string // set once shutting down
}

func newStreams() *streams { return &streams{open: map[*websocket.Conn]bool{}} }

// add tracks c; false when the agent is shutting down (c is then closed).
func (s *streams) add(c *websocket.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reason != "" {
		go c.Close(websocket.StatusGoingAway, s.reason)
		return false
	}
	s.open[c] = true
	return true
}

func (s *streams) remove(c *websocket.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.open, c)
}

// closeAll closes every stream with StatusGoingAway and reason, at once,
// and waits (each close waits a few seconds at most for the peer's answer).
func (s *streams) closeAll(reason string) {
	s.mu.Lock()
	s.reason = reason
	open := s.open
	s.open = map[*websocket.Conn]bool{}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for c := range open {
		wg.Go(func() { c.Close(websocket.StatusGoingAway, reason) })
	}
	wg.Wait()
}

// accept upgrades a manager's request to a WebSocket tracked in a.streams;
// ok false when it could not be (the answer is written) or the agent is
// shutting down.
func (a *Agent) accept(w http.ResponseWriter, r *http.Request) (*websocket.Conn, bool) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		a.log.Warn("websocket upgrade", "path", r.URL.Path, "err", err)
		return nil, false
	}
	if !a.streams.add(c) {
		return nil, false
	}
	return c, true
}

// writeWithin writes one message, giving up (and failing the connection)
// when the manager has not taken it within the stall bound: it stopped
// reading, and holding the output back longer only holds the process.
func (a *Agent) writeWithin(ctx context.Context, c *websocket.Conn, typ websocket.MessageType, b []byte) error {
	wctx, cancel := context.WithTimeout(ctx, a.cfg.StreamStall)
	defer cancel()
	return c.Write(wctx, typ, b)
}

// stallDeadline is the write deadline of a streamed HTTP answer's next
// write.
func (a *Agent) stallDeadline() time.Time { return time.Now().Add(a.cfg.StreamStall) }
