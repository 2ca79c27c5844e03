package slots

import (
	"math/big"
	"strings"
	"testing"
)

func TestBoundedRatKeepsHowANumberComparesAndItsPrecision(t *testing.T) {
	long := strings.Repeat("9", 60)
	cases := []struct{ in, want string }{
		{"2.5", "5/2"},
		{"-1", "-1"},
		{"1E2", "100"},
		{"2.5e-1", "1/4"},
		{"0", "0"},
		{"0.000", "0"},
		{"100." + strings.Repeat("0", 60), "100"},
		{"1e999999", "100000000000000000000000000000000000000000"},
		{"-1e999999", "-100000000000000000000000000000000000000000"},
		{"1e-999999", "1/100000000000000000000000000000000000000000"},
		{long, "100000000000000000000000000000000000000000"},
	}
	for _, c := range cases {
		r, ok := BoundedRat(c.in)
		if !ok || r.RatString() != c.want {
			t.Errorf("BoundedRat(%.20q) = %v, %v; want %s", c.in, r, ok, c.want)
		}
	}
	// A long fraction stays under the next whole number and stays fractional.
	r, _ := BoundedRat("511." + long)
	if r.IsInt() || r.Cmp(big.NewRat(512, 1)) >= 0 || r.Cmp(big.NewRat(511, 1)) <= 0 {
		t.Errorf("511.999… became %s", r.RatString())
	}
}

func TestQuotedNumbersAreNotNumbers(t *testing.T) {
	var l Limits
	err := l.UnmarshalJSON([]byte(`{"cpu":"2"}`))
	if err == nil || err.Error() != "cpu must be a number or null" {
		t.Fatalf("quoted cpu: %v", err)
	}
}
