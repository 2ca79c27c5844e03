package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/berth-cluster/berth/shared/client"
)

// exportKind is one GET /v1/export/{kind}.csv with its list filters.
type exportKind struct {
	kind, short string
	// filters adds the filter flags to cmd and returns what copies the
	// ones given into the query.
	filters func(cmd *cobra.Command) func(q url.Values)
}

func (c *cli) exportCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Download a CSV export from the manager",
		Long: "Download a CSV export exactly as the manager writes it (header row, RFC 4180 quoting,\n" +
			"formula cells defused), to standard output or to the file given with -O.",
	}
	for _, k := range []exportKind{
		{kind: "users", short: "Export users as CSV (admin)", filters: userFilters},
		{kind: "keypairs", short: "Export keypairs as CSV (admins: their users'; others: their own)", filters: keypairFilters},
	} {
		cmd.AddCommand(c.exportKindCmd(k))
	}
	return cmd
}

func (c *cli) exportKindCmd(k exportKind) *cobra.Command {
	var filename, outFile string
	cmd := &cobra.Command{
		Use:   k.kind,
		Short: k.short,
		Args:  cobra.NoArgs,
	}
	setFilters := k.filters(cmd)
	cmd.PreRunE = func(cmd *cobra.Command, _ []string) error {
		// The bytes are the manager's CSV; a table or JSON would need
		// parsing them back, which -o csv of the list commands already does.
		if cmd.Flags().Changed("output") && c.output != formatCSV {
			return fmt.Errorf("export always writes the manager's CSV; -o %s does not apply (the list commands take it)", c.output)
		}
		return nil
	}
	cmd.RunE = c.withClient(func(ctx context.Context, cl *client.Client, _ *cobra.Command, _ []string) error {
		q := url.Values{}
		setFilters(q)
		setIf(q, "filename", filename)
		body, err := cl.Export(ctx, k.kind, q)
		if err != nil {
			return err
		}
		defer body.Close()
		if outFile == "" || outFile == "-" {
			if _, err := io.Copy(c.stdout, body); err != nil {
				return fmt.Errorf("downloading the %s export: %w", k.kind, err)
			}
			return nil
		}
		n, err := saveFile(outFile, body)
		if err != nil {
			return fmt.Errorf("saving the %s export to %s: %w", k.kind, outFile, err)
		}
		fmt.Fprintf(c.stderr, "Saved the %s export to %s (%d bytes)\n", k.kind, outFile, n)
		return nil
	})
	cmd.Flags().StringVar(&filename, "filename", "",
		"file name the manager puts in Content-Disposition (at most 255 characters, no separators; .csv added)")
	cmd.Flags().StringVarP(&outFile, "output-file", "O", "", "write to this file instead of standard output")
	return cmd
}

// saveFile writes r to path through a temporary file in the same directory,
// renamed into place only once the whole download arrived: an interrupted
// transfer must not leave a truncated file that looks like a complete
// export. The file is readable by its owner only, as exports hold user data.
func saveFile(path string, r io.Reader) (int64, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.part")
	if err != nil {
		return 0, err
	}
	tmp := f.Name()
	n, err := io.Copy(f, r)
	err = errors.Join(err, f.Close())
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return 0, err
	}
	return n, nil
}
