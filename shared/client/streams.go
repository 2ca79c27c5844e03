package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/coder/websocket"

	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/wsnet"
)

// Streams: terminals and port-forwards (WebSockets), followed logs and
// streamed exec. Like every call they go to the first manager that answers;
// once one has, the stream stays with it (a failover cannot move a
// process's terminal).

// dialTimeout bounds the opening of a WebSocket (not its life).
const dialTimeout = 30 * time.Second

// DialWebSocket opens a WebSocket at path below a manager's base URL,
// authenticated as every call is. An error answer is returned as by Do.
func (c *Client) DialWebSocket(ctx context.Context, path string, query url.Values) (*websocket.Conn, error) {
	what := "GET " + path
	start := int(c.preferred.Load())
	var lastErr error
	for attempt := 0; attempt < c.maxAttempts; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("%s: %w", what, joinLast(err, lastErr))
		}
		if attempt > 0 && attempt%len(c.addrs) == 0 {
			if err := c.wait(ctx, attempt/len(c.addrs)); err != nil {
				return nil, fmt.Errorf("%s: %w", what, joinLast(err, lastErr))
			}
		}
		i := (start + attempt) % len(c.addrs)
		conn, retry, err := c.dialOnce(ctx, c.addrs[i], path, query)
		if err == nil {
			c.preferred.Store(int64(i))
			return conn, nil
		}
		if !retry {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		lastErr = fmt.Errorf("%s: %w", c.addrs[i].Host, err)
	}
	return nil, fmt.Errorf("%s: no manager answered after %d attempts: %w", what, c.maxAttempts, lastErr)
}

func (c *Client) dialOnce(ctx context.Context, base *url.URL, path string, query url.Values) (*websocket.Conn, bool, error) {
	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	req, err := c.newRequest(dctx, true, base, http.MethodGet, path, query, bytesPayload(nil), "")
	if err != nil {
		return nil, false, err
	}
	conn, resp, err := websocket.Dial(dctx, req.URL.String(), &websocket.DialOptions{HTTPClient: c.http, HTTPHeader: req.Header})
	if err == nil {
		return conn, false, nil
	}
	if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
		if resp.Body == nil {
			resp.Body = http.NoBody
		}
		apiErr := decodeError(resp)
		var p *api.Problem
		retry := errors.As(apiErr, &p) && resp.StatusCode == http.StatusServiceUnavailable && p.Type == api.ProblemNoLeader
		return nil, retry, apiErr
	}
	if ctx.Err() != nil {
		return nil, false, err
	}
	return nil, retryable(http.MethodGet, err), err
}

// TerminalOptions says which terminal to open.
type TerminalOptions struct {
	// Container is the container's index (0: the first).
	Container int
	// Command is what runs, one word each (empty: the image's shell).
	Command []string
	// Cols and Rows are the terminal's first size (0: the server's
	// default, 80 × 24).
	Cols, Rows int
}

// Terminal opens a terminal in a RUNNING session (docs/API.md): binary
// messages are input and output; send api.TerminalMessage resizes as text;
// an api.TerminalMessage exit arrives before the close.
func (c *Client) Terminal(ctx context.Context, id string, o TerminalOptions) (*websocket.Conn, error) {
	q := url.Values{}
	if o.Container != 0 {
		q.Set("container", strconv.Itoa(o.Container))
	}
	for _, w := range o.Command {
		q.Add("command", w)
	}
	if o.Cols > 0 && o.Rows > 0 {
		q.Set("cols", strconv.Itoa(o.Cols))
		q.Set("rows", strconv.Itoa(o.Rows))
	}
	return c.DialWebSocket(ctx, sessionPath(id)+"/terminal", q)
}

// PortForward opens one TCP connection to a port the session declared
// (its name or number), in container (0: the first). The connection lives
// until it is closed; ctx bounds only its opening.
func (c *Client) PortForward(ctx context.Context, id, port string, container int) (net.Conn, error) {
	q := url.Values{}
	if container != 0 {
		q.Set("container", strconv.Itoa(container))
	}
	ws, err := c.DialWebSocket(ctx, sessionPath(id)+"/ports/"+url.PathEscape(port)+"/forward", q)
	if err != nil {
		return nil, err
	}
	return wsnet.NetConn(context.Background(), ws), nil
}

// LogOptions says which output of a session to read.
type LogOptions struct {
	// Container is the container's index (0: the first).
	Container int
	// Follow keeps the answer open for what the container writes next,
	// until it ends.
	Follow bool
	// Since, when set, starts at the output written from then on.
	Since time.Time
	// Tail, when ≥ 0, is how many of the last lines to start with; -1:
	// all of them.
	Tail int
}

// Logs opens a container's output as the options say; the caller reads
// and closes it.
func (c *Client) Logs(ctx context.Context, id string, o LogOptions) (io.ReadCloser, error) {
	q := url.Values{}
	if o.Container != 0 {
		q.Set("container", strconv.Itoa(o.Container))
	}
	if o.Follow {
		q.Set("follow", "true")
	}
	if !o.Since.IsZero() {
		q.Set("since", o.Since.UTC().Format(time.RFC3339Nano))
	}
	if o.Tail >= 0 {
		q.Set("tail", strconv.Itoa(o.Tail))
	}
	resp, err := c.DoRaw(ctx, http.MethodGet, sessionPath(id)+"/logs", q, nil, "")
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// ExecStream runs a command in the session's first container and calls
// out with its output as it comes; it returns the exit code. A command
// killed at its timeout returns an error saying so.
func (c *Client) ExecStream(ctx context.Context, id string, command []string, timeoutS int, out func(stream string, data []byte)) (int, error) {
	body, err := json.Marshal(api.ExecRequest{Command: command, TimeoutS: timeoutS, Stream: true})
	if err != nil {
		return 0, err
	}
	resp, err := c.DoRaw(ctx, http.MethodPost, sessionPath(id)+"/exec", nil, bytes.NewReader(body), "application/json")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var ev api.ExecEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return 0, fmt.Errorf("exec in %s: a line of the answer is not an event: %w", id, err)
		}
		switch {
		case ev.ExitCode != nil:
			return *ev.ExitCode, nil
		case ev.Error != "":
			return 0, fmt.Errorf("exec in %s: %s", id, ev.Error)
		default:
			out(ev.Stream, ev.Data)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("exec in %s: the answer was cut: %w", id, err)
	}
	return 0, fmt.Errorf("exec in %s: the answer ended without the command's exit code (the agent or a manager went away)", id)
}

// AppToken asks for a one-time link that opens the session's app name on
// the apps origin (the session's owner only).
func (c *Client) AppToken(ctx context.Context, id, name string) (*api.AppToken, error) {
	return call[api.AppToken](ctx, c, http.MethodPost, sessionPath(id)+"/apps/"+url.PathEscape(name)+"/token", nil)
}
