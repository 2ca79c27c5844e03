package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/client"
)

// folderViewer shows folders; for people (table) the usage is in binary
// units, for csv and json in bytes.
func (c *cli) folderViewer(detail bool) func(data any, fs []api.Folder) view {
	human := c.output == formatTable
	return func(data any, fs []api.Folder) view {
		v := view{data: data, single: detail,
			columns: []string{"id", "name", "host", "type", "owner", "group", "permission", "usage_bytes", "over_quota", "created_at"}}
		if human {
			v.columns[7] = "usage"
		}
		for _, f := range fs {
			usage := strconv.FormatInt(f.UsageBytes, 10)
			if human {
				usage = fmtSize(f.UsageBytes)
			}
			v.rows = append(v.rows, []string{f.ID, f.Name, f.Host, f.Type, f.Owner, f.Group, f.Permission,
				usage, fmtBool(f.OverQuota), fmtTime(f.CreatedAt)})
		}
		return v
	}
}

func (c *cli) folderDetail(f *api.Folder) view { return c.folderViewer(true)(f, []api.Folder{*f}) }

func folderHostView(data any, hs []api.FolderHost) view {
	v := view{data: data, columns: []string{"name", "available"}}
	for _, h := range hs {
		v.rows = append(v.rows, []string{h.Name, fmtBool(h.Available)})
	}
	return v
}

func invitationView(data any, is []api.Invitation) view {
	v := view{data: data, columns: []string{"id", "folder", "folder_name", "inviter", "invitee", "permission", "state", "created_at"}}
	for _, i := range is {
		v.rows = append(v.rows, []string{i.ID, i.Folder, i.FolderName, i.Inviter, i.Invitee, i.Permission, i.State, fmtTime(i.CreatedAt)})
	}
	return v
}

func invitationDetail(i *api.Invitation) view {
	v := invitationView(i, []api.Invitation{*i})
	v.single = true
	return v
}

// fileView lists folder entries; sizes as folderViewer's usage.
func (c *cli) fileView(data any, es []api.FileEntry) view {
	v := view{data: data, columns: []string{"name", "type", "size", "modified_at", "path"}}
	for _, e := range es {
		size := strconv.FormatInt(e.Size, 10)
		if c.output == formatTable {
			size = fmtSize(e.Size)
		}
		v.rows = append(v.rows, []string{e.Name, e.Type, size, fmtTime(e.ModifiedAt), e.Path})
	}
	return v
}

func (c *cli) folderCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "folder",
		Short: "Storage folders: create, share, upload and download files",
		Long: "Storage folders live on folder hosts (GET /v1/folder-hosts). A user folder is yours (wd) and\n" +
			"can be shared by invitation with ro or rw; a group folder (admins create it) is seen by every\n" +
			"member of its group with its permission. Sessions mount folders with --mount at /home/work/NAME.\n" +
			"FOLDER is a folder's id or name.",
	}
	cmd.AddCommand(c.folderHostsCmd(), c.folderListCmd(), c.folderGetCmd(), c.folderCreateCmd(), c.folderDeleteCmd(),
		c.folderInviteCmd(), c.folderInvitationsCmd(), c.folderAnswerCmd("accept", true), c.folderAnswerCmd("reject", false),
		c.folderRevokeCmd(), c.folderLsCmd(), c.folderUploadCmd(), c.folderDownloadCmd(), c.folderMkdirCmd(), c.folderRmCmd())
	return cmd
}

func (c *cli) folderHostsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "hosts",
		Short: "Folder hosts your policy allows",
		Args:  cobra.NoArgs,
		RunE: c.withClient(func(ctx context.Context, cl *client.Client, _ *cobra.Command, _ []string) error {
			return showList(c, folderHostView)(cl.ListFolderHosts(ctx))
		}),
	}
}

