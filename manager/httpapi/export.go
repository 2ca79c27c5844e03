package httpapi

import (
	"encoding/csv"
	"fmt"
	"mime"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/berth-cluster/berth/manager/apierr"
)

// maxFilename is the longest export file name the manual allows, the
// extension included.
const maxFilename = 255

const csvExt = ".csv"

// exportFilename validates ?filename= (default def) and adds ".csv" when
// it is missing; the name saved, extension included, is at most
// maxFilename characters.
func exportFilename(raw, def string) (string, error) {
	name := raw
	if name == "" {
		name = def
	}
	hasExt := strings.HasSuffix(strings.ToLower(name), csvExt)
	var bad []string
	if n := utf8.RuneCountInString(name); hasExt && n > maxFilename {
		bad = append(bad, fmt.Sprintf("filename must be at most %d characters (it has %d)", maxFilename, n))
	} else if !hasExt && n+len(csvExt) > maxFilename {
		bad = append(bad, fmt.Sprintf("filename must be at most %d characters with the %s that is added (at most %d before it; it has %d)",
			maxFilename, csvExt, maxFilename-len(csvExt), n))
	}
	if !utf8.ValidString(name) {
		bad = append(bad, "filename must be valid UTF-8")
	}
	if strings.ContainsAny(name, `/\`) {
		bad = append(bad, "filename must not contain path separators (/ or \\)")
	}
	if strings.IndexFunc(name, unicode.IsControl) >= 0 {
		bad = append(bad, "filename must not contain control characters")
	}
	if strings.Trim(name, ". ") == "" {
		bad = append(bad, "filename must contain something besides dots and spaces")
	}
	if len(bad) > 0 {
		var f apierr.Fields
		for _, b := range bad {
			f.Add("filename", "%s", b)
		}
		return "", f.Err()
	}
	if !hasExt {
		name += csvExt
	}
	return name, nil
}

// csvSafe defuses cells a spreadsheet would run as a formula: those that
// begin with = + - @, and those that begin with a tab or a carriage return,
// which some spreadsheets skip before looking for the formula (OWASP's
// "CSV injection" list).
func csvSafe(cell string) string {
	if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
		return "'" + cell
	}
	return cell
}

// csvExport streams a CSV download: header row, then every row the
// producer yields, written and flushed as it comes so a large table never
// sits in memory. Validation errors must happen before the first row.
func (c *Call) csvExport(filename string, header []string, produce func(row func([]string) error) error) error {
	disposition := mime.FormatMediaType("attachment", map[string]string{"filename": filename})
	c.W.Header().Set("Content-Type", "text/csv; charset=utf-8")
	c.W.Header().Set("Content-Disposition", disposition)
	c.W.WriteHeader(http.StatusOK)
	w := csv.NewWriter(c.W)
	w.UseCRLF = true
	if err := w.Write(header); err != nil {
		return err
	}
	safe := make([]string, len(header))
	n := 0
	err := produce(func(row []string) error {
		for i, cell := range row {
			safe[i] = csvSafe(cell)
		}
		if err := w.Write(safe[:len(row)]); err != nil {
			return err
		}
		if n++; n%512 == 0 {
			w.Flush()
			if f, ok := c.W.(http.Flusher); ok {
				f.Flush()
			}
		}
		return w.Error()
	})
	w.Flush()
	if err == nil {
		err = w.Error()
	}
	if err != nil {
		c.api.log.Warn("csv export aborted", "file", filename, "err", err)
		// The status is sent; the best we can do is cut the download short
		// so the client sees a broken transfer, not a silently short file.
		panic(http.ErrAbortHandler)
	}
	return nil
}
