// Package ids makes the identifiers of Berth's objects: a prefix that says
// what the object is, then 12 random lower-case letters and digits (the
// base32 of 60 random bits, every character equally likely). Managers make
// them in the handler that proposes the object, never in a log applier
// (the entry carries the id, so replaying it gives the same one); the agent
// makes the ids of its execs.
package ids

import (
	"encoding/base32"
	"fmt"
	"io"
	"strings"
)

// Kind is what an id names; its value is the id's prefix.
type Kind string

// The kinds of ids.
const (
	Session    Kind = "s-"
	Agent      Kind = "agent-"
	Folder     Kind = "f-"
	Invitation Kind = "i-"
	AgentToken Kind = "agtok-"
	Exec       Kind = "exec-"
	// Terminal is an exec with a TTY: the agent finds the terminals an
	// earlier run of it left behind by this prefix.
	Terminal Kind = "term-"
)

// randomBytes are read from the source per id: 64 bits, of which the 12
// characters keep 60.
const randomBytes = 8

var encoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// New returns a new id of the kind from rnd (crypto/rand.Reader, or a
// fixed source in tests).
func New(rnd io.Reader, k Kind) (string, error) {
	b := make([]byte, randomBytes)
	if _, err := io.ReadFull(rnd, b); err != nil {
		return "", fmt.Errorf("make a %s… id: %w", k, err)
	}
	return string(k) + strings.ToLower(encoding.EncodeToString(b)[:12]), nil
}
