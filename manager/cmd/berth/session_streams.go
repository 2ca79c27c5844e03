package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/coder/websocket"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/client"
)

// The commands that stay attached to a session: a terminal, followed logs,
// port-forwards and the link to an app.

func (c *cli) sessionShellCmd() *cobra.Command {
	var container int
	cmd := &cobra.Command{
		Use:   "shell ID [-- COMMAND [ARG...]]",
		Short: "Open a terminal in a RUNNING session (default: the image's bash, else sh); exits with the remote command's code",
		Long: "Open a terminal in a RUNNING session. On a terminal, berth puts it in raw mode: every key,\n" +
			"Ctrl-C included, goes to the remote process, and the window's size follows yours. Without a\n" +
			"terminal (a pipe), the input is sent as it is and the end of it as Ctrl-D.",
		Args: cobra.MinimumNArgs(1),
		RunE: c.withClient(func(ctx context.Context, cl *client.Client, _ *cobra.Command, args []string) error {
			return c.shell(ctx, cl, args[0], container, args[1:])
		}),
	}
	cmd.Flags().IntVar(&container, "container", 0, "the container's index (0: the first)")
	return cmd
}

// shell relays a terminal between this process's streams and the session.
func (c *cli) shell(ctx context.Context, cl *client.Client, id string, container int, command []string) error {
	in, _ := c.stdinF.(*os.File)
	tty := in != nil && term.IsTerminal(int(in.Fd()))
	opts := client.TerminalOptions{Container: container, Command: command}
	if tty {
		opts.Cols, opts.Rows, _ = term.GetSize(int(in.Fd()))
	}
	conn, err := cl.Terminal(ctx, id, opts)
	if err != nil {
		return err
	}
	defer conn.CloseNow()
	if tty {
		old, err := term.MakeRaw(int(in.Fd()))
		if err != nil {
			return fmt.Errorf("put the terminal in raw mode: %w", err)
		}
		defer term.Restore(int(in.Fd()), old)
	}
	var mu sync.Mutex // one writer at a time on the WebSocket
	send := func(typ websocket.MessageType, b []byte) error {
		mu.Lock()
		defer mu.Unlock()
		return conn.Write(ctx, typ, b)
	}
	if tty {
		winch := make(chan os.Signal, 1)
		signal.Notify(winch, syscall.SIGWINCH)
		defer signal.Stop(winch)
		go func() {
			for range winch {
				cols, rows, err := term.GetSize(int(in.Fd()))
				if err != nil {
					continue
				}
				b, _ := json.Marshal(api.TerminalMessage{Type: api.TerminalResize, Cols: cols, Rows: rows})
				if send(websocket.MessageText, b) != nil {
					return
				}
			}
		}()
	}
	go func() {
		buf := make([]byte, 32<<10)
		for {
			n, err := c.stdinF.Read(buf)
			if n > 0 && send(websocket.MessageBinary, buf[:n]) != nil {
				return
			}
			if err != nil {
				if !tty {
					_ = send(websocket.MessageBinary, []byte{4}) // the end of the input, as a terminal says it
				}
				return
			}
		}
	}()
	var exit *int
	for {
		typ, b, err := conn.Read(ctx)
		if err != nil {
			var ce websocket.CloseError
			switch {
			case exit != nil && errors.As(err, &ce) && ce.Code == websocket.StatusNormalClosure:
			case exit != nil:
				// The exit arrived; how the connection went after it
				// does not matter.
			case errors.As(err, &ce):
				return fmt.Errorf("the terminal closed: %s", ce.Reason)
			default:
				return fmt.Errorf("the terminal's connection failed: %w", err)
			}
			break
		}
		if typ == websocket.MessageBinary {
			if _, err := c.stdout.Write(b); err != nil {
				return err
			}
			continue
		}
		var m api.TerminalMessage
		if json.Unmarshal(b, &m) == nil && m.Type == api.TerminalExit && m.Code != nil {
			exit = m.Code
		}
	}
	if *exit != 0 {
		return exitCode(*exit)
	}
	return nil
}

