package slots

import "testing"

func TestParseSizeReadsBytesAndBinarySuffixes(t *testing.T) {
	cases := []struct {
		in      string
		want    int64
		wantErr string
	}{
		{"4294967296", 4 << 30, ""},
		{"4GiB", 4 << 30, ""},
		{"4gib", 4 << 30, ""},
		{"4G", 4 << 30, ""},
		{"4GB", 4 << 30, ""},
		{"512MiB", 512 << 20, ""},
		{"12mb", 12 << 20, ""},
		{"1.5GiB", 3 << 29, ""},
		{" 2 KiB ", 2048, ""},
		{"1TiB", 1 << 40, ""},
		{"100B", 100, ""},
		{"0", 0, ""},
		{"1.5", 0, `size "1.5" is not a whole number of bytes`},
		{"-1GiB", 0, `size "-1GiB" must not be negative`},
		{"lots", 0, `size "lots" must be a number of bytes, optionally with a suffix KiB, MiB, GiB or TiB (for example 4GiB)`},
		{"1e3", 0, `size "1e3" must be a number of bytes, optionally with a suffix KiB, MiB, GiB or TiB (for example 4GiB)`},
		{"0x10", 0, `size "0x10" must be a number of bytes, optionally with a suffix KiB, MiB, GiB or TiB (for example 4GiB)`},
		{"", 0, `size "" must be a number of bytes, optionally with a suffix KiB, MiB, GiB or TiB (for example 4GiB)`},
		{"99999999999TiB", 0, `size "99999999999TiB" is too large`},
	}
	for _, c := range cases {
		got, err := ParseSize(c.in)
		if c.wantErr != "" {
			if err == nil || err.Error() != c.wantErr {
				t.Errorf("ParseSize(%q) error = %v, want %q", c.in, err, c.wantErr)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
}

func TestFormatSizeUsesTheLargestExactUnit(t *testing.T) {
	cases := map[int64]string{0: "0", 4 << 30: "4GiB", 1536 << 20: "1536MiB", 1 << 40: "1TiB", 1000: "1000", 2048: "2KiB"}
	for in, want := range cases {
		if got := FormatSize(in); got != want {
			t.Errorf("FormatSize(%d) = %q, want %q", in, got, want)
		}
	}
}
