// Package apierr is the error vocabulary shared by the FSM and the HTTP layer:
// a rule decided anywhere (a handler's validation, an FSM applier's uniqueness
// check) returns an *Error, and the HTTP layer renders it as problem+json with
// the status its Kind implies.
package apierr

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/berth-cluster/berth/shared/api"
)

// Kind classifies an error; each kind has one HTTP status.
type Kind int

// The kinds, in the order of their statuses.
const (
	Invalid Kind = iota + 1
	Unauthorized
	Forbidden
	NotFound
	MethodNotAllowed
	Conflict
	TooLarge
	Unprocessable
	RateLimited
	// Timeout: the request (its body) did not arrive in time.
	Timeout
	Unavailable
	// OutcomeUnknown: a write that may or may not have been applied.
	OutcomeUnknown
)

var kinds = map[Kind]struct {
	status int
	typ    string
	title  string
}{
	Invalid:          {http.StatusBadRequest, api.ProblemValidation, "Invalid request"},
	Unauthorized:     {http.StatusUnauthorized, api.ProblemUnauthorized, "Not authenticated"},
	Forbidden:        {http.StatusForbidden, api.ProblemForbidden, "Forbidden"},
	NotFound:         {http.StatusNotFound, api.ProblemNotFound, "Not found"},
	MethodNotAllowed: {http.StatusMethodNotAllowed, api.ProblemMethod, "Method not allowed"},
	Conflict:         {http.StatusConflict, api.ProblemConflict, "Conflict"},
	TooLarge:         {http.StatusRequestEntityTooLarge, api.ProblemTooLarge, "Request too large"},
	Unprocessable:    {http.StatusUnprocessableEntity, api.ProblemValidation, "Request cannot be satisfied"},
	RateLimited:      {http.StatusTooManyRequests, api.ProblemRateLimited, "Too many requests"},
	Timeout:          {http.StatusRequestTimeout, api.ProblemTimeout, "Request timeout"},
	Unavailable:      {http.StatusServiceUnavailable, api.ProblemNoLeader, "Service unavailable"},
	OutcomeUnknown:   {http.StatusServiceUnavailable, api.ProblemOutcomeUnknown, "Outcome unknown"},
}

// Error is a failure with a reason a person can act on.
type Error struct {
	Kind   Kind
	Detail string
	Fields []api.FieldError
	// RetryAfter, for RateLimited and Unavailable, says when to try again.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(kinds[e.Kind].title)
	if e.Detail != "" {
		b.WriteString(": " + e.Detail)
	}
	for _, f := range e.Fields {
		fmt.Fprintf(&b, "; %s: %s", f.Field, f.Reason)
	}
	return b.String()
}

// New makes an error of the kind with a formatted detail.
func New(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Detail: fmt.Sprintf(format, args...)}
}

// Field makes an error of the kind about one field.
func Field(k Kind, field, reason string) *Error {
	return &Error{Kind: k, Detail: reason, Fields: []api.FieldError{{Field: field, Reason: reason}}}
}

// Problem renders any error as a problem body. Errors that are not *Error
// are internal: their text is not shown to the caller (it may hold paths or
// addresses), only a generic detail.
func Problem(err error) *api.Problem {
	var e *Error
	if !errors.As(err, &e) {
		return &api.Problem{Type: api.ProblemInternal, Title: "Internal error", Status: http.StatusInternalServerError,
			Detail: "the manager failed to handle this request; the error is in its log"}
	}
	k := kinds[e.Kind]
	return &api.Problem{Type: k.typ, Title: k.title, Status: k.status, Detail: e.Detail, Errors: e.Fields}
}

// Is reports whether err is an *Error of kind k.
func Is(err error, k Kind) bool {
	var e *Error
	return errors.As(err, &e) && e.Kind == k
}

// Fields collects field errors so validation can report every violated rule
// at once.
type Fields []api.FieldError

// Add records a violated rule.
func (f *Fields) Add(field, format string, args ...any) {
	*f = append(*f, api.FieldError{Field: field, Reason: fmt.Sprintf(format, args...)})
}

// Err returns nil when nothing was recorded, else an Invalid error with all of them.
func (f Fields) Err() error {
	if len(f) == 0 {
		return nil
	}
	detail := f[0].Reason
	if len(f) > 1 {
		detail = fmt.Sprintf("%d fields are invalid", len(f))
	}
	return &Error{Kind: Invalid, Detail: detail, Fields: f}
}
