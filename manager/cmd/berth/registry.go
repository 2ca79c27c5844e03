package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/client"
)

// Registries the agents pull images from; the password never travels on
// the command line (ps shows it to every local account): it is read from
// standard input with --password-stdin.

func (c *cli) registryCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "registry",
		Short: "Manage the container registries the agents pull from (admins read them; only superadmins change them)",
		Long: "Image references whose host is a registry's url host are pulled with its username, password and\n" +
			"TLS settings; other references anonymously over HTTPS. The password is write-only: it is stored\n" +
			"sealed with the managers' -secrets-key-file and never shown again.",
	}
	cmd.AddCommand(c.registryListCmd(), c.registryGetCmd(), c.registryAddCmd(), c.registryUpdateCmd(), c.registryRemoveCmd())
	return cmd
}

func (c *cli) registryViewer(data any, rs []api.Registry) view {
	v := view{data: data, columns: []string{"name", "url", "username", "password_set", "insecure_http", "ca_pem", "modified_at"}}
	for _, r := range rs {
		ca := ""
		if r.CAPEM != "" {
			ca = "yes"
			if c.output != formatTable {
				ca = r.CAPEM
			}
		}
		v.rows = append(v.rows, []string{r.Name, r.URL, r.Username, fmtBool(r.PasswordSet), fmtBool(r.InsecureHTTP), ca, fmtTime(r.ModifiedAt)})
	}
	return v
}

func (c *cli) registryDetail(r *api.Registry) view { return c.registryViewer(r, []api.Registry{*r}) }

func (c *cli) registryListCmd() *cobra.Command {
	var pg page
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List registries (never their passwords: password_set says whether one is stored)",
		Args:  cobra.NoArgs,
		RunE: c.withClient(func(ctx context.Context, cl *client.Client, _ *cobra.Command, _ []string) error {
			return showList(c, c.registryViewer)(cl.ListRegistries(ctx, pg.query()))
		}),
	}
	pg.flags(cmd)
	return cmd
}

func (c *cli) registryGetCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "get NAME",
		Short: "Show one registry",
		Args:  cobra.ExactArgs(1),
		RunE: c.withClient(func(ctx context.Context, cl *client.Client, _ *cobra.Command, args []string) error {
			return show(c, c.registryDetail)(cl.GetRegistry(ctx, args[0]))
		}),
	}
}

// registryFlags are the fields add and update take.
type registryFlags struct {
	url, username, caFile string
	insecure, pwStdin     bool
	noPassword            bool
}

func (f *registryFlags) bind(cmd *cobra.Command, update bool) {
	fl := cmd.Flags()
	fl.StringVar(&f.url, "url", "", "https://HOST[:PORT], or http://HOST[:PORT] with --insecure-http")
	fl.StringVar(&f.username, "username", "", "user to pull as")
	fl.BoolVar(&f.pwStdin, "password-stdin", false, "read the password from standard input (one line)")
	fl.BoolVar(&f.insecure, "insecure-http", false, "pull over plain HTTP (an http:// url; anyone on the path can read and change what is pulled)")
	fl.StringVar(&f.caFile, "ca-cert", "", "PEM file of the CA that signed the registry's certificate")
	if update {
		fl.BoolVar(&f.noPassword, "no-password", false, "remove the stored password")
	}
}

// request is the body the flags describe; update sends only what was set.
func (c *cli) registryRequest(cmd *cobra.Command, f *registryFlags, name string, update bool) (api.RegistryRequest, error) {
	in := api.RegistryRequest{Name: name}
	set := func(flag string) bool { return !update || cmd.Flags().Changed(flag) }
	if set("url") {
		in.URL = &f.url
	}
	if set("username") && (f.username != "" || update) {
		in.Username = &f.username
	}
	if set("insecure-http") && (f.insecure || update) {
		in.InsecureHTTP = &f.insecure
	}
	if f.caFile != "" {
		b, err := os.ReadFile(f.caFile)
		if err != nil {
			return in, fmt.Errorf("--ca-cert: %w", err)
		}
		pem := string(b)
		in.CAPEM = &pem
	} else if update && cmd.Flags().Changed("ca-cert") {
		empty := ""
		in.CAPEM = &empty
	}
	switch {
	case f.pwStdin && f.noPassword:
		return in, errors.New("--password-stdin and --no-password say opposite things")
	case f.pwStdin:
		pw, err := c.promptSecret("Registry password: ")
		if err != nil {
			return in, err
		}
		if pw == "" {
			return in, errors.New("the password read from standard input is empty (use --no-password to remove one)")
		}
		in.Password = &pw
	case f.noPassword:
		empty := ""
		in.Password = &empty
	}
	return in, nil
}

