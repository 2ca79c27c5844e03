// Package imageref reads container image references the way every part of
// Berth must agree on: the normal form a reference is compared and matched
// in, the registry host it names, and the allowed_images patterns of a
// resource policy. It is small and deterministic (the FSM uses it).
package imageref

import (
	"errors"
	"fmt"
	"strings"

	"github.com/distribution/reference"
)

// MaxLen bounds a reference (and a pattern): the distribution spec's name
// limit (255) plus a tag or digest, with room to spare.
const MaxLen = 512

// DockerHub is the host of references that name none ("python:3.12").
const DockerHub = "docker.io"

// Ref is a parsed image reference.
type Ref struct {
	// Normal is the full form: host, repository, and tag (":latest" when
	// none was given) or digest, e.g. docker.io/library/python:3.12.
	Normal string
	// Host is the registry host and port as the reference names it
	// (docker.io for references without one).
	Host string
}

// Parse reads a reference as docker and containerd do: "python:3.12" is
// docker.io/library/python:3.12, "127.0.0.1:5000/lab/base" is
// 127.0.0.1:5000/lab/base:latest. The error says what is wrong in words a
// person can act on.
func Parse(s string) (Ref, error) {
	switch {
	case strings.TrimSpace(s) == "":
		return Ref{}, errors.New("image reference is empty")
	case len(s) > MaxLen:
		return Ref{}, fmt.Errorf("image reference is %d characters, more than %d", len(s), MaxLen)
	case s != strings.TrimSpace(s):
		return Ref{}, fmt.Errorf("image reference %q has spaces around it", s)
	}
	named, err := reference.ParseDockerRef(s)
	if err != nil {
		return Ref{}, fmt.Errorf("image reference %q does not parse (%v); write it as [HOST[:PORT]/]NAME[:TAG|@sha256:DIGEST], e.g. registry.example.com:5000/lab/python:3.12", s, err)
	}
	return Ref{Normal: named.String(), Host: reference.Domain(named)}, nil
}

// Normal is the full form of s, or s itself when it does not parse (so
// that comparing two names never fails: what does not parse equals only
// itself).
func Normal(s string) string {
	r, err := Parse(s)
	if err != nil {
		return s
	}
	return r.Normal
}

// Same reports whether two references name the same image by name
// ("berth/base:latest" and "docker.io/berth/base:latest" do).
func Same(a, b string) bool { return a == b || Normal(a) == Normal(b) }

// HostKey is the form registry hosts are compared in: lower case, and
// docker.io for the names Docker Hub goes by (a registry object for any of
// them serves references without a host).
func HostKey(h string) string {
	switch strings.ToLower(h) {
	case DockerHub, "index.docker.io", "registry-1.docker.io":
		return DockerHub
	}
	return strings.ToLower(h)
}

// SameHost reports whether two registry hosts are the same (case aside,
// Docker Hub's aliases as one).
func SameHost(a, b string) bool { return HostKey(a) == HostKey(b) }
