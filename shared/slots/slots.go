// Package slots is the arithmetic of resource slots shared by manager and
// agent. Quantities are held as integers in a per-slot base unit so that sums
// and comparisons are exact: cpu in millicores, mem in bytes, cuda.device in
// whole GPUs, cuda.shares in hundredths of a GPU.
package slots

import (
	"encoding/json"
	"fmt"
	"math/big"
	"sort"
	"strings"
)

// Name is a slot name as it appears on the wire.
type Name string

// The slots Berth knows.
const (
	CPU        Name = "cpu"
	Mem        Name = "mem"
	CUDADevice Name = "cuda.device"
	CUDAShares Name = "cuda.shares"
)

// Known lists every slot in the order tables and CSV columns show them.
var Known = []Name{CPU, Mem, CUDADevice, CUDAShares}

// scale is how many base units make one wire unit of the slot.
func scale(n Name) (int64, bool) {
	switch n {
	case CPU:
		return 1000, true
	case Mem, CUDADevice:
		return 1, true
	case CUDAShares:
		return 100, true
	}
	return 0, false
}

// Parse turns a wire decimal (json.Number text) into base units, refusing
// unknown slots, negative values and more precision than the base unit holds.
func Parse(n Name, text string) (int64, error) {
	sc, ok := scale(n)
	if !ok {
		return 0, fmt.Errorf("unknown slot %q (known: %s)", n, knownList())
	}
	r, ok := BoundedRat(strings.TrimSpace(text))
	if !ok {
		return 0, fmt.Errorf("%s must be a number, not %q", n, text)
	}
	if r.Sign() < 0 {
		return 0, fmt.Errorf("%s must not be negative", n)
	}
	r.Mul(r, new(big.Rat).SetInt64(sc))
	if !r.IsInt() {
		return 0, fmt.Errorf("%s has more precision than %s allows", n, precision(n))
	}
	if !r.Num().IsInt64() {
		return 0, fmt.Errorf("%s is too large", n)
	}
	return r.Num().Int64(), nil
}

// Format renders base units as the wire decimal.
func Format(n Name, v int64) json.Number {
	sc, ok := scale(n)
	if !ok || sc == 1 {
		return json.Number(fmt.Sprintf("%d", v))
	}
	text := new(big.Rat).SetFrac64(v, sc).FloatString(digits(sc))
	text = strings.TrimRight(strings.TrimRight(text, "0"), ".")
	return json.Number(text)
}

func digits(sc int64) int {
	d := 0
	for sc > 1 {
		sc /= 10
		d++
	}
	return d
}

func precision(n Name) string {
	switch n {
	case CPU:
		return "0.001 core"
	case CUDAShares:
		return "0.01 share"
	}
	return "whole units"
}

func knownList() string {
	s := make([]string, len(Known))
	for i, n := range Known {
		s[i] = string(n)
	}
	return strings.Join(s, ", ")
}

// Limits are upper bounds per slot; a slot that is absent is unlimited.
// On the wire every known slot is present and unlimited ones are null.
type Limits map[Name]int64

// MarshalJSON writes every known slot, null where unlimited.
func (l Limits) MarshalJSON() ([]byte, error) {
	m := make(map[Name]*json.Number, len(Known))
	for _, n := range Known {
		m[n] = nil
	}
	for n, v := range l {
		f := Format(n, v)
		m[n] = &f
	}
	return json.Marshal(m)
}

// UnmarshalJSON accepts decimals or null (unlimited) per slot.
func (l *Limits) UnmarshalJSON(b []byte) error {
	var raw map[Name]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("resource slots must be an object keyed by slot name: %w", err)
	}
	out := Limits{}
	var errs []string
	for _, n := range sortedNames(raw) {
		v := raw[n]
		if string(v) == "null" {
			continue
		}
		var num json.Number
		// json.Number also takes a quoted number; a string is not one.
		if len(v) > 0 && v[0] == '"' || json.Unmarshal(v, &num) != nil {
			errs = append(errs, fmt.Sprintf("%s must be a number or null", n))
			continue
		}
		q, err := Parse(n, num.String())
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		out[n] = q
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	*l = out
	return nil
}

func sortedNames[V any](m map[Name]V) []Name {
	out := make([]Name, 0, len(m))
	for n := range m {
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}
