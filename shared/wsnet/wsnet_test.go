package wsnet

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// pipeListener serves HTTP over in-memory pipes: a write blocks until the
// peer reads it, so the test decides how long the close frame's write
// takes, which on a real network depends on the machine's load.
type pipeListener struct {
	conns chan net.Conn
	once  sync.Once
	done  chan struct{}
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error   { l.once.Do(func() { close(l.done) }); return nil }
func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

func (l *pipeListener) dial(context.Context, string, string) (net.Conn, error) {
	server, client := net.Pipe()
	select {
	case l.conns <- server:
		return slowReader{client}, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

// slowReader is a client that takes a moment before each read, as a busy
// machine does.
type slowReader struct{ net.Conn }

func (s slowReader) Read(b []byte) (int, error) {
	time.Sleep(5 * time.Millisecond)
	return s.Conn.Read(b)
}

// The server side of a relay: one goroutine reads the WebSocket (as the
// relay's other direction does) while the handler writes a payload and
// closes. The client must read the whole payload and then io.EOF: the close
// frame goes out before the read in progress is given up. (With
// websocket.NetConn's own Close, the cancelled read drops the connection
// while the close frame waits for the slow peer: the client reads the
// payload and then "failed to read frame header: EOF".)
func TestAStreamClosedWhileItIsReadEndsWithEOFAfterEveryByte(t *testing.T) {
	const payload = "the whole answer of the app"
	l := newPipeListener()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		c := NetConn(context.Background(), ws)
		go func() { _, _ = io.Copy(io.Discard, c) }() // the relay's other direction
		if _, err := io.WriteString(c, payload); err != nil {
			t.Errorf("write: %v", err)
		}
		c.Close()
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })

	client := &http.Client{Transport: &http.Transport{DialContext: l.dial}}
	for i := range 10 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		ws, _, err := websocket.Dial(ctx, "ws://pipe/", &websocket.DialOptions{HTTPClient: client})
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		c := websocket.NetConn(ctx, ws, websocket.MessageBinary)
		got, err := io.ReadAll(c)
		c.Close()
		cancel()
		if err != nil || string(got) != payload {
			t.Fatalf("stream %d: read %q, then %v; want %q and io.EOF", i, got, err, payload)
		}
	}
}
