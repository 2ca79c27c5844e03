// Command berth is the command-line client of a Berth cluster. It speaks
// only HTTP, through shared/client.
//
// Where to connect and how to authenticate, in order of precedence:
//
//	--addr, else BERTH_ADDR (comma-separated list of managers)
//	BERTH_TOKEN, else BERTH_ACCESS_KEY + BERTH_SECRET_KEY,
//	else the credentials file written by "berth login"
//	($BERTH_CONFIG, $XDG_CONFIG_HOME/berth/credentials.json or
//	~/.config/berth/credentials.json), whose address is used when neither
//	--addr nor BERTH_ADDR is given; the default address is
//	http://127.0.0.1:8080.
//	--ca-cert, else BERTH_CA_CERT: the CA bundle https:// managers'
//	certificates are checked against (default: the system roots).
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/client"
	"github.com/berth-cluster/berth/shared/tlsfiles"
	"github.com/berth-cluster/berth/shared/version"
)

const defaultAddr = "http://127.0.0.1:8080"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// run executes one berth command line and returns the exit status. Errors
// are printed to stderr; API problems with their title, detail and every
// field error.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	root := newRootCmd(stdin, stdout, stderr, getenv)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		if code, ok := commandExit(err); ok {
			return code
		}
		printError(stderr, err)
		return 1
	}
	return 0
}

// cli is what every command shares: the process's streams and environment
// and the global flags.
type cli struct {
	stdin  *bufio.Reader
	stdinF io.Reader // the unbuffered stdin, to tell whether it is a terminal
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string

	output string // -o
	addr   string // --addr
	caCert string // --ca-cert
}

// newRootCmd builds the whole command tree around the given streams and
// environment lookup, so that tests can run commands in-process.
func newRootCmd(stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) *cobra.Command {
	c := &cli{
		stdin:  bufio.NewReader(stdin),
		stdinF: stdin,
		stdout: stdout,
		stderr: stderr,
		getenv: getenv,
	}
	root := &cobra.Command{
		Use:   "berth",
		Short: "Manage a Berth GPU cluster",
		Long: "berth talks to the managers of a Berth cluster.\n\n" +
			"It connects to --addr or BERTH_ADDR (comma-separated managers, default " + defaultAddr + ")\n" +
			"and authenticates with BERTH_TOKEN, or BERTH_ACCESS_KEY and BERTH_SECRET_KEY,\n" +
			"or the credentials saved by \"berth login\".",
		Version:       version.Version + " (" + version.Commit + ")",
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			switch c.output {
			case formatJSON, formatTable, formatCSV:
				return nil
			}
			return fmt.Errorf("output format %q is not one of json, table, csv", c.output)
		},
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVarP(&c.output, "output", "o", formatTable, "output format: json, table or csv")
	root.PersistentFlags().StringVar(&c.addr, "addr", "", "manager URLs, comma-separated (overrides BERTH_ADDR)")
	root.PersistentFlags().StringVar(&c.caCert, "ca-cert", "", "PEM CA bundle to trust for https:// managers (overrides BERTH_CA_CERT; default: the system roots)")
	root.AddCommand(
		c.loginCmd(),
		c.logoutCmd(),
		c.whoamiCmd(),
		c.infoCmd(),
		c.maintenanceCmd(),
		c.operatorCmd(),
		c.userCmd(),
		c.keypairCmd(),
		c.policyCmd(),
		c.resourcesCmd(),
		c.domainCmd(),
		c.groupCmd(),
		c.agentCmd(),
		c.imageCmd(),
		c.registryCmd(),
		c.sessionCmd(),
		c.folderCmd(),
		c.withSessionExport(c.withPolicyExport(c.exportCmd())),
		c.tlsCmd(),
		c.benchCmd(),
	)
	return root
}

