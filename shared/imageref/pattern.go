package imageref

import (
	"fmt"
	"strings"
)

// Patterns of a resource policy's allowed_images are matched against the
// full form of a reference (Ref.Normal: docker.io/library/python:3.12, never
// what the user typed: docker.io/library/python* admits Docker Hub's python
// images and not a registry named python.evil.example; write patterns
// starting with the registry host).
// The glob knows three things: "*" any run of characters, "/" and ":"
// included (registry.example.com/lab/* is everything under lab/, at any
// depth and tag); "?" any one character; everything else itself.
// Patterns are checked once, when the policy is written (CheckPattern).
// This matching is also applied by the FSM when a session is created: a
// change of its meaning changes what old logs replay to.

// CheckPattern says what is wrong with a pattern, or nil.
func CheckPattern(p string) error {
	switch {
	case p == "":
		return fmt.Errorf("an image pattern must not be empty")
	case len(p) > MaxLen:
		return fmt.Errorf("image pattern is %d characters, more than %d", len(p), MaxLen)
	case strings.TrimSpace(p) != p || strings.ContainsAny(p, " \t\r\n"):
		return fmt.Errorf("image pattern %q must not contain spaces", p)
	}
	for _, r := range p {
		if r < 0x21 || r == 0x7f {
			return fmt.Errorf("image pattern %q must not contain control characters", p)
		}
	}
	return nil
}

// Allowed reports whether the reference s may run under patterns: any
// reference when there are none, else one whose full form matches one of
// them. A reference that does not parse matches nothing.
func Allowed(patterns []string, s string) bool {
	if len(patterns) == 0 {
		return true
	}
	r, err := Parse(s)
	if err != nil {
		return false
	}
	for _, p := range patterns {
		if match(p, r.Normal) {
			return true
		}
	}
	return false
}

// match is the glob: iterative, with one backtrack point per "*", so a
// pattern of many stars costs O(len(p)·len(s)), never exponential time.
func match(p, s string) bool {
	px, sx := 0, 0
	starP, starS := -1, -1
	for sx < len(s) {
		switch {
		case px < len(p) && p[px] == '*':
			starP, starS = px, sx
			px++
		case px < len(p) && (p[px] == '?' || p[px] == s[sx]):
			px++
			sx++
		case starP >= 0:
			starS++
			px, sx = starP+1, starS
		default:
			return false
		}
	}
	for px < len(p) && p[px] == '*' {
		px++
	}
	return px == len(p)
}
