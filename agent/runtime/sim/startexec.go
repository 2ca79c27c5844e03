package sim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/berth-cluster/berth/agent/runtime"
)

// StartExec implements runtime.Runtime for what Exec understands: `echo`
// writes its words, `exit N` and `sleep N` end with their code after their
// time. Anything else (a shell for a terminal included) fails with
// runtime.ErrCommandNotFound, saying the container is simulated.
func (r *Runtime) StartExec(_ context.Context, id string, opts runtime.ExecOptions) (runtime.Process, error) {
	if opts.Stdin != nil {
		// The contract: Stdin is read until it ends, whatever happens.
		go func() { _, _ = io.Copy(io.Discard, opts.Stdin) }()
	}
	in, echo, err := r.execCommand(id, opts.Command)
	if err != nil {
		return nil, err
	}
	if !echo && in.kind == forever {
		return nil, fmt.Errorf("exec in %s: %s: %w", id, notRun(opts.Command), runtime.ErrCommandNotFound)
	}
	p := &process{tty: opts.TTY, done: make(chan struct{}), kill: make(chan struct{})}
	go func() {
		defer close(p.done)
		if echo {
			if opts.Stdout != nil {
				_, _ = io.WriteString(opts.Stdout, strings.Join(opts.Command[1:], " ")+"\n")
			}
			return
		}
		if in.runs > 0 {
			select {
			case <-r.cfg.Clock.After(in.runs):
			case <-p.kill:
				p.code = 137 // 128 + SIGKILL, as a shell reports it
				return
			}
		}
		p.code = in.code
	}()
	return p, nil
}

// process is a simulated exec.
type process struct {
	tty  bool
	done chan struct{}
	kill chan struct{}
	once sync.Once
	code int // written before done closes
}

func (p *process) Resize(context.Context, uint16, uint16) error {
	if !p.tty {
		return errors.New("resize: the process has no terminal")
	}
	return nil
}

func (p *process) Wait(ctx context.Context) (int, error) {
	select {
	case <-p.done:
		return p.code, nil
	case <-ctx.Done():
		return 0, fmt.Errorf("wait for exec: %w", ctx.Err())
	}
}

func (p *process) Close() error {
	p.once.Do(func() { close(p.kill) })
	<-p.done
	return nil
}
