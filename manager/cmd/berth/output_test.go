package main

import "testing"

func TestTableFiguresReadAsPeopleWriteThem(t *testing.T) {
	sizes := []struct {
		in   int64
		want string
	}{
		{0, "0B"}, {1023, "1023B"}, {1024, "1KiB"}, {1536, "1.5KiB"}, {4 << 30, "4GiB"},
		{1536 << 20, "1536MiB"}, {1234567, "1.2MiB"}, {5<<40 + 1, "5.0TiB"},
	}
	for _, c := range sizes {
		if got := fmtSize(c.in); got != c.want {
			t.Errorf("fmtSize(%d) = %q, want %q", c.in, got, c.want)
		}
	}
	if got := fmtSizePtr(nil); got != "∞" {
		t.Errorf("fmtSizePtr(nil) = %q, want ∞", got)
	}
	durations := []struct {
		in   int64
		want string
	}{
		{0, "0s"}, {45, "45s"}, {3600, "1h"}, {5400, "1h30m"}, {86400, "1d"}, {15552000, "180d"}, {90061, "1d1h1m1s"},
	}
	for _, c := range durations {
		if got := fmtSeconds(c.in); got != c.want {
			t.Errorf("fmtSeconds(%d) = %q, want %q", c.in, got, c.want)
		}
	}
}
