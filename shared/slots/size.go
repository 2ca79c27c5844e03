package slots

import (
	"fmt"
	"math/big"
	"regexp"
	"strings"
)

// sizeNumber is the number part of a size: plain decimal, no exponent or
// base prefix, so "0x10" or "1e3" is not silently read as something else.
var sizeNumber = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?$`)

// sizeUnits are the suffixes ParseSize accepts, all binary: people who
// write "4G" or "4GB" for a container's memory mean 4 GiB, as the reference
// manual's "RAM in GB" does.
func sizeUnits() []sizeUnit {
	return []sizeUnit{
		{[]string{"tib", "tb", "t"}, 1 << 40},
		{[]string{"gib", "gb", "g"}, 1 << 30},
		{[]string{"mib", "mb", "m"}, 1 << 20},
		{[]string{"kib", "kb", "k"}, 1 << 10},
		{[]string{"b", ""}, 1},
	}
}

type sizeUnit struct {
	suffixes []string
	factor   int64
}

// ParseSize reads a byte count such as "4294967296", "4GiB", "512MiB" or
// "1.5GiB" (suffixes are case-insensitive and binary). The result must be a
// whole, non-negative number of bytes.
func ParseSize(text string) (int64, error) {
	s := strings.ToLower(strings.TrimSpace(text))
	for _, u := range sizeUnits() {
		for _, suf := range u.suffixes {
			num, ok := strings.CutSuffix(s, suf)
			if !ok {
				continue
			}
			num = strings.TrimSpace(num)
			if !sizeNumber.MatchString(num) {
				// Not this suffix ("12mb" also ends in "b"); try the next.
				continue
			}
			r, _ := new(big.Rat).SetString(num)
			if r.Sign() < 0 {
				return 0, fmt.Errorf("size %q must not be negative", text)
			}
			r.Mul(r, new(big.Rat).SetInt64(u.factor))
			if !r.IsInt() {
				return 0, fmt.Errorf("size %q is not a whole number of bytes", text)
			}
			if !r.Num().IsInt64() {
				return 0, fmt.Errorf("size %q is too large", text)
			}
			return r.Num().Int64(), nil
		}
	}
	return 0, fmt.Errorf("size %q must be a number of bytes, optionally with a suffix KiB, MiB, GiB or TiB (for example 4GiB)", text)
}

// FormatSize renders bytes in the largest binary unit that divides them
// exactly ("4GiB", "1536MiB"), or as a plain byte count.
func FormatSize(v int64) string {
	if v == 0 {
		return "0"
	}
	for _, u := range []struct {
		name   string
		factor int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if v%u.factor == 0 {
			return fmt.Sprintf("%d%s", v/u.factor, u.name)
		}
	}
	return fmt.Sprintf("%d", v)
}
