package fsm

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
)

// No sequence of creates and username changes, with names drawn from a
// small pool so that collisions (also by case) are frequent, can leave two
// users with one email or one username.
func TestNoSequenceYieldsTwoUsersWithOneEmailOrUsername(t *testing.T) {
	for seed := uint64(1); seed <= 30; seed++ {
		rnd := rand.New(rand.NewPCG(seed, 99))
		f := newTestFSM()
		applyAll(t, f, testLog(t, seed, 0))
		name := func() string {
			n := fmt.Sprintf("name%d", rnd.IntN(12))
			if rnd.IntN(2) == 0 {
				n = strings.ToUpper(n)
			}
			return n
		}
		for i := 0; i < 200; i++ {
			email := fmt.Sprintf("p%d@x.io", rnd.IntN(15))
			var c Command
			if rnd.IntN(3) > 0 {
				c = UserCreate{
					User:    state.User{Email: email, Username: name(), Role: api.RoleUser, Status: api.StatusActive, Domain: "default"},
					Keypair: state.Keypair{AccessKey: fmt.Sprintf("AKP%017d", i), User: email, ResourcePolicy: "default"},
				}
			} else {
				n := name()
				c = UserUpdate{Email: email, Username: &n}
			}
			e, err := Encode(c)
			if err != nil {
				t.Fatal(err)
			}
			f.ApplyEntry(uint64(1000+i), e)
		}
		emails, names := map[string]bool{}, map[string]bool{}
		users, _, err := f.State().Read().Users("", 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range users {
			lower := strings.ToLower(u.Username)
			if emails[u.Email] || names[lower] {
				t.Fatalf("seed %d: duplicate email %s or username %s", seed, u.Email, u.Username)
			}
			emails[u.Email], names[lower] = true, true
		}
		if len(users) < 5 {
			t.Fatalf("seed %d: only %d users were created; the test exercises too little", seed, len(users))
		}
	}
}
