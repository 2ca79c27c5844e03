package slots

import (
	"math/big"
	"strconv"
	"strings"
)

// numberMaxDigits and numberMaxExponent bound a number before big.Rat
// sees it: every limit is far below 1e30, yet parsing a literal of a million
// digits, or 1e999999, would cost seconds and megabytes.
const (
	numberMaxDigits   = 40
	numberMaxExponent = 30
)

// BoundedRat parses a decimal number literal exactly. One whose integer part or
// exponent is beyond the bounds is read as ±1e41 (too large for any rule);
// a fraction longer than numberMaxDigits keeps its first digits and a 1 after
// them, so it stays too precise for every rule without changing how it
// compares with the maxima.
func BoundedRat(text string) (*big.Rat, bool) {
	mant, exp, hasExp := strings.Cut(strings.ToLower(text), "e")
	sign, mant := "", strings.TrimPrefix(mant, "-")
	if strings.HasPrefix(text, "-") {
		sign = "-"
	}
	if hasExp {
		e, err := strconv.Atoi(exp)
		if err != nil || e > numberMaxExponent || e < -numberMaxExponent {
			if strings.HasPrefix(exp, "-") {
				return new(big.Rat).SetString(sign + "1e-41")
			}
			return new(big.Rat).SetString(sign + "1e41")
		}
	}
	intPart, frac, _ := strings.Cut(mant, ".")
	intPart = strings.TrimLeft(intPart, "0")
	frac = strings.TrimRight(frac, "0")
	if len(intPart) > numberMaxDigits {
		return new(big.Rat).SetString(sign + "1e41")
	}
	if len(frac) > numberMaxDigits {
		frac = frac[:numberMaxDigits] + "1"
	}
	if intPart == "" {
		intPart = "0"
	}
	bounded := sign + intPart
	if frac != "" {
		bounded += "." + frac
	}
	if hasExp {
		bounded += "e" + exp
	}
	return new(big.Rat).SetString(bounded)
}
