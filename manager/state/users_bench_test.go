package state

import (
	"fmt"
	"testing"
)

// BenchmarkUsersPage100k is two pages of 50 users, newest first, out of
// 100,000 with no filter, through the users' newest-first index
// (trees.go).
func BenchmarkUsersPage100k(b *testing.B) {
	st := New()
	tx := st.Write()
	for i := range 100_000 {
		email := fmt.Sprintf("user%06d@example.com", i)
		if err := tx.PutUser(uint64(i+1), &User{Email: email, Username: fmt.Sprintf("user%06d", i), Role: "user", Status: "active", Domain: "default"}); err != nil {
			b.Fatal(err)
		}
	}
	tx.Commit()
	r := st.Read()
	b.ResetTimer()
	for range b.N {
		page, next, err := r.Users("", 50, nil)
		if err != nil || len(page) != 50 || next == "" {
			b.Fatal(len(page), next, err)
		}
		if _, _, err := r.Users(next, 50, nil); err != nil {
			b.Fatal(err)
		}
	}
}
