package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/slots"
)

// Output formats of -o.
const (
	formatJSON  = "json"
	formatTable = "table"
	formatCSV   = "csv"
)

// view is one result ready to render: data is what -o json prints (the API
// object itself), columns and rows what table and csv print.
type view struct {
	data    any
	columns []string
	rows    [][]string
	// single marks one object: the table format prints it as FIELD VALUE
	// lines rather than one wide row.
	single bool
}

// render writes v to w in the given format.
func render(w io.Writer, format string, v view) error {
	switch format {
	case formatJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(v.data); err != nil {
			return fmt.Errorf("writing JSON: %w", err)
		}
		return nil
	case formatCSV:
		return renderCSV(w, v)
	case formatTable:
		return renderTable(w, v)
	}
	return fmt.Errorf("output format %q is not one of json, table, csv", format)
}

func renderTable(w io.Writer, v view) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	cell := func(s string) string {
		if s == "" {
			return "-"
		}
		// A tab or newline inside a cell would break the columns.
		return strings.NewReplacer("\t", " ", "\n", " ", "\r", " ").Replace(s)
	}
	if v.single {
		for _, row := range v.rows {
			for i, col := range v.columns {
				fmt.Fprintf(tw, "%s:\t%s\n", col, cell(row[i]))
			}
		}
		return flush(tw)
	}
	head := make([]string, len(v.columns))
	for i, col := range v.columns {
		head[i] = strings.ToUpper(col)
	}
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, row := range v.rows {
		cells := make([]string, len(row))
		for i, s := range row {
			cells[i] = cell(s)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return flush(tw)
}

func flush(tw *tabwriter.Writer) error {
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("writing table: %w", err)
	}
	return nil
}

// renderCSV writes a header row and the rows with RFC 4180 quoting. Like the
// manager's CSV export, a cell starting with = + - or @ is prefixed with ' so
// that spreadsheets do not run it as a formula.
func renderCSV(w io.Writer, v view) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(v.columns); err != nil {
		return fmt.Errorf("writing CSV: %w", err)
	}
	for _, row := range v.rows {
		cells := make([]string, len(row))
		for i, s := range row {
			cells[i] = csvSafe(s)
		}
		if err := cw.Write(cells); err != nil {
			return fmt.Errorf("writing CSV: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("writing CSV: %w", err)
	}
	return nil
}

func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@", rune(s[0])) {
		return "'" + s
	}
	return s
}

// Cell formatting shared by the resource views.

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func fmtTimePtr(t *time.Time) string {
	if t == nil {
		return ""
	}
	return fmtTime(*t)
}

func fmtBool(b bool) string { return strconv.FormatBool(b) }

func fmtInt(i int) string { return strconv.Itoa(i) }

func fmtIntPtr[T int | int64](p *T) string {
	if p == nil {
		return ""
	}
	return strconv.FormatInt(int64(*p), 10)
}

func fmtList(s []string) string { return strings.Join(s, ",") }

// show returns what renders the answer of an API call with toView, or
// returns the call's error instead:
//
//	return show(c, keypairDetail)(cl.GetKeypair(ctx, args[0]))
func show[T any](c *cli, toView func(T) view) func(T, error) error {
	return func(answer T, err error) error {
		if err != nil {
			return err
		}
		return render(c.stdout, c.output, toView(answer))
	}
}

// showList is show for one page of a list: it renders the page's items,
// then prints how to get the next page.
func showList[T any](c *cli, toView func(data any, items []T) view) func(*api.List[T], error) error {
	return func(list *api.List[T], err error) error {
		if err != nil {
			return err
		}
		if err := render(c.stdout, c.output, toView(list, list.Items)); err != nil {
			return err
		}
		c.printNextCursor(list.NextCursor)
		return nil
	}
}

// printNextCursor tells a person how to get the next page; for json the
// cursor is in the printed object already.
func (c *cli) printNextCursor(next string) {
	if next != "" && c.output != formatJSON {
		fmt.Fprintf(c.stderr, "More results: repeat with --cursor %s\n", next)
	}
}

// How figures read in the table format (for people); csv and json keep the
// wire's numbers (bytes, seconds). Memory and sizes are binary: the
// manual's GB is a GiB (2^30 bytes).

// infinity is an unlimited figure in a table.
const infinity = "∞"

// fmtSize is a byte count in the largest binary unit of at least 1, exact
// ("4GiB") where it divides, else to one decimal ("1.5MiB").
func fmtSize(n int64) string {
	if n < 1<<10 {
		return strconv.FormatInt(n, 10) + "B"
	}
	if exact := slots.FormatSize(n); exact != strconv.FormatInt(n, 10) {
		return exact
	}
	units := []string{"KiB", "MiB", "GiB", "TiB"}
	v := float64(n) / (1 << 10)
	i := 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + units[i]
}

// fmtSizePtr is fmtSize with nil as unlimited.
func fmtSizePtr(n *int64) string {
	if n == nil {
		return infinity
	}
	return fmtSize(*n)
}

// fmtSeconds is a number of seconds as a duration such as "1h", "1h30m"
// or "2d3h" (days, hours, minutes and seconds that are not zero).
func fmtSeconds(n int64) string {
	if n == 0 {
		return "0s"
	}
	var b strings.Builder
	if n < 0 {
		b.WriteByte('-')
		n = -n
	}
	for _, u := range []struct {
		name string
		secs int64
	}{{"d", 86400}, {"h", 3600}, {"m", 60}, {"s", 1}} {
		if q := n / u.secs; q > 0 {
			fmt.Fprintf(&b, "%d%s", q, u.name)
			n -= q * u.secs
		}
	}
	return b.String()
}