func (c *cli) sessionLogsCmd() *cobra.Command {
	var (
		follow    bool
		container int
		since     string
		tail      int
	)
	cmd := &cobra.Command{
		Use:   "logs ID",
		Short: "Print the output of a session's container (-f: and follow it until the container ends)",
		Args:  cobra.ExactArgs(1),
		RunE: c.withClient(func(ctx context.Context, cl *client.Client, _ *cobra.Command, args []string) error {
			o := client.LogOptions{Container: container, Follow: follow, Tail: tail}
			if since != "" {
				t, err := parseSince(since, time.Now())
				if err != nil {
					return err
				}
				o.Since = t
			}
			body, err := cl.Logs(ctx, args[0], o)
			if err != nil {
				return err
			}
			defer body.Close()
			if _, err := io.Copy(c.stdout, body); err != nil {
				if ctx.Err() != nil {
					return nil // Ctrl-C while following
				}
				return fmt.Errorf("the logs of %s were cut (the agent or the manager went away; run the command again): %w", args[0], err)
			}
			return nil
		}),
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing what the container writes, until it ends")
	cmd.Flags().IntVar(&container, "container", 0, "the container's index (0: the first)")
	cmd.Flags().StringVar(&since, "since", "", "only the output written since: an RFC 3339 time, or a duration ago (10m, 1h)")
	cmd.Flags().IntVar(&tail, "tail", -1, "start with the last N lines (-1: all)")
	return cmd
}

// parseSince reads --since: an RFC 3339 time or a duration before now.
func parseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("--since %q must be an RFC 3339 time (2025-01-02T15:04:05Z) or a duration ago (10m, 1h)", s)
}

func (c *cli) sessionPortForwardCmd() *cobra.Command {
	var (
		container int
		address   string
	)
	cmd := &cobra.Command{
		Use:   "port-forward ID LOCAL:REMOTE",
		Short: "Forward a local TCP port to a port the session declared (REMOTE: its name or number), until Ctrl-C",
		Long: "Listen on LOCAL (on --address, 127.0.0.1 by default; 0 picks a free port) and carry each\n" +
			"connection to REMOTE in the session, through the managers and the session's agent. REMOTE must\n" +
			"be one of the session's declared ports (berth session get ID lists them).",
		Args: cobra.ExactArgs(2),
		RunE: c.withClient(func(ctx context.Context, cl *client.Client, _ *cobra.Command, args []string) error {
			local, remote, ok := strings.Cut(args[1], ":")
			if !ok || remote == "" {
				return fmt.Errorf("%q must be LOCAL:REMOTE, e.g. 8888:8888 or 2222:ssh", args[1])
			}
			if n, err := strconv.Atoi(local); err != nil || n < 0 || n > 65535 {
				return fmt.Errorf("the local port %q must be a number from 0 to 65535", local)
			}
			return c.portForward(ctx, cl, args[0], net.JoinHostPort(address, local), remote, container)
		}),
	}
	cmd.Flags().IntVar(&container, "container", 0, "the container's index (0: the first)")
	cmd.Flags().StringVar(&address, "address", "127.0.0.1", "the local address to listen on")
	return cmd
}

func (c *cli) portForward(ctx context.Context, cl *client.Client, id, listen, remote string, container int) error {
	// One connection first, so that a port the session did not declare,
	// or a session that is not running, fails at once with its reason.
	first, err := cl.PortForward(ctx, id, remote, container)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		first.Close()
		return fmt.Errorf("listen on %s: %w", listen, err)
	}
	defer ln.Close()
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	fmt.Fprintf(c.stdout, "Forwarding %s to port %s of session %s (Ctrl-C to stop)\n", ln.Addr(), remote, id)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		local, err := ln.Accept()
		if err != nil {
			if first != nil {
				first.Close()
			}
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("accept on %s: %w", listen, err)
		}
		up := first
		first = nil
		if up == nil {
			if up, err = cl.PortForward(ctx, id, remote, container); err != nil {
				fmt.Fprintf(c.stderr, "port %s of session %s: %v\n", remote, id, err)
				local.Close()
				continue
			}
		}
		wg.Go(func() { pipe(local, up) })
	}
}

// pipe copies two connections into each other until either ends.
func pipe(a, b net.Conn) {
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(a, b); done <- struct{}{} }()
	go func() { _, _ = io.Copy(b, a); done <- struct{}{} }()
	<-done
	a.Close()
	b.Close()
	<-done
}

func (c *cli) sessionAppCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "app ID NAME",
		Short: "Print a link that opens the session's web app NAME (an http port it declared) in a browser; it opens once, within a minute",
		Args:  cobra.ExactArgs(2),
		RunE: c.withClient(func(ctx context.Context, cl *client.Client, _ *cobra.Command, args []string) error {
			tok, err := cl.AppToken(ctx, args[0], args[1])
			if err != nil {
				return err
			}
			if c.output == formatJSON {
				return render(c.stdout, formatJSON, view{data: tok})
			}
			fmt.Fprintln(c.stdout, tok.URL)
			return nil
		}),
	}
}
