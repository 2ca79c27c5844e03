package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/client"
	"github.com/berth-cluster/berth/shared/slots"
)

// exitCode ends berth with a status of its own and no message: "session
// exec" exits with the command's code, as a shell would.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// commandExit reports the status an error asks berth to exit with.
func commandExit(err error) (int, bool) {
	var e exitCode
	if errors.As(err, &e) {
		return int(e), true
	}
	return 0, false
}

var sessionColumns = []string{"id", "name", "owner", "image", "type", "status", "status_info", "agents",
	"requested", "created_at", "started_at", "terminated_at", "exit_code"}

// sessionViewer renders sessions; the detail adds what one session shows.
func (c *cli) sessionViewer(detail bool) func(data any, ss []api.Session) view {
	human := c.output == formatTable
	return func(data any, ss []api.Session) view {
		v := view{data: data, columns: sessionColumns, single: detail}
		if detail {
			v.columns = append(append([]string{}, sessionColumns...), "access_key", "occupied", "last_activity_at", "run_as_root", "history")
		}
		for _, s := range ss {
			var agents []string
			for _, ct := range s.Containers {
				agents = append(agents, ct.Agent+":"+string(ct.Status))
			}
			row := []string{s.ID, s.Name, s.Owner, s.Image, s.Type, string(s.Status), s.StatusInfo, fmtList(agents),
				slotsCell(s.Requested, human), fmtTime(s.CreatedAt),
				fmtTimePtr(s.StartedAt), fmtTimePtr(s.TerminatedAt), fmtIntPtr(s.ExitCode)}
			if detail {
				var hist []string
				for _, h := range s.StatusHistory {
					step := string(h.Status) + "@" + fmtTime(h.At)
					if h.Reason != "" {
						step += "(" + h.Reason + ")"
					}
					hist = append(hist, step)
				}
				row = append(row, s.AccessKey, slotsCell(s.Occupied, human), fmtTimePtr(s.LastActivityAt),
					strconv.FormatBool(s.RunAsRoot), strings.Join(hist, " "))
			}
			v.rows = append(v.rows, row)
		}
		return v
	}
}

func (c *cli) sessionDetail(s *api.Session) view { return c.sessionViewer(true)(s, []api.Session{*s}) }

func (c *cli) sessionCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "session",
		Short: "Start, inspect, use and end compute sessions",
	}
	cmd.AddCommand(c.sessionStartCmd(), c.sessionListCmd(), c.sessionGetCmd(), c.sessionExecCmd(),
		c.sessionLogsCmd(), c.sessionShellCmd(), c.sessionPortForwardCmd(), c.sessionAppCmd(), c.sessionTerminateCmd())
	return cmd
}

// sessionStart holds the flags of "session start".
type sessionStart struct {
	image, typ, name, cpu, mem, gpu, fgpu string
	clusterSize                           int
	env, mounts, ports                    []string
	root, wait                            bool
}

// body builds the request, reporting every bad flag at once.
func (f *sessionStart) body(command []string) (api.SessionCreate, error) {
	in := api.SessionCreate{Image: f.image, Type: f.typ, Name: f.name, Command: command, ClusterSize: f.clusterSize,
		Resources: slots.Slots{}, Mounts: f.mounts, RunAsRoot: f.root}
	var bad []string
	if q, err := slots.Parse(slots.CPU, f.cpu); err != nil {
		bad = append(bad, "--cpu: "+err.Error())
	} else {
		in.Resources[slots.CPU] = q
	}
	if q, err := slots.ParseSize(f.mem); err != nil {
		bad = append(bad, "--mem: "+err.Error())
	} else {
		in.Resources[slots.Mem] = q
	}
	for _, g := range []struct {
		flag, text string
		slot       slots.Name
	}{{"gpu", f.gpu, slots.CUDADevice}, {"fgpu", f.fgpu, slots.CUDAShares}} {
		if g.text == "" {
			continue
		}
		if q, err := slots.Parse(g.slot, g.text); err != nil {
			bad = append(bad, "--"+g.flag+": "+err.Error())
		} else {
			in.Resources[g.slot] = q
		}
	}
	for _, kv := range f.env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			bad = append(bad, fmt.Sprintf("--env %q must be NAME=VALUE", kv))
			continue
		}
		if in.Env == nil {
			in.Env = map[string]string{}
		}
		in.Env[k] = v
	}
	for _, p := range f.ports {
		port, ok := parsePortFlag(p)
		if !ok {
			bad = append(bad, fmt.Sprintf("--port %q must be NAME:PORT or NAME:PORT/tcp (e.g. notebook:8888, ssh:22/tcp)", p))
			continue
		}
		in.Ports = append(in.Ports, port)
	}
	if len(bad) > 0 {
		return in, errors.New(strings.Join(bad, "; "))
	}
	return in, nil
}

