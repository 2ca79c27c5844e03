package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/coder/websocket"

	"github.com/berth-cluster/berth/agent/runtime"
	"github.com/berth-cluster/berth/shared/api"
)

// A terminal is a process on a pseudo-terminal in a container, relayed over
// a WebSocket to the manager, which relays it to the user: binary messages
// are input one way and output the other, text messages are
// api.TerminalMessage (resize in, exit out). The process ends when the
// WebSocket does, and the WebSocket when the process does.

// defaultShells are tried in order when no command is given.
var defaultShells = [][]string{{"/bin/bash"}, {"/bin/sh"}}

// terminalChunk is the most output one message carries.
const terminalChunk = 32 << 10

// terminalEnv is added to the container's environment: what a terminal
// emulator such as xterm.js understands.
var terminalEnv = []string{"TERM=xterm-256color"}

// terminal is GET /v1/containers/{id}/terminal?command=…&cols=&rows=: the
// process is started before the upgrade, so that a container that is not
// running or a command that does not exist is an HTTP answer the manager
// can pass on as it is.
func (a *Agent) terminal(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	q := r.URL.Query()
	cols, rows := uint16(80), uint16(24)
	if c, rr, ok := api.TerminalSize(atoiOr(q.Get("cols"), 80), atoiOr(q.Get("rows"), 24)); ok {
		cols, rows = c, rr
	}
	output, stdout := io.Pipe()
	p, input, err := a.startTerminal(r.Context(), id, q["command"], runtime.ExecOptions{TTY: true, Cols: cols, Rows: rows,
		Env: terminalEnv, Stdout: stdout})
	if err != nil {
		if errors.Is(err, runtime.ErrCommandNotFound) {
			problem(w, http.StatusBadRequest, err.Error())
			return
		}
		runtimeProblem(w, err)
		return
	}
	defer func() {
		// In this order: the runtime's copies of the output and the input
		// end first (the pipes fail them), then the process with its
		// session.
		output.Close()
		input.Close()
		if err := p.Close(); err != nil {
			a.log.Warn("end terminal", "container", id, "err", err)
		}
	}()
	c, ok := a.accept(w, r)
	if !ok {
		return
	}
	defer a.streams.remove(c)
	// The request's context ends with the handler; the relay needs its own.
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	defer cancel()
	c.SetReadLimit(64 << 10)

	// Input: the manager's messages, until it closes or fails.
	go func() {
		defer cancel()
		defer input.Close()
		for {
			typ, b, err := c.Read(ctx)
			if err != nil {
				return
			}
			if typ == websocket.MessageBinary {
				if _, err := input.Write(b); err != nil {
					return
				}
				continue
			}
			var m api.TerminalMessage
			if json.Unmarshal(b, &m) != nil || m.Type != api.TerminalResize {
				continue // not ours to understand: ignored
			}
			if cols, rows, ok := api.TerminalSize(m.Cols, m.Rows); ok {
				if err := p.Resize(ctx, cols, rows); err != nil {
					a.log.Warn("resize terminal", "container", id, "err", err)
				}
			}
		}
	}()
	// Output: copied as it comes; a manager that takes none holds the
	// process back (the pipe has no buffer), and is dropped past the stall.
	copied := make(chan error, 1)
	go func() {
		buf := make([]byte, terminalChunk)
		for {
			n, err := output.Read(buf)
			if n > 0 {
				if werr := a.writeWithin(ctx, c, websocket.MessageBinary, buf[:n]); werr != nil {
					output.CloseWithError(werr)
					copied <- werr
					return
				}
			}
			if err != nil {
				copied <- nil
				return
			}
		}
	}()

	code, err := p.Wait(ctx)
	if err != nil {
		// The manager went away (ctx) or the agent is shutting down: the
		// deferred Close ends the process.
		c.CloseNow()
		return
	}
	stdout.Close() // the output is all written: the copy ends at its end
	if err := <-copied; err != nil {
		c.CloseNow()
		return
	}
	exit, _ := json.Marshal(api.TerminalMessage{Type: api.TerminalExit, Code: &code})
	if err := a.writeWithin(ctx, c, websocket.MessageText, exit); err != nil {
		c.CloseNow()
		return
	}
	c.Close(websocket.StatusNormalClosure, fmt.Sprintf("the process exited with code %d", code))
}

// startTerminal starts command, or the first default shell the container
// has, and returns it with the writer of its input. Each try has an input
// of its own: the runtime reads a failed try's input until it ends, and
// must not take what is typed into the one that started.
func (a *Agent) startTerminal(ctx context.Context, id string, command []string, opts runtime.ExecOptions) (runtime.Process, *io.PipeWriter, error) {
	tries := defaultShells
	if len(command) > 0 {
		tries = [][]string{command}
	}
	var err error
	for _, cmd := range tries {
		stdin, input := io.Pipe()
		opts.Command, opts.Stdin = cmd, stdin
		var p runtime.Process
		if p, err = a.cfg.Runtime.StartExec(ctx, id, opts); err == nil {
			return p, input, nil
		}
		input.Close()
		if !errors.Is(err, runtime.ErrCommandNotFound) {
			return nil, nil, err
		}
	}
	if len(command) > 0 {
		return nil, nil, err
	}
	return nil, nil, fmt.Errorf("the container has neither /bin/bash nor /bin/sh: %w", err)
}

func atoiOr(s string, def int) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return def
	}
	return n
}