func (c *cli) registryAddCmd() *cobra.Command {
	var f registryFlags
	cmd := &cobra.Command{
		Use:   "add NAME --url URL [--username USER --password-stdin] [--ca-cert FILE | --insecure-http]",
		Short: "Add a registry (superadmin); the manager checks that it answers at its url",
		Example: "  berth registry add lab --url https://registry.example.com:5000 --username robot --password-stdin --ca-cert ca.pem < password.txt\n" +
			"  berth registry add local --url http://127.0.0.1:5000 --insecure-http",
		Args: cobra.ExactArgs(1),
		RunE: c.withClient(func(ctx context.Context, cl *client.Client, cmd *cobra.Command, args []string) error {
			in, err := c.registryRequest(cmd, &f, args[0], false)
			if err != nil {
				return err
			}
			return show(c, c.registryDetail)(cl.CreateRegistry(ctx, in))
		}),
	}
	f.bind(cmd, false)
	return cmd
}

func (c *cli) registryUpdateCmd() *cobra.Command {
	var f registryFlags
	cmd := &cobra.Command{
		Use:   "update NAME [--url URL] [--username USER] [--password-stdin | --no-password] [--ca-cert FILE] [--insecure-http=true|false]",
		Short: "Change a registry's fields (superadmin); those not given stay",
		Args:  cobra.ExactArgs(1),
		RunE: c.withClient(func(ctx context.Context, cl *client.Client, cmd *cobra.Command, args []string) error {
			in, err := c.registryRequest(cmd, &f, "", true)
			if err != nil {
				return err
			}
			return show(c, c.registryDetail)(cl.UpdateRegistry(ctx, args[0], in))
		}),
	}
	f.bind(cmd, true)
	return cmd
}

func (c *cli) registryRemoveCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "remove NAME",
		Short: "Remove a registry (superadmin): its host's images are pulled anonymously from then on",
		Args:  cobra.ExactArgs(1),
		RunE: c.withClient(func(ctx context.Context, cl *client.Client, _ *cobra.Command, args []string) error {
			if err := cl.DeleteRegistry(ctx, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "registry %s removed\n", args[0])
			return nil
		}),
	}
}

func (c *cli) imageView(data any, images []api.ClusterImage) view {
	v := view{data: data, columns: []string{"name", "digest", "size", "agents", "pulling"}}
	for _, im := range images {
		size := strconv.FormatInt(im.Size, 10)
		if c.output == formatTable {
			size = fmtSize(im.Size)
		}
		var pulls []string
		for _, p := range im.Pulling {
			pulls = append(pulls, fmt.Sprintf("%s %d/%d", p.Agent, p.DoneBytes, p.TotalBytes))
		}
		v.rows = append(v.rows, []string{im.Name, im.Digest, size, fmtList(im.Agents), fmtList(pulls)})
	}
	return v
}

func (c *cli) imageCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "See the images the agents have; pull and remove them (admin)",
	}
	var pg page
	var allowed bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List the images on ALIVE agents, each with the agents that have it and the pulls under way",
		Args:  cobra.NoArgs,
		RunE: c.withClient(func(ctx context.Context, cl *client.Client, _ *cobra.Command, _ []string) error {
			q := pg.query()
			if allowed {
				q.Set("allowed", "true")
			}
			return showList(c, c.imageView)(cl.ListImages(ctx, q))
		}),
	}
	pg.flags(list)
	list.Flags().BoolVar(&allowed, "allowed", false, "only the images your resource policy allows")
	var agents []string
	pull := &cobra.Command{
		Use:     "pull IMAGE [--agent ID]...",
		Short:   "Pull an image on agents ahead of the sessions that need it (default: every ALIVE, schedulable agent); progress in berth image list",
		Example: "  berth image pull registry.example.com:5000/lab/python:3.12 --agent a-1",
		Args:    cobra.ExactArgs(1),
		RunE: c.withClient(func(ctx context.Context, cl *client.Client, _ *cobra.Command, args []string) error {
			out, err := cl.PullImage(ctx, api.ImagePullRequest{Image: args[0], Agents: agents})
			if err != nil {
				return err
			}
			return render(c.stdout, c.output, view{data: out, columns: []string{"image", "agents", "failed"},
				rows: [][]string{{out.Image, fmtList(out.Agents), fmtList(out.Failed)}}})
		}),
	}
	pull.Flags().StringSliceVar(&agents, "agent", nil, "agent to pull on (repeatable)")
	var from string
	rm := &cobra.Command{
		Use:   "rm IMAGE --agent ID",
		Short: "Remove an image from an agent (refused while a container there uses it)",
		Args:  cobra.ExactArgs(1),
		RunE: c.withClient(func(ctx context.Context, cl *client.Client, _ *cobra.Command, args []string) error {
			if from == "" {
				return errors.New("--agent is required: the agent to remove the image from")
			}
			if err := cl.RemoveImage(ctx, args[0], from); err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "image %s removed from %s\n", args[0], from)
			return nil
		}),
	}
	rm.Flags().StringVar(&from, "agent", "", "agent to remove the image from")
	cmd.AddCommand(list, pull, rm)
	return cmd
}
