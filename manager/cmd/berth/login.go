package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/client"
)

func (c *cli) loginCmd() *cobra.Command {
	var email, password string
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Log in with email and password and save the token",
		Long: "Log in and save the bearer token, with the manager addresses, to the credentials file\n" +
			"($BERTH_CONFIG, $XDG_CONFIG_HOME/berth/credentials.json or ~/.config/berth/credentials.json).\n" +
			"The password comes from -p, else BERTH_PASSWORD, else a line read from standard input.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, err := credentialsPath(c.getenv)
			if err != nil {
				return err
			}
			if email == "" {
				if email, err = c.prompt("Email: "); err != nil {
					return fmt.Errorf("reading email: %w", err)
				}
			}
			if password == "" {
				password = c.getenv("BERTH_PASSWORD")
			}
			if password == "" {
				if password, err = c.promptSecret("Password: "); err != nil {
					return fmt.Errorf("reading password: %w", err)
				}
			}
			// Log in to the addresses given now, else those logged in to last.
			prev, err := readCredentials(path)
			if err != nil {
				// A missing or unreadable file is replaced by this login.
				prev = credentials{}
			}
			addrs := c.addrs(prev.Addr)
			dial, err := c.tlsConfig()
			if err != nil {
				return err
			}
			anon, err := client.New(client.Config{Addrs: addrs, TLS: dial})
			if err != nil {
				return err
			}
			resp, err := anon.Login(cmd.Context(), email, password)
			if err != nil {
				return err
			}
			creds := credentials{
				Addr:      strings.Join(addrs, ","),
				Token:     resp.Token,
				Email:     resp.User.Email,
				ExpiresAt: resp.ExpiresAt,
			}
			if err := writeCredentials(path, creds); err != nil {
				return err
			}
			if c.output == formatJSON {
				// The token is in the credentials file; do not print it.
				return render(c.stdout, c.output, view{data: map[string]any{
					"user": resp.User, "expires_at": resp.ExpiresAt, "credentials_file": path,
				}})
			}
			fmt.Fprintf(c.stdout, "Logged in as %s (%s) until %s; credentials saved to %s\n",
				resp.User.Email, resp.User.Role, fmtTime(resp.ExpiresAt), path)
			if resp.User.NeedPasswordChange {
				fmt.Fprintln(c.stderr, "Your password must be changed before you can do anything else.")
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&email, "email", "e", "", "email to log in as (asked for when absent)")
	cmd.Flags().StringVarP(&password, "password", "p", "", "password (else BERTH_PASSWORD, else read from standard input)")
	return cmd
}

// promptSecret reads a password without echo when standard input is a
// terminal, else one line like prompt.
func (c *cli) promptSecret(label string) (string, error) {
	f, ok := c.stdinF.(*os.File)
	if !ok || !isTerminal(f) {
		return c.prompt(label)
	}
	fmt.Fprint(c.stderr, label)
	b, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(c.stderr)
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	return string(b), nil
}

// prompt reads one line from standard input, showing label on stderr when
// standard input is a terminal.
func (c *cli) prompt(label string) (string, error) {
	if isTerminal(c.stdinF) {
		fmt.Fprint(c.stderr, label)
	}
	line, err := c.stdin.ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		if errors.Is(err, io.EOF) {
			return "", errors.New("standard input ended; pass the value as a flag or in the environment")
		}
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}

func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func (c *cli) logoutCmd() *cobra.Command {
	var path string
	return &cobra.Command{
		Use:   "logout",
		Short: "End the saved login session and remove the credentials file",
		Args:  cobra.NoArgs,
		PreRunE: func(*cobra.Command, []string) (err error) {
			path, err = credentialsPath(c.getenv)
			return err
		},
		RunE: c.withClient(func(ctx context.Context, cl *client.Client, _ *cobra.Command, _ []string) error {
			err := cl.Logout(ctx)
			var p *api.Problem
			if err != nil && !(errors.As(err, &p) && p.Status == 401) {
				return err
			}
			// An expired token is logged out already; the file goes either way.
			if err := removeCredentials(path); err != nil {
				return err
			}
			fmt.Fprintln(c.stdout, "Logged out")
			return nil
		}),
	}
}

func (c *cli) whoamiCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "whoami",
		Short: "Show who the credentials belong to",
		Args:  cobra.NoArgs,
		RunE: c.withClient(func(ctx context.Context, cl *client.Client, _ *cobra.Command, _ []string) error {
			return show(c, whoamiView)(cl.WhoAmI(ctx))
		}),
	}
}

// whoamiView is the user the credentials belong to, with the access key
// they authenticate with.
func whoamiView(me *api.WhoAmI) view {
	v := userView(me, []api.User{me.User})
	v.single = true
	v.columns = append(v.columns, "access_key")
	v.rows[0] = append(v.rows[0], me.AccessKey)
	return v
}