// addrs returns the managers to talk to; fromFile is the credentials file's
// address, used when neither --addr nor BERTH_ADDR is set.
func (c *cli) addrs(fromFile string) []string {
	s := c.addr
	if s == "" {
		s = c.getenv("BERTH_ADDR")
	}
	if s == "" {
		s = fromFile
	}
	if s == "" {
		s = defaultAddr
	}
	var out []string
	for _, a := range strings.Split(s, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// client returns an authenticated API client, following the precedence
// described in the package documentation.
func (c *cli) client() (*client.Client, error) {
	cfg, err := c.clientConfig()
	if err != nil {
		return nil, err
	}
	return client.New(cfg)
}

// clientConfig is the configuration client uses: where and as whom.
func (c *cli) clientConfig() (client.Config, error) {
	cfg := client.Config{
		Token:     c.getenv("BERTH_TOKEN"),
		AccessKey: c.getenv("BERTH_ACCESS_KEY"),
		SecretKey: c.getenv("BERTH_SECRET_KEY"),
	}
	fileAddr := ""
	if cfg.Token == "" && cfg.AccessKey == "" && cfg.SecretKey == "" {
		path, err := credentialsPath(c.getenv)
		if err != nil {
			return cfg, err
		}
		creds, err := readCredentials(path)
		switch {
		case errors.Is(err, os.ErrNotExist):
			// Anonymous: the manager will say what needs a login.
		case err != nil:
			return cfg, err
		default:
			cfg.Token = creds.Token
			fileAddr = creds.Addr
		}
	}
	cfg.Addrs = c.addrs(fileAddr)
	tlsCfg, err := c.tlsConfig()
	if err != nil {
		return cfg, err
	}
	cfg.TLS = tlsCfg
	return cfg, nil
}

// tlsConfig is the TLS to dial managers with: trusting --ca-cert, else
// BERTH_CA_CERT, else (nil) the system roots.
func (c *cli) tlsConfig() (*tls.Config, error) {
	ca := c.caCert
	if ca == "" {
		ca = c.getenv("BERTH_CA_CERT")
	}
	if ca == "" {
		return nil, nil
	}
	cfg, err := tlsfiles.Files{CA: ca}.Client()
	if err != nil {
		return nil, fmt.Errorf("--ca-cert: %w", err)
	}
	return cfg, nil
}

// withClient adapts fn to cobra's RunE: it builds the API client (see
// client) and runs fn with it and the command's context. Checks that must
// fail before the client is built, such as "nothing to change", go in the
// command's PreRunE.
func (c *cli) withClient(fn func(ctx context.Context, cl *client.Client, cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		cl, err := c.client()
		if err != nil {
			return err
		}
		return fn(cmd.Context(), cl, cmd, args)
	}
}

// printError writes err to w; an API problem is written with its detail and
// every field error on lines of their own.
func printError(w io.Writer, err error) {
	var p *api.Problem
	if !errors.As(err, &p) {
		fmt.Fprintf(w, "Error: %v\n", err)
		return
	}
	fmt.Fprintf(w, "Error: %s (%d)\n", p.Title, p.Status)
	if p.Detail != "" {
		fmt.Fprintf(w, "  %s\n", p.Detail)
	}
	for _, fe := range p.Errors {
		if fe.Field == "" {
			fmt.Fprintf(w, "  - %s\n", fe.Reason)
			continue
		}
		fmt.Fprintf(w, "  - %s: %s\n", fe.Field, fe.Reason)
	}
}

// page holds the --limit and --cursor flags of a list command.
type page struct {
	limit  int
	cursor string
}

func (p *page) flags(cmd *cobra.Command) {
	cmd.Flags().IntVar(&p.limit, "limit", 0, "at most this many items (server default 100, max 1000)")
	cmd.Flags().StringVar(&p.cursor, "cursor", "", "continue from the cursor a previous page printed")
}

// query returns the query parameters of the flags given; a command adds
// its filters to it.
func (p *page) query() url.Values {
	q := url.Values{}
	if p.limit > 0 {
		q.Set("limit", strconv.Itoa(p.limit))
	}
	setIf(q, "cursor", p.cursor)
	return q
}

// setIf sets key in q when value is not empty.
func setIf(q url.Values, key, value string) {
	if value != "" {
		q.Set(key, value)
	}
}
