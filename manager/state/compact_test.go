package state

import (
	"strings"
	"testing"
	"unsafe"

	"github.com/berth-cluster/berth/shared/api"
)

// A session restored from a snapshot brings its own copies of its access
// key and owner; it keeps its keypair's strings instead, as one the create
// applier made does. An owner that is not the keypair's user (none the
// applier makes) keeps its own.
func TestARestoredSessionSharesItsKeypairsStrings(t *testing.T) {
	st, tx := Reset()
	defer tx.Abort()
	if err := tx.Insert(tableUsers, &User{Email: "ann@x.io", Username: "ann"}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Insert(tableKeypairs, &Keypair{AccessKey: "AK0", User: "ann@x.io"}); err != nil {
		t.Fatal(err)
	}
	// Copies, as decoding a snapshot record gives.
	copyOf := func(s string) string { return strings.Clone(s) }
	for _, s := range []*Session{
		{ID: "s1", AccessKey: copyOf("AK0"), Owner: copyOf("ann@x.io"), Status: api.SessionTerminated},
		{ID: "s2", AccessKey: copyOf("AK0"), Owner: copyOf("bob@x.io"), Status: api.SessionTerminated},
	} {
		if err := tx.Insert(tableSessions, s); err != nil {
			t.Fatal(err)
		}
	}
	tx.Commit()
	r := st.Read()
	k, _ := r.Keypair("AK0")
	same := func(a, b string) bool { return unsafe.StringData(a) == unsafe.StringData(b) }
	s1, _ := r.Session("s1")
	if !same(s1.AccessKey, k.AccessKey) || !same(s1.Owner, k.User) {
		t.Error("a restored session keeps its own copies of its keypair's access key and user")
	}
	s2, _ := r.Session("s2")
	if !same(s2.AccessKey, k.AccessKey) || s2.Owner != "bob@x.io" || same(s2.Owner, k.User) {
		t.Errorf("a session owned by another than its keypair's user: owner %q", s2.Owner)
	}
}
