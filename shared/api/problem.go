// Package api holds the wire types of the HTTP contract (docs/API.md) that
// the manager serves and the client and CLI speak.
package api

import (
	"fmt"
	"strings"
)

// ProblemContentType is the media type of every error response (RFC 9457).
const ProblemContentType = "application/problem+json"

// Problem types. A client may switch on Type; Title is for people.
const (
	ProblemValidation   = "https://berth.dev/problems/validation"
	ProblemUnauthorized = "https://berth.dev/problems/unauthorized"
	ProblemForbidden    = "https://berth.dev/problems/forbidden"
	ProblemNotFound     = "https://berth.dev/problems/not-found"
	ProblemConflict     = "https://berth.dev/problems/conflict"
	ProblemTooLarge     = "https://berth.dev/problems/too-large"
	ProblemRateLimited  = "https://berth.dev/problems/rate-limited"
	ProblemNoLeader     = "https://berth.dev/problems/no-leader"
	// ProblemOutcomeUnknown: the write may or may not have been applied
	// (leadership changed while it was being committed). Unlike no-leader,
	// it is not safe to send a non-idempotent request again blindly.
	ProblemOutcomeUnknown = "https://berth.dev/problems/outcome-unknown"
	ProblemMethod         = "https://berth.dev/problems/method-not-allowed"
	ProblemInternal       = "https://berth.dev/problems/internal"
	// ProblemTimeout: the request body did not arrive in time (408).
	ProblemTimeout = "https://berth.dev/problems/timeout"
)

// FieldError names one violated rule of one request field.
type FieldError struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

// Problem is an application/problem+json body.
type Problem struct {
	Type   string       `json:"type"`
	Title  string       `json:"title"`
	Status int          `json:"status"`
	Detail string       `json:"detail,omitempty"`
	Errors []FieldError `json:"errors,omitempty"`
}

// Error makes a Problem usable as a Go error on the client side.
func (p *Problem) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s", p.Status, p.Title)
	if p.Detail != "" {
		b.WriteString(": " + p.Detail)
	}
	for _, e := range p.Errors {
		fmt.Fprintf(&b, "; %s: %s", e.Field, e.Reason)
	}
	return b.String()
}
