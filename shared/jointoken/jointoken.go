// Package jointoken reads the secrets that admit a machine to the cluster
// — an agent's join token, the managers' -agent-token and -join-token — and
// refuses weak ones when a daemon starts. A secret comes from a file or the
// environment; a command-line value is still read, but ps shows it to
// every local account, so daemons warn about it.
package jointoken

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// MinLen is the shortest secret a daemon accepts, in bytes.
const MinLen = 16

// Examples are the placeholder secrets the example configuration shows
// (deploy/): a cluster started with one of them would be open to anyone
// who read the same page.
var Examples = []string{"CHANGE-ME-agent-token", "CHANGE-ME-join-token"}

// Source is one place a secret may be given.
type Source struct {
	// Name is how the operator gave it, for messages: "-token-file",
	// "BERTH_AGENT_TOKEN", "-agent-token".
	Name string
	// Value is the secret, or with File the path of a file holding it.
	Value string
	File  bool
}

// Resolve returns the secret of the one source that is set (a file is
// read: its content without surrounding white space) and that source's
// name. None set: "", "", nil. Two set is an error naming both, so a
// stale variable cannot silently win over the operator's file.
func Resolve(sources ...Source) (secret, from string, err error) {
	var set []Source
	for _, s := range sources {
		if s.Value != "" {
			set = append(set, s)
		}
	}
	switch len(set) {
	case 0:
		return "", "", nil
	case 1:
	default:
		names := make([]string, len(set))
		for i, s := range set {
			names[i] = s.Name
		}
		return "", "", fmt.Errorf("the token is given more than once (%s): give it one way", strings.Join(names, ", "))
	}
	s := set[0]
	if !s.File {
		return s.Value, s.Name, nil
	}
	secret, err = ReadFile(s.Value)
	if err != nil {
		return "", "", fmt.Errorf("%s: %w", s.Name, err)
	}
	return secret, s.Name, nil
}

// ReadFile reads a secret from a file that only its owner (and group) may
// read: a file other local accounts can read is no better than argv.
func ReadFile(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("read token file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("token file %s is not a regular file", path)
	}
	if st.Mode().Perm()&0o004 != 0 {
		return "", fmt.Errorf("token file %s can be read by every local account (mode %04o): chmod 600 %s", path, st.Mode().Perm(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read token file: %w", err)
	}
	secret := strings.TrimSpace(string(b))
	if secret == "" {
		return "", fmt.Errorf("token file %s is empty", path)
	}
	return secret, nil
}

// ErrWeak is what Check's errors wrap.
var ErrWeak = errors.New("weak token")

// Check refuses a secret shorter than MinLen bytes or equal to one of the
// Examples, saying how to make a good one. name says which secret it is.
func Check(name, secret string) error {
	for _, ex := range Examples {
		if strings.EqualFold(secret, ex) {
			return fmt.Errorf("%s is the example value %q from the documentation: %w; make one with: openssl rand -hex 32", name, ex, ErrWeak)
		}
	}
	if len(secret) < MinLen {
		return fmt.Errorf("%s is %d bytes, shorter than %d: %w; make one with: openssl rand -hex 32", name, len(secret), MinLen, ErrWeak)
	}
	return nil
}
