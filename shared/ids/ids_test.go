package ids

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"regexp"
	"strings"
	"testing"
)

func TestAnIDIsItsKindsPrefixAndTwelveLowerCaseCharacters(t *testing.T) {
	tail := regexp.MustCompile(`^[a-z2-7]{12}$`)
	for _, k := range []Kind{Session, Agent, Folder, Invitation, AgentToken, Exec, Terminal} {
		id, err := New(rand.Reader, k)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(id, string(k)) || !tail.MatchString(strings.TrimPrefix(id, string(k))) {
			t.Errorf("%s id %q is not the prefix and 12 of [a-z2-7]", k, id)
		}
	}
}

// The same bytes give the same id (tests and fakes may fix the source), and
// an id takes exactly its 8 bytes, so a fixed source gives a known sequence.
func TestAnIDTakesEightBytesOfItsSource(t *testing.T) {
	src := bytes.NewReader(bytes.Repeat([]byte{0xff}, 16))
	a, err := New(src, Session)
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(src, Session)
	if err != nil {
		t.Fatal(err)
	}
	if a != "s-777777777777" || b != a || src.Len() != 0 {
		t.Fatalf("ids %q and %q, %d bytes left; want s-777777777777 twice and none", a, b, src.Len())
	}
}

func TestASourceThatFailsMakesNoID(t *testing.T) {
	id, err := New(bytes.NewReader(make([]byte, 7)), Folder)
	if id != "" || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("New from 7 bytes = %q, %v; want no id and io.ErrUnexpectedEOF", id, err)
	}
}

func TestIDsDoNotRepeat(t *testing.T) {
	seen := map[string]bool{}
	for range 10000 {
		id, err := New(rand.Reader, Agent)
		if err != nil {
			t.Fatal(err)
		}
		if seen[id] {
			t.Fatalf("%s made twice", id)
		}
		seen[id] = true
	}
}