// parsePortFlag reads --port NAME:PORT[/http|/tcp] (http by default); the
// managers check the name and the number.
func parsePortFlag(s string) (api.SessionPort, bool) {
	name, rest, ok := strings.Cut(s, ":")
	if !ok || name == "" {
		return api.SessionPort{}, false
	}
	num, proto, hasProto := strings.Cut(rest, "/")
	if !hasProto {
		proto = api.PortHTTP
	}
	n, err := strconv.Atoi(num)
	if err != nil || (proto != api.PortHTTP && proto != api.PortTCP) {
		return api.SessionPort{}, false
	}
	return api.SessionPort{Name: name, Port: n, Protocol: proto}, true
}

func (c *cli) sessionStartCmd() *cobra.Command {
	var f sessionStart
	cmd := &cobra.Command{
		Use:   "start --image IMAGE [flags] [-- COMMAND [ARG...]]",
		Short: "Start a session (it is PENDING until the scheduler places it)",
		Long: "Start a compute session with your keypair. Resources are per container. A request that can\n" +
			"never run (over your policy or over every agent) is refused at once with the numbers.\n" +
			"An interactive session without a command stays up for exec; a batch session runs its\n" +
			"command and ends with its exit code.",
		Example: "  berth session start --image berth/base:latest --cpu 1 --mem 512MiB\n" +
			"  berth session start --image jupyter --port notebook:8888 --port ssh:22/tcp\n" +
			"  berth session start --image berth/base:latest --type batch -- sh -c 'echo done'",
		RunE: c.withClient(func(ctx context.Context, cl *client.Client, _ *cobra.Command, args []string) error {
			in, err := f.body(args)
			if err != nil {
				return err
			}
			s, err := cl.CreateSession(ctx, in)
			if err != nil || !f.wait {
				return show(c, c.sessionDetail)(s, err)
			}
			return c.waitStarted(ctx, cl, s)
		}),
	}
	fl := cmd.Flags()
	fl.StringVar(&f.image, "image", "", "image to run (one the agents have: berth image list)")
	fl.StringVar(&f.typ, "type", api.SessionInteractive, "interactive or batch")
	fl.StringVar(&f.name, "name", "", "a name for the session")
	fl.StringVar(&f.cpu, "cpu", "1", "cores per container (decimal)")
	fl.StringVar(&f.mem, "mem", "1GiB", "memory per container (bytes or KiB, MiB, GiB, TiB)")
	fl.StringVar(&f.gpu, "gpu", "", "whole GPUs per container (cuda.device)")
	fl.StringVar(&f.fgpu, "fgpu", "", "fractional GPU per container (cuda.shares, e.g. 0.5)")
	fl.IntVar(&f.clusterSize, "cluster-size", 0, "containers in the session (default 1)")
	fl.StringArrayVar(&f.env, "env", nil, "environment variable NAME=VALUE (repeatable)")
	fl.StringArrayVar(&f.mounts, "mount", nil, "storage folder (name or id) to mount at /home/work/NAME, read-only unless you may write (repeatable)")
	fl.StringArrayVar(&f.ports, "port", nil, "a port the session serves, NAME:PORT (an http app: berth session app) or NAME:PORT/tcp (berth session port-forward) (repeatable)")
	fl.BoolVar(&f.root, "root", false, "run the containers as root (with reduced capabilities); your resource policy must allow it (allow_root)")
	fl.BoolVar(&f.wait, "wait", false, "return once the session is RUNNING or has ended, saying why; exit status 1 if it ended other than by its command succeeding (ERROR, CANCELLED, a non-zero exit code); interrupting the wait leaves the session as it is")
	return cmd
}

// waitStarted follows a new session with blocking reads until it is
// RUNNING or has ended, shows it, and says on stderr how it went. A session
// that ended other than by its command succeeding (ERROR, CANCELLED, a
// non-zero exit code, terminated before it ran) makes berth exit 1.
func (c *cli) waitStarted(ctx context.Context, cl *client.Client, s *api.Session) error {
	var index uint64
	for s.Status != api.SessionRunning && !s.Status.Ended() {
		next, at, err := cl.WaitSession(ctx, s.ID, index, time.Minute)
		if err != nil {
			return fmt.Errorf("waiting for session %s (it goes on; berth session get %s): %w", s.ID, s.ID, err)
		}
		if at == 0 {
			// A manager without blocking reads: read again in a while.
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Second):
			}
		}
		s, index = next, at
	}
	if err := render(c.stdout, c.output, c.sessionDetail(s)); err != nil {
		return err
	}
	why := s.StatusInfo
	if why == "" && len(s.StatusHistory) > 0 {
		why = s.StatusHistory[len(s.StatusHistory)-1].Reason
	}
	if s.Status == api.SessionRunning {
		fmt.Fprintf(c.stderr, "session %s is RUNNING\n", s.ID)
		return nil
	}
	ended := string(s.Status)
	if s.ExitCode != nil {
		ended += fmt.Sprintf(" with exit code %d", *s.ExitCode)
	}
	fmt.Fprintf(c.stderr, "session %s ended %s: %s\n", s.ID, ended, why)
	if s.Status == api.SessionTerminated && s.ExitCode != nil && *s.ExitCode == 0 {
		return nil // a command that ran to its end and succeeded
	}
	return exitCode(1)
}

