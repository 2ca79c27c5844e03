package imageref

import (
	"strings"
	"testing"
)

func TestParseGivesTheFullFormAndTheHost(t *testing.T) {
	for _, c := range []struct{ in, normal, host string }{
		{"python:3.12", "docker.io/library/python:3.12", "docker.io"},
		{"python", "docker.io/library/python:latest", "docker.io"},
		{"berth/base:latest", "docker.io/berth/base:latest", "docker.io"},
		{"127.0.0.1:5000/lab/base:1", "127.0.0.1:5000/lab/base:1", "127.0.0.1:5000"},
		{"localhost:5000/x", "localhost:5000/x:latest", "localhost:5000"},
		{"registry.example.com/a/b/c@sha256:" + strings.Repeat("a", 64), "registry.example.com/a/b/c@sha256:" + strings.Repeat("a", 64), "registry.example.com"},
	} {
		r, err := Parse(c.in)
		if err != nil || r.Normal != c.normal || r.Host != c.host {
			t.Errorf("Parse(%q) = %+v, %v; want %s on %s", c.in, r, err, c.normal, c.host)
		}
	}
}

func TestReferencesThatDoNotParseSayHowToWriteOne(t *testing.T) {
	for _, in := range []string{"", " python", "Python", "a b", "python:", "x@sha256:short", strings.Repeat("a", MaxLen+1), "::"} {
		_, err := Parse(in)
		if err == nil {
			t.Errorf("Parse(%q) succeeded", in)
		}
	}
	_, err := Parse("Python")
	if !strings.Contains(err.Error(), "[HOST[:PORT]/]NAME") {
		t.Fatalf("reason %q does not say how to write a reference", err)
	}
}

func TestSameComparesFullForms(t *testing.T) {
	if !Same("berth/base:latest", "docker.io/berth/base:latest") || !Same("python", "python:latest") {
		t.Fatal("short and full forms of one name differ")
	}
	if Same("python:3.12", "python:3.11") || Same("??", "python") {
		t.Fatal("different names are the same")
	}
}

func TestAllowedImagesMatchTheFullFormOnly(t *testing.T) {
	lab := []string{"127.0.0.1:5000/lab/*", "docker.io/library/python:3.1?"}
	for _, c := range []struct {
		patterns []string
		ref      string
		want     bool
	}{
		{nil, "anything:1", true},
		{lab, "127.0.0.1:5000/lab/base:1", true},
		{lab, "127.0.0.1:5000/lab/deep/er:2", true},
		{lab, "127.0.0.1:5000/other/base:1", false},
		{lab, "127.0.0.1:5001/lab/base:1", false},
		{lab, "python:3.12", true},
		{lab, "python:3.9", false},
		{lab, "python:3.123", false},
		// What the user typed is never matched, only the full form, whose
		// host comes first: a pattern for Docker Hub's python cannot admit
		// a registry named python.evil.example.
		{[]string{"python*"}, "python:3.12", false},
		{[]string{"docker.io/library/python*"}, "python.evil.example/x:1", false},
		{[]string{"docker.io/library/python*"}, "python:3.12", true},
		{[]string{"*"}, "not a reference", false},
		{[]string{"*"}, "busybox", true},
		{[]string{"docker.io/*/*:latest"}, "berth/base", true},
	} {
		if got := Allowed(c.patterns, c.ref); got != c.want {
			t.Errorf("Allowed(%q, %q) = %v, want %v", c.patterns, c.ref, got, c.want)
		}
	}
}

func TestManyStarsStayLinear(t *testing.T) {
	p := strings.Repeat("*a", 200) + "b"
	s := strings.Repeat("a", 400)
	if match(p, s) {
		t.Fatal("matched")
	}
}

func TestCheckPatternRefusesEmptyAndSpaces(t *testing.T) {
	for _, p := range []string{"", " x", "a b", "a\tb", strings.Repeat("x", MaxLen+1), "a\x00"} {
		if CheckPattern(p) == nil {
			t.Errorf("CheckPattern(%q) accepted", p)
		}
	}
	if err := CheckPattern("registry.example.com/lab/*"); err != nil {
		t.Fatal(err)
	}
}

func TestSameHostKnowsDockerHubAliases(t *testing.T) {
	if !SameHost("registry-1.docker.io", "docker.io") || !SameHost("Registry.Example.com", "registry.example.com") || SameHost("a:5000", "a:5001") {
		t.Fatal("host comparison")
	}
}

func FuzzAllowed(f *testing.F) {
	f.Add("*", "python:3.12")
	f.Add("a?*b", "ab")
	f.Fuzz(func(t *testing.T, p, s string) {
		_ = Allowed([]string{p}, s)
	})
}
