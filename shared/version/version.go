// Package version holds the build identity both daemons and the CLI report.
package version

// Set at link time by the Makefile (-ldflags -X); the defaults describe an
// untagged developer build.
var (
	Version = "0.1.0-dev"
	Commit  = "unknown"
)

// APIVersion is the version of the HTTP contract in docs/API.md.
const APIVersion = "v1"

// License is the licence the software is distributed under.
const License = "Apache-2.0"