func (c *cli) sessionListCmd() *cobra.Command {
	var (
		status, owner string
		all           bool
		pg            page
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List your sessions (admins: --owner or --all)",
		Args:  cobra.NoArgs,
		RunE: c.withClient(func(ctx context.Context, cl *client.Client, _ *cobra.Command, _ []string) error {
			q := pg.query()
			sessionFilterQuery(q, status, owner, all)
			return showList(c, c.sessionViewer(false))(cl.ListSessions(ctx, q))
		}),
	}
	sessionFilterFlags(cmd, &status, &owner, &all)
	pg.flags(cmd)
	return cmd
}

func sessionFilterFlags(cmd *cobra.Command, status, owner *string, all *bool) {
	cmd.Flags().StringVar(status, "status", "", "only sessions in this status (PENDING, RUNNING, TERMINATED, ...)")
	cmd.Flags().StringVar(owner, "owner", "", "only this user's sessions (admin)")
	cmd.Flags().BoolVar(all, "all", false, "every user's sessions (admin)")
}

func sessionFilterQuery(q url.Values, status, owner string, all bool) {
	setIf(q, "status", strings.ToUpper(status))
	setIf(q, "owner", owner)
	if all {
		q.Set("all", "true")
	}
}

func (c *cli) sessionGetCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "get ID",
		Short: "Show one session with its containers and status history",
		Args:  cobra.ExactArgs(1),
		RunE: c.withClient(func(ctx context.Context, cl *client.Client, _ *cobra.Command, args []string) error {
			return show(c, c.sessionDetail)(cl.GetSession(ctx, args[0]))
		}),
	}
}

func (c *cli) sessionExecCmd() *cobra.Command {
	var timeout int
	cmd := &cobra.Command{
		Use:   "exec ID -- COMMAND [ARG...]",
		Short: "Run a command in a RUNNING session; prints its output as it comes and exits with its code",
		Args:  cobra.MinimumNArgs(2),
		RunE: c.withClient(func(ctx context.Context, cl *client.Client, _ *cobra.Command, args []string) error {
			code := 0
			if c.output == formatJSON {
				// One JSON document: the whole result at the end.
				res, err := cl.ExecSession(ctx, args[0], args[1:], timeout)
				if err != nil {
					return err
				}
				if err := render(c.stdout, formatJSON, view{data: res}); err != nil {
					return err
				}
				code = res.ExitCode
			} else {
				var err error
				code, err = cl.ExecStream(ctx, args[0], args[1:], timeout, func(stream string, data []byte) {
					if stream == "stderr" {
						_, _ = c.stderr.Write(data)
					} else {
						_, _ = c.stdout.Write(data)
					}
				})
				if err != nil {
					return err
				}
			}
			if code != 0 {
				return exitCode(code)
			}
			return nil
		}),
	}
	cmd.Flags().IntVar(&timeout, "timeout", 0, "seconds the command may run (0: the agent's default, 30; at most 600)")
	return cmd
}

func (c *cli) sessionTerminateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "terminate ID",
		Short: "End a session (PENDING: cancelled; otherwise TERMINATING, then TERMINATED)",
		Args:  cobra.ExactArgs(1),
		RunE: c.withClient(func(ctx context.Context, cl *client.Client, _ *cobra.Command, args []string) error {
			return show(c, c.sessionDetail)(cl.TerminateSession(ctx, args[0]))
		}),
	}
}

// withSessionExport adds "export sessions" to the export command.
func (c *cli) withSessionExport(export *cobra.Command) *cobra.Command {
	export.AddCommand(c.exportKindCmd(exportKind{
		kind:  "sessions",
		short: "Export sessions as CSV (admins: every session they can see; others: their own)",
		filters: func(cmd *cobra.Command) func(url.Values) {
			var (
				status, owner string
				all           bool
			)
			sessionFilterFlags(cmd, &status, &owner, &all)
			return func(q url.Values) { sessionFilterQuery(q, status, owner, all) }
		},
	}))
	return export
}
