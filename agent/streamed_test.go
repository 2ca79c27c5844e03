package agent

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

// onlyReader hides a reader's Seek, as a runtime whose logs are not files
// would.
type onlyReader struct{ io.Reader }

func TestLastLinesOfALog(t *testing.T) {
	long := strings.Repeat("x", 100<<10) + "\n"
	for _, c := range []struct {
		name, log string
		skip      int // bytes before where the log stands (since)
		n         int
		want      string
	}{
		{"last two", "a\nb\nc\n", 0, 2, "b\nc\n"},
		{"more than there are", "a\nb\n", 0, 5, "a\nb\n"},
		{"none", "a\nb\n", 0, 0, ""},
		{"an unended last line counts", "a\nb\nc", 0, 2, "b\nc"},
		{"empty", "", 0, 3, ""},
		{"lines longer than a read", "a\n" + long + long, 0, 1, long},
		{"never before since", "old\nnew1\nnew2\n", 4, 5, "new1\nnew2\n"},
	} {
		for _, seekable := range []bool{true, false} {
			r := bytes.NewReader([]byte(c.log))
			r.Seek(int64(c.skip), io.SeekStart)
			var src io.Reader = r
			if !seekable {
				src = onlyReader{r}
			}
			got, err := lastLines(src, c.n)
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			b, _ := io.ReadAll(got)
			if string(b) != c.want {
				t.Errorf("%s (seekable %v): %q, want %q", c.name, seekable, b, c.want)
			}
		}
	}
}