func (c *cli) folderListCmd() *cobra.Command {
	var pg page
	cmd := &cobra.Command{
		Use:   "list",
		Short: "Folders you see (own, shared with you, of your groups) with your permission",
		Args:  cobra.NoArgs,
		RunE: c.withClient(func(ctx context.Context, cl *client.Client, _ *cobra.Command, _ []string) error {
			return showList(c, c.folderViewer(false))(cl.ListFolders(ctx, pg.query()))
		}),
	}
	pg.flags(cmd)
	return cmd
}

func (c *cli) folderGetCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "get FOLDER",
		Short: "Show one folder",
		Args:  cobra.ExactArgs(1),
		RunE: c.withClient(func(ctx context.Context, cl *client.Client, _ *cobra.Command, args []string) error {
			return show(c, c.folderDetail)(cl.GetFolder(ctx, args[0]))
		}),
	}
}

func (c *cli) folderCreateCmd() *cobra.Command {
	var in api.FolderCreate
	cmd := &cobra.Command{
		Use:   "create NAME --host HOST [--type group --group GROUP [--domain DOMAIN] --permission ro|rw]",
		Short: "Create a folder (group folders: admins)",
		Example: "  berth folder create data --host local\n" +
			"  berth folder create shared-data --host local --type group --group research --permission ro",
		Args: cobra.ExactArgs(1),
		RunE: c.withClient(func(ctx context.Context, cl *client.Client, _ *cobra.Command, args []string) error {
			in.Name = args[0]
			return show(c, c.folderDetail)(cl.CreateFolder(ctx, in))
		}),
	}
	fl := cmd.Flags()
	fl.StringVar(&in.Host, "host", "", "folder host (berth folder hosts)")
	fl.StringVar(&in.Type, "type", api.FolderUser, "user or group")
	fl.StringVar(&in.Group, "group", "", "group whose members see a group folder")
	fl.StringVar(&in.Domain, "domain", "", "the group's domain (default yours; superadmins may name any)")
	fl.StringVar(&in.Permission, "permission", "", "members' permission on a group folder: ro (default) or rw")
	return cmd
}

func (c *cli) folderDeleteCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "delete FOLDER",
		Short: "Delete a folder and its files (owner, or an admin of its domain; refused while a session mounts it)",
		Args:  cobra.ExactArgs(1),
		RunE: c.withClient(func(ctx context.Context, cl *client.Client, _ *cobra.Command, args []string) error {
			if err := cl.DeleteFolder(ctx, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "Deleted folder %s\n", args[0])
			return nil
		}),
	}
}

func (c *cli) folderInviteCmd() *cobra.Command {
	var in api.InvitationCreate
	cmd := &cobra.Command{
		Use:   "invite FOLDER EMAIL",
		Short: "Invite a user of your domain to your folder with ro or rw",
		Args:  cobra.ExactArgs(2),
		RunE: c.withClient(func(ctx context.Context, cl *client.Client, _ *cobra.Command, args []string) error {
			in.Invitee = args[1]
			return show(c, invitationDetail)(cl.InviteToFolder(ctx, args[0], in))
		}),
	}
	cmd.Flags().StringVar(&in.Permission, "permission", api.PermRO, "ro or rw")
	return cmd
}

func (c *cli) folderInvitationsCmd() *cobra.Command {
	var pg page
	cmd := &cobra.Command{
		Use:   "invitations",
		Short: "Invitations sent to you and by you",
		Args:  cobra.NoArgs,
		RunE: c.withClient(func(ctx context.Context, cl *client.Client, _ *cobra.Command, _ []string) error {
			return showList(c, invitationView)(cl.ListInvitations(ctx, pg.query()))
		}),
	}
	pg.flags(cmd)
	return cmd
}

func (c *cli) folderAnswerCmd(verb string, accept bool) *cobra.Command {
	return &cobra.Command{
		Use:   verb + " INVITATION_ID",
		Short: verb + " an invitation to a folder",
		Args:  cobra.ExactArgs(1),
		RunE: c.withClient(func(ctx context.Context, cl *client.Client, _ *cobra.Command, args []string) error {
			return show(c, invitationDetail)(cl.AnswerInvitation(ctx, args[0], accept))
		}),
	}
}

