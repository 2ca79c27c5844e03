package httpapi

import (
	"encoding/json"
	"math/big"
	"strings"

	"github.com/berth-cluster/berth/shared/slots"
)

// Exact, bounded reading of JSON numbers in request bodies: limits are
// compared as rationals, never through float64, so 0.1 cpu is exactly 100
// millicores and 1024 GiB + 1 byte is refused.

// jsonWholeIn reads a JSON number that is a whole number in [lo, hi]. "2.0" and
// "2e1" are whole; strings are not numbers.
func jsonWholeIn(raw json.RawMessage, lo, hi int64) (int64, bool) {
	v, ok := jsonWhole(raw)
	return v, ok && v >= lo && v <= hi
}

// jsonWhole reads a JSON number that is a whole number an int64 holds.
func jsonWhole(raw json.RawMessage) (int64, bool) {
	r, ok := jsonNumber(raw)
	if !ok || !r.IsInt() || !r.Num().IsInt64() {
		return 0, false
	}
	return r.Num().Int64(), true
}

// jsonNumber parses a JSON number literal exactly; a quoted number is not
// one, so "2" is refused where 2 is meant.
func jsonNumber(raw json.RawMessage) (*big.Rat, bool) {
	var num json.Number
	text := strings.TrimSpace(string(raw))
	if text == "" || text[0] == '"' || json.Unmarshal([]byte(text), &num) != nil {
		return nil, false
	}
	return slots.BoundedRat(num.String())
}
