package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/creack/pty"

	"github.com/berth-cluster/berth/shared/api"
)

// runCLIEnv makes the test binary run berth itself (TestMain), so that a
// test can start the CLI as a process of its own, on a terminal of its own.
const runCLIEnv = "BERTH_TEST_RUN_CLI"

func TestMain(m *testing.M) {
	if os.Getenv(runCLIEnv) == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
		code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// ptyTerminalServer answers GET /v1/sessions/{id}/terminal as the managers
// do, with a real shell on a pseudo-terminal of this machine standing for
// the container's: what the CLI does with its own terminal (raw mode, the
// window size, Ctrl-C, the exit code) is what is tested.
func ptyTerminalServer(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/sessions/"+testSession.ID+"/terminal" || r.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, "wrong request", http.StatusBadRequest)
			return
		}
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		cols, _ := strconv.Atoi(r.URL.Query().Get("cols"))
		rows, _ := strconv.Atoi(r.URL.Query().Get("rows"))
		sh := exec.Command("/bin/sh")
		sh.Env = []string{"PATH=/usr/bin:/bin", "PS1=$ ", "TERM=xterm"}
		tty, err := pty.StartWithSize(sh, &pty.Winsize{Cols: uint16(cols), Rows: uint16(rows)})
		if err != nil {
			t.Errorf("start the shell: %v", err)
			return
		}
		defer tty.Close()
		ctx := context.Background()
		go func() {
			for {
				typ, b, err := c.Read(ctx)
				if err != nil {
					_ = sh.Process.Kill()
					return
				}
				if typ == websocket.MessageBinary {
					_, _ = tty.Write(b)
					continue
				}
				var m api.TerminalMessage
				if json.Unmarshal(b, &m) == nil && m.Type == api.TerminalResize {
					_ = pty.Setsize(tty, &pty.Winsize{Cols: uint16(m.Cols), Rows: uint16(m.Rows)})
				}
			}
		}()
		buf := make([]byte, 4096)
		for {
			n, err := tty.Read(buf)
			if n > 0 {
				_ = c.Write(ctx, websocket.MessageBinary, buf[:n])
			}
			if err != nil {
				break
			}
		}
		_ = sh.Wait()
		code := sh.ProcessState.ExitCode()
		exit, _ := json.Marshal(api.TerminalMessage{Type: api.TerminalExit, Code: &code})
		_ = c.Write(ctx, websocket.MessageText, exit)
		c.Close(websocket.StatusNormalClosure, fmt.Sprintf("the process exited with code %d", code))
	}))
	t.Cleanup(srv.Close)
	return srv
}

type screen struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *screen) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *screen) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// berth session shell on a pseudo-terminal: the remote terminal starts at
// the local size and follows it (SIGWINCH), keys go over raw (Ctrl-C
// interrupts the remote command, not berth), and berth exits with the
// remote shell's code.
func TestSessionShellOnATerminal(t *testing.T) {
	srv := ptyTerminalServer(t)
	cmd := exec.Command(os.Args[0], "session", "shell", testSession.ID)
	cmd.Env = []string{runCLIEnv + "=1", "BERTH_ADDR=" + srv.URL, "BERTH_TOKEN=tok", "HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH")}
	ptmx, err := pty.StartWithSize(cmd, &pty.Winsize{Cols: 80, Rows: 24})
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
	}()
	out := &screen{}
	go func() { _, _ = io.Copy(out, ptmx) }()
	waitFor := func(want string, resend string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		next := time.Now()
		for !strings.Contains(out.String(), want) {
			if time.Now().After(deadline) {
				t.Fatalf("the terminal never showed %q; it shows %q", want, out.String())
			}
			if resend != "" && time.Now().After(next) {
				fmt.Fprint(ptmx, resend)
				next = time.Now().Add(time.Second)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// Enter is a carriage return on a terminal in raw mode.
	fmt.Fprint(ptmx, "echo hi-$((1+1)); stty size\r")
	waitFor("hi-2", "")
	waitFor("24 80", "")

	if err := pty.Setsize(ptmx, &pty.Winsize{Cols: 100, Rows: 30}); err != nil {
		t.Fatal(err)
	}
	// The resize travels on its own: ask until the shell sees it.
	waitFor("30 100", "stty size\r")

	fmt.Fprint(ptmx, "sleep 50\r")
	time.Sleep(300 * time.Millisecond)
	fmt.Fprint(ptmx, "\x03") // Ctrl-C, a key like any other
	fmt.Fprint(ptmx, "echo after-$((2+3))\r")
	waitFor("after-5", "")

	fmt.Fprint(ptmx, "exit 3\r")
	select {
	case err := <-exited:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 3 {
			t.Fatalf("berth ended with %v; want exit status 3", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("berth did not exit after the remote shell did; the terminal shows %q", out.String())
	}
}