func (c *cli) folderRevokeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "revoke INVITATION_ID",
		Short: "Revoke an invitation you sent, or leave a folder shared with you",
		Args:  cobra.ExactArgs(1),
		RunE: c.withClient(func(ctx context.Context, cl *client.Client, _ *cobra.Command, args []string) error {
			if err := cl.DeleteInvitation(ctx, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "Removed invitation %s\n", args[0])
			return nil
		}),
	}
}

func (c *cli) folderLsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "ls FOLDER [DIR]",
		Short: "List a directory of a folder",
		Args:  cobra.RangeArgs(1, 2),
		RunE: c.withClient(func(ctx context.Context, cl *client.Client, _ *cobra.Command, args []string) error {
			dir := ""
			if len(args) == 2 {
				dir = args[1]
			}
			return showList(c, c.fileView)(cl.ListFiles(ctx, args[0], dir))
		}),
	}
}

func (c *cli) folderUploadCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "upload FOLDER LOCAL_FILE [PATH]",
		Short:   "Upload a file (to PATH in the folder; default: the file's name)",
		Example: "  berth folder upload data ./train.csv inputs/train.csv",
		Args:    cobra.RangeArgs(2, 3),
		RunE: c.withClient(func(ctx context.Context, cl *client.Client, _ *cobra.Command, args []string) error {
			f, err := os.Open(args[1])
			if err != nil {
				return fmt.Errorf("open %s: %w", args[1], err)
			}
			defer f.Close()
			dest := path.Base(args[1])
			if len(args) == 3 {
				dest = args[2]
			}
			e, err := cl.Upload(ctx, args[0], dest, f)
			if err != nil {
				return err
			}
			return render(c.stdout, c.output, c.fileView(e, []api.FileEntry{*e}))
		}),
	}
}

func (c *cli) folderDownloadCmd() *cobra.Command {
	var outFile string
	cmd := &cobra.Command{
		Use:   "download FOLDER PATH",
		Short: "Download a file (to standard output, or -O FILE)",
		Args:  cobra.ExactArgs(2),
		RunE: c.withClient(func(ctx context.Context, cl *client.Client, _ *cobra.Command, args []string) error {
			body, err := cl.Download(ctx, args[0], args[1])
			if err != nil {
				return err
			}
			defer body.Close()
			if outFile == "" || outFile == "-" {
				if _, err := io.Copy(c.stdout, body); err != nil {
					return fmt.Errorf("download %s: %w", args[1], err)
				}
				return nil
			}
			n, err := saveFile(outFile, body)
			if err != nil {
				return fmt.Errorf("save %s to %s: %w", args[1], outFile, err)
			}
			fmt.Fprintf(c.stderr, "Saved %s to %s (%d bytes)\n", args[1], outFile, n)
			return nil
		}),
	}
	cmd.Flags().StringVarP(&outFile, "output-file", "O", "", "write to this file instead of standard output")
	return cmd
}

func (c *cli) folderMkdirCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "mkdir FOLDER PATH",
		Short: "Make a directory (and those on the way) in a folder",
		Args:  cobra.ExactArgs(2),
		RunE: c.withClient(func(ctx context.Context, cl *client.Client, _ *cobra.Command, args []string) error {
			e, err := cl.MakeDirectory(ctx, args[0], args[1])
			if err != nil {
				return err
			}
			return render(c.stdout, c.output, c.fileView(e, []api.FileEntry{*e}))
		}),
	}
}

func (c *cli) folderRmCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "rm FOLDER PATH",
		Short: "Delete a file or a directory with its content",
		Args:  cobra.ExactArgs(2),
		RunE: c.withClient(func(ctx context.Context, cl *client.Client, _ *cobra.Command, args []string) error {
			if err := cl.DeleteFile(ctx, args[0], args[1]); err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "Deleted %s from %s\n", args[1], args[0])
			return nil
		}),
	}
}
