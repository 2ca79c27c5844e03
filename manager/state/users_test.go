package state

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// Users pages newest first by newestKey: every page, walked by its
// cursors, is the table sorted by newestKey, whatever the page size, and
// users one entry created together (the same index) come in email order.
func TestUsersPagesNewestFirst(t *testing.T) {
	st := New()
	tx := st.Write()
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 500 {
		// Some users share a creating index, as a bootstrap's do.
		index := uint64(rng.IntN(300) + 1)
		if err := tx.PutUser(index, &User{Email: fmt.Sprintf("u%03d@example.com", rng.IntN(1000)*1000+i), Username: fmt.Sprintf("u%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	tx.Commit()
	r := st.Read()
	var want []string
	if err := r.EachUser(nil, func(u *User) error { want = append(want, newestKey(u)); return nil }); err != nil {
		t.Fatal(err)
	}
	slices.Sort(want)
	keep := func(u *User) bool { return !strings.HasPrefix(u.Email, "u1") }
	var wantKept []string
	for _, k := range want {
		if !strings.HasPrefix(k[17:], "u1") {
			wantKept = append(wantKept, k)
		}
	}
	for _, c := range []struct {
		limit int
		keep  func(*User) bool
		want  []string
	}{{1, nil, want}, {7, nil, want}, {50, nil, want}, {499, nil, want}, {500, nil, want}, {0, nil, want}, {13, keep, wantKept}} {
		var got []string
		cursor, pages := "", 0
		for {
			page, next, err := r.Users(cursor, c.limit, c.keep)
			if err != nil {
				t.Fatal(err)
			}
			if c.limit > 0 && len(page) > c.limit {
				t.Fatalf("limit %d: a page of %d", c.limit, len(page))
			}
			for _, u := range page {
				got = append(got, newestKey(u))
			}
			pages++
			if cursor = next; cursor == "" || pages > 1000 {
				break
			}
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("limit %d: %d users in another order than newestKey's (%d)", c.limit, len(got), len(c.want))
		}
	}
	// A cursor that is not a key still pages from where it sorts.
	page, _, err := r.Users("zz", 10, nil)
	if err != nil || len(page) != 0 {
		t.Errorf("past every key: %d users, %v", len(page), err)
	}
	page, _, err = r.Users("0", 3, nil)
	if err != nil || len(page) != 3 || newestKey(page[0]) != want[0] {
		t.Errorf("before every key: %v, %v", page, err)
	}
}
