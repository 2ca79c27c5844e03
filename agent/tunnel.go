package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/wsnet"
)

// A port tunnel is one TCP connection to a port a session declared, made by
// the agent to the container's address on its session's network and
// relayed over a WebSocket (binary messages, the bytes as they come) to the
// manager: the apps origin and port-forward reach sessions through it, so
// nothing of a session is published on the node's interfaces and users
// never reach agents.

// tunnelDialTimeout bounds the connection to the container's port: a port
// nobody listens on is refused at once; one that drops the packets is not
// worth waiting for longer.
const tunnelDialTimeout = 5 * time.Second

// tunnel is GET /v1/containers/{id}/ports/{port}/tunnel. The connection is
// made before the upgrade, so that a port that does not answer is an HTTP
// answer (502 with the reason) the manager can pass on.
func (a *Agent) tunnel(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	port, err := strconv.Atoi(r.PathValue("port"))
	if err != nil || port < 1 || port > 65535 {
		problem(w, http.StatusBadRequest, fmt.Sprintf("port %q must be a number from 1 to 65535", r.PathValue("port")))
		return
	}
	target, status, why := a.conv.tunnelTarget(id, port)
	if status != 0 {
		problem(w, status, why)
		return
	}
	d := net.Dialer{Timeout: tunnelDialTimeout}
	conn, err := d.DialContext(r.Context(), "tcp", target)
	if err != nil {
		problem(w, http.StatusBadGateway, fmt.Sprintf("nothing answers on port %d of container %s: %v", port, id, dialReason(err)))
		return
	}
	defer conn.Close()
	c, ok := a.accept(w, r)
	if !ok {
		return
	}
	defer a.streams.remove(c)
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	defer cancel()
	ws := wsnet.NetConn(ctx, c)
	defer ws.Close()
	a.relay(ws, conn)
}

// relay copies both ways until either side ends, then closes both. Every
// write must complete within the stall bound: a peer that reads nothing
// holds the other side back (TCP's own flow control) and is then dropped.
func (a *Agent) relay(x, y net.Conn) {
	var once sync.Once
	done := make(chan struct{})
	end := func() { once.Do(func() { close(done) }) }
	go func() {
		defer end()
		_, _ = io.Copy(stallWriter{x, a.cfg.StreamStall}, y)
	}()
	go func() {
		defer end()
		_, _ = io.Copy(stallWriter{y, a.cfg.StreamStall}, x)
	}()
	<-done
	x.Close()
	y.Close()
}

// stallWriter bounds each write of a relay.
type stallWriter struct {
	c     net.Conn
	stall time.Duration
}

func (s stallWriter) Write(b []byte) (int, error) {
	_ = s.c.SetWriteDeadline(time.Now().Add(s.stall))
	return s.c.Write(b)
}

// dialReason says why a connection failed in words a user can act on.
func dialReason(err error) string {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Sprintf("no answer within %s", tunnelDialTimeout)
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused (nothing listens there)"
	}
	return err.Error()
}

// tunnelTarget is where a tunnel to port of container id goes: its address
// on its session's network, if the session declared the port. Otherwise
// status and why say what is wrong.
func (c *converger) tunnelTarget(id string, port int) (target string, status int, why string) {
	c.mu.Lock()
	d, known := c.desired[id]
	have := c.haveDesired
	c.mu.Unlock()
	switch {
	case !have:
		return "", http.StatusServiceUnavailable, "the agent has not heard from the managers since it started; retry in a few seconds"
	case !known:
		return "", http.StatusNotFound, fmt.Sprintf("no container %s runs here", id)
	case !slices.ContainsFunc(d.Ports, func(p api.SessionPort) bool { return p.Port == port }):
		return "", http.StatusForbidden, fmt.Sprintf("session %s declared no port %d", d.SessionID, port)
	}
	addr := c.address(id)
	if addr == "" {
		return "", http.StatusConflict, fmt.Sprintf("container %s has no address on a session network (the agent runs without session networks, or it is not attached yet)", id)
	}
	return net.JoinHostPort(addr, strconv.Itoa(port)), 0, ""
}
