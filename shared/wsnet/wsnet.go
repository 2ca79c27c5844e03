// Package wsnet carries a byte stream over a WebSocket as a net.Conn (for
// tunnels and port-forwards) and ends it so the peer sees it end, not cut.
//
// websocket.NetConn's Close first cancels its reads and only then writes
// the close frame. A relay reads each side in a goroutine of its own, so a
// read is nearly always in progress when the other side ends; cancelled,
// it drops the TCP connection at once, often before the close frame is
// written. The peer then reads the whole stream and an error instead of
// its end ("failed to read frame header: EOF"): an HTTP answer relayed
// through such a tunnel is cut off by a reverse proxy although every byte
// arrived, and unread bytes may be lost to a reset.
package wsnet

import (
	"context"
	"net"

	"github.com/coder/websocket"
)

// Conn is a WebSocket's binary messages as a net.Conn whose Close sends
// the close frame before anything else.
type Conn struct {
	net.Conn
	ws *websocket.Conn
}

// NetConn wraps ws; ctx bounds the connection as websocket.NetConn's does.
func NetConn(ctx context.Context, ws *websocket.Conn) *Conn {
	return &Conn{Conn: websocket.NetConn(ctx, ws, websocket.MessageBinary), ws: ws}
}

// Close ends the stream with a normal closure (the close handshake waits
// at most a few seconds for the peer), then releases the connection.
func (c *Conn) Close() error {
	err := c.ws.Close(websocket.StatusNormalClosure, "")
	_ = c.Conn.Close()
	return err
}
