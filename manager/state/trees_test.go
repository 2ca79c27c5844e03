package state

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/slots"
)

// The sessions, users and keypairs tables keep their indexes in B-trees
// (trees.go). These tests hold them to what the go-memdb indexes they
// replace gave: the same records, in the same orders, one version per
// transaction.

var testBase = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// treeStore is a store with two users and their keypairs, which sessions
// need.
func treeStore(t testing.TB) (*Store, *uint64) {
	t.Helper()
	st := New()
	index := uint64(0)
	write(t, st, &index, func(tx *Txn, i uint64) error {
		for n, email := range []string{"ann@x.io", "bob@x.io"} {
			if err := tx.PutUser(i, &User{Email: email, Username: strings.TrimSuffix(email, "@x.io"), Role: api.RoleUser, Status: api.StatusActive, Domain: "default"}); err != nil {
				return err
			}
			if err := tx.PutKeypair(i, &Keypair{AccessKey: fmt.Sprintf("AK%d", n), User: email, IsActive: true, ResourcePolicy: "default", CreatedAt: testBase}); err != nil {
				return err
			}
		}
		return nil
	})
	return st, &index
}

// write applies f in one committed write transaction at the next index.
func write(t testing.TB, st *Store, index *uint64, f func(*Txn, uint64) error) {
	t.Helper()
	*index++
	tx := st.Write()
	defer tx.Abort()
	if err := f(tx, *index); err != nil {
		t.Fatal(err)
	}
	tx.Commit()
}

func testSession(id, key string, status api.SessionStatus, agents ...string) *Session {
	s := &Session{ID: id, Name: id, AccessKey: key, Owner: map[string]string{"AK0": "ann@x.io", "AK1": "bob@x.io"}[key], Domain: "default",
		Image: "img", Type: api.SessionBatch, ClusterSize: max(1, len(agents)), Requested: slots.Slots{slots.CPU: 100},
		Status: status, CreatedAt: testBase}
	for i, a := range agents {
		s.Containers = append(s.Containers, SessionContainer{Index: i, Agent: a, Slots: slots.Slots{slots.CPU: 100}})
	}
	if status != api.SessionPending {
		at := testBase
		s.StartedAt = &at
	}
	if status.Ended() {
		at := testBase.Add(time.Minute)
		s.TerminatedAt = &at
	}
	return s
}

func ids[T any](objs []*T) []string {
	out := make([]string, len(objs))
	for i, o := range objs {
		out[i] = idOf(o)
	}
	return out
}

// Random writes (creates, status changes, moves between agents, removals)
// over many transactions, and after each the indexes give exactly what a
// sort of the records gives: ids unique and in order, newest first, live
// statuses, occupying sessions per agent, oldest first.
func TestTreeIndexesListWhatASortOfTheRecordsGives(t *testing.T) {
	st, index := treeStore(t)
	rng := rand.New(rand.NewPCG(3, 4))
	statuses := api.SessionStatuses()
	agents := []string{"agent-a", "agent-b", "agent-c"}
	model := map[string]*Session{}
	for range 300 {
		write(t, st, index, func(tx *Txn, i uint64) error {
			for range rng.IntN(4) + 1 {
				id := fmt.Sprintf("s-%03d", rng.IntN(120))
				old := model[id]
				if old != nil && old.Status.Ended() && rng.IntN(3) == 0 {
					if err := tx.CollectSession(old, testBase); err != nil {
						return err
					}
					delete(model, id)
					continue
				}
				var on []string
				for range rng.IntN(3) {
					on = append(on, agents[rng.IntN(len(agents))])
				}
				s := testSession(id, fmt.Sprintf("AK%d", rng.IntN(2)), statuses[rng.IntN(len(statuses))], on...)
				if old != nil {
					s.CreateIndex = old.CreateIndex
				}
				if err := tx.PutSession(i, s); err != nil {
					return err
				}
				model[id] = s
			}
			return nil
		})
	}
	if len(model) < 50 {
		t.Fatalf("only %d sessions: the test proves little", len(model))
	}
	r := st.Read()
	all := slices.Collect(func(yield func(*Session) bool) {
		for _, s := range model {
			if !yield(s) {
				return
			}
		}
	})

	byID := slices.SortedFunc(slices.Values(all), func(x, y *Session) int { return strings.Compare(x.ID, y.ID) })
	var got []*Session
	if err := r.EachSession(nil, func(s *Session) error { got = append(got, s); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(got), ids(byID)) {
		t.Errorf("id order: %v, want %v", ids(got), ids(byID))
	}
	for _, s := range byID {
		if g, _ := r.Session(s.ID); g != s {
			t.Errorf("Session(%s) is %p, want %p", s.ID, g, s)
		}
	}
	if g, _ := r.Session("s-999"); g != nil {
		t.Errorf("a session that was never written: %v", g)
	}

	newestFirst := slices.SortedFunc(slices.Values(all), func(x, y *Session) int { return strings.Compare(newestKey(x), newestKey(y)) })
	for _, limit := range []int{0, 1, 7, 1000} {
		var pages []*Session
		cursor := ""
		for n := 0; n < 1000; n++ {
			page, next, err := r.Sessions(cursor, limit, nil)
			if err != nil {
				t.Fatal(err)
			}
			pages = append(pages, page...)
			if cursor = next; cursor == "" {
				break
			}
		}
		if !slices.Equal(ids(pages), ids(newestFirst)) {
			t.Errorf("newest first, pages of %d: %v, want %v", limit, ids(pages), ids(newestFirst))
		}
	}
	var oldest []*Session
	if err := r.EachSessionOldestFirst(func(s *Session) (bool, error) { oldest = append(oldest, s); return true, nil }); err != nil {
		t.Fatal(err)
	}
	reversed := slices.Clone(newestFirst)
	slices.Reverse(reversed)
	if !slices.Equal(ids(oldest), ids(reversed)) {
		t.Errorf("oldest first: %v", ids(oldest))
	}

	for _, status := range statuses {
		want := slices.DeleteFunc(slices.Clone(byID), func(s *Session) bool { return s.Status != status })
		got, err := r.SessionsInStatus(status)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ids(got), ids(want)) {
			t.Errorf("status %s: %v, want %v", status, ids(got), ids(want))
		}
		if n, _ := r.CountSessionsInStatus(status); n != len(want) {
			t.Errorf("status %s counted %d, want %d", status, n, len(want))
		}
	}
	for _, a := range agents {
		want := slices.DeleteFunc(slices.Clone(byID), func(s *Session) bool {
			return !s.Status.Occupying() || !slices.ContainsFunc(s.Containers, func(c SessionContainer) bool { return c.Agent == a })
		})
		got, err := r.OccupyingOnAgent(a)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ids(got), ids(want)) {
			t.Errorf("occupying %s: %v, want %v", a, ids(got), ids(want))
		}
	}
	if got, _ := r.OccupyingOnAgent(""); len(got) != 0 {
		t.Errorf("occupying no agent: %v", ids(got))
	}
}

// A second record with an id replaces the first in every index: the old
// version is found by none of them, under its old username or user
// either.
func TestAnIDIsUniqueAndAReplacedVersionLeavesEveryIndex(t *testing.T) {
	st, index := treeStore(t)
	write(t, st, index, func(tx *Txn, i uint64) error {
		u, _ := tx.User("ann@x.io")
		c := u.Copy()
		c.Username = "Annie"
		if err := tx.PutUser(i, c); err != nil {
			return err
		}
		k, _ := tx.Keypair("AK0")
		kc := *k
		kc.User = "bob@x.io"
		if err := tx.PutKeypair(i, &kc); err != nil {
			return err
		}
		if err := tx.PutSession(i, testSession("s1", "AK0", api.SessionRunning, "agent-a")); err != nil {
			return err
		}
		return tx.PutSession(i, testSession("s1", "AK0", api.SessionTerminated, "agent-b"))
	})
	r := st.Read()
	if u, _ := r.UserByUsername("ann"); u != nil {
		t.Errorf("the old username still finds %s", u.Email)
	}
	for _, name := range []string{"annie", "ANNIE", "Annie"} {
		if u, _ := r.UserByUsername(name); u == nil || u.Email != "ann@x.io" {
			t.Errorf("username %q finds %v", name, u)
		}
	}
	if u, _ := r.UserByUsername("anni"); u != nil {
		t.Errorf("a prefix of a username finds %s", u.Email)
	}
	users, _, _ := r.Users("", 0, nil)
	if n, _ := r.CountKeypairs(); len(users) != 2 || n != 2 {
		t.Errorf("%d users and %d keypairs, want 2 and 2", len(users), n)
	}
	if ks, _ := r.KeypairsOfUser("ann@x.io"); len(ks) != 0 {
		t.Errorf("ann still has %v", ids(ks))
	}
	if ks, _ := r.KeypairsOfUser("bob@x.io"); !slices.Equal(ids(ks), []string{"AK0", "AK1"}) {
		t.Errorf("bob has %v, want AK0 and AK1", ids(ks))
	}
	all, _ := r.All(tableSessions)
	if len(all) != 1 {
		t.Errorf("%d versions of s1 in the table", len(all))
	}
	for _, a := range []string{"agent-a", "agent-b"} {
		if got, _ := r.OccupyingOnAgent(a); len(got) != 0 {
			t.Errorf("the ended s1 still occupies %s", a)
		}
	}
	if got, _ := r.SessionsInStatus(api.SessionRunning); len(got) != 0 {
		t.Errorf("the ended s1 is still listed RUNNING")
	}
	// What go-memdb refused, the trees refuse: a record without its id or
	// an indexed field, and a delete of what is not there.
	tx := st.Write()
	defer tx.Abort()
	for what, err := range map[string]error{
		"user without a username": tx.PutUser(9, &User{Email: "x@x.io"}),
		"keypair without a user":  tx.PutKeypair(9, &Keypair{AccessKey: "AK9"}),
		"session without an id":   tx.insert(tableSessions, &Session{}),
		"user in keypairs":        tx.insert(tableKeypairs, &User{Email: "y@x.io", Username: "y"}),
		"delete of a stranger":    tx.DeleteKeypair(&Keypair{AccessKey: "AK9", User: "x@x.io"}),
	} {
		if err == nil {
			t.Errorf("%s: accepted", what)
		}
	}
}

// A reader holds one version: what it reads does not change while writes
// commit, and the go-memdb tables and the trees it sees are of the same
// commit (the counts by status, kept in go-memdb, match the live sessions
// listed from the trees, in every read). Run with -race.
func TestAReaderSeesOneVersionWhileWritesCommit(t *testing.T) {
	st, index := treeStore(t)
	write(t, st, index, func(tx *Txn, i uint64) error {
		return tx.PutSession(i, testSession("s-old", "AK0", api.SessionPending))
	})
	held := st.Read()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 3 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				r := st.Read()
				pending, _ := r.SessionsInStatus(api.SessionPending)
				n, _ := r.CountSessionsInStatus(api.SessionPending)
				page, _, _ := r.Sessions("", 0, nil)
				if len(pending) != n || len(page) < n {
					errs <- fmt.Errorf("one read: %d PENDING listed, %d counted, %d sessions", len(pending), n, len(page))
					return
				}
			}
		})
	}
	for i := range 300 {
		write(t, st, index, func(tx *Txn, at uint64) error {
			if err := tx.PutSession(at, testSession(fmt.Sprintf("s-%03d", i), "AK1", api.SessionPending)); err != nil {
				return err
			}
			if i%3 == 0 {
				old, _ := tx.Session(fmt.Sprintf("s-%03d", i/2))
				if old != nil {
					c := old.Copy()
					c.Status = api.SessionCancelled
					return tx.PutSession(at, c)
				}
			}
			return nil
		})
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	page, _, _ := held.Sessions("", 0, nil)
	if !slices.Equal(ids(page), []string{"s-old"}) {
		t.Errorf("a read opened before the writes sees %v", ids(page))
	}
	if n, _ := held.CountSessionsInStatus(api.SessionPending); n != 1 {
		t.Errorf("a read opened before the writes counts %d PENDING", n)
	}
	if page, _, _ := st.Read().Sessions("", 0, nil); len(page) != 301 {
		t.Errorf("after the writes: %d sessions, want 301", len(page))
	}
}

// An aborted write leaves nothing, in the trees or in go-memdb, for a
// reader or for the next write.
func TestAnAbortedWriteLeavesNothing(t *testing.T) {
	st, index := treeStore(t)
	before := st.Read()
	tx := st.Write()
	if err := tx.PutSession(*index+1, testSession("s1", "AK0", api.SessionPending)); err != nil {
		t.Fatal(err)
	}
	if err := tx.PutUser(*index+1, &User{Email: "cy@x.io", Username: "cy"}); err != nil {
		t.Fatal(err)
	}
	if err := tx.DeleteKeypair(&Keypair{AccessKey: "AK1", User: "bob@x.io"}); err != nil {
		t.Fatal(err)
	}
	if s, _ := tx.Session("s1"); s == nil {
		t.Fatal("a write does not see its own session")
	}
	tx.Abort()
	tx.Commit() // after Abort: nothing
	for name, r := range map[string]*Txn{"a read from before": before, "a read after": st.Read(), "the next write": st.Write()} {
		if s, _ := r.Session("s1"); s != nil {
			t.Errorf("%s sees the aborted session", name)
		}
		if u, _ := r.User("cy@x.io"); u != nil {
			t.Errorf("%s sees the aborted user", name)
		}
		if k, _ := r.Keypair("AK1"); k == nil {
			t.Errorf("%s misses the keypair the aborted write deleted", name)
		}
		if n, _ := r.CountSessionsInStatus(api.SessionPending); n != 0 {
			t.Errorf("%s counts %d PENDING", name, n)
		}
		r.Abort()
	}
}

// A write may change a table while it goes through it: the iteration is
// of the table as it was when it began.
func TestAWriteMayChangeTheTableItIsGoingThrough(t *testing.T) {
	st, index := treeStore(t)
	write(t, st, index, func(tx *Txn, i uint64) error {
		for n := range 200 {
			if err := tx.PutSession(i, testSession(fmt.Sprintf("s-%03d", n), "AK0", api.SessionPending)); err != nil {
				return err
			}
		}
		return nil
	})
	seen := 0
	write(t, st, index, func(tx *Txn, i uint64) error {
		// A write before the iteration: the nodes it copied are the
		// transaction's own, written in place by the next writes.
		if err := tx.PutSession(i, testSession("s-000", "AK1", api.SessionPending)); err != nil {
			return err
		}
		return tx.EachSession(nil, func(s *Session) error {
			seen++
			c := s.Copy()
			c.Status = api.SessionCancelled
			if err := tx.PutSession(i, c); err != nil {
				return err
			}
			return tx.PutSession(i, testSession(s.ID+"-next", "AK1", api.SessionPending))
		})
	})
	if seen != 200 {
		t.Errorf("went through %d sessions, want the 200 there were", seen)
	}
	r := st.Read()
	if n, _ := r.CountSessionsInStatus(api.SessionCancelled); n != 200 {
		t.Errorf("%d CANCELLED, want 200", n)
	}
	if got, _ := r.SessionsInStatus(api.SessionPending); len(got) != 200 || !strings.HasSuffix(got[0].ID, "-next") {
		t.Errorf("%d PENDING, want the 200 new ones", len(got))
	}
}

// A session watch fires for a write of its own session, not another's; at
// once when its session changed between the read and the wait; for a
// removal and a restore; and a session nobody waits on any more keeps no
// channel.
func TestASessionWatchFiresOnlyForItsOwnSession(t *testing.T) {
	st, index := treeStore(t)
	write(t, st, index, func(tx *Txn, i uint64) error {
		for _, id := range []string{"s1", "s2"} {
			if err := tx.PutSession(i, testSession(id, "AK0", api.SessionTerminated)); err != nil {
				return err
			}
		}
		return nil
	})
	r := st.Read()
	s1, w1, err := r.SessionWatch("s1")
	if err != nil || s1 == nil {
		t.Fatal(s1, err)
	}
	_, w2, _ := r.SessionWatch("s2")
	_, wNone, _ := r.SessionWatch("s3")
	fired := func(w Watch, within time.Duration) bool {
		ctx, cancel := context.WithTimeout(context.Background(), within)
		defer cancel()
		return w.Wait(ctx) == nil
	}
	waited := make(chan bool)
	go func() { waited <- fired(w2, 10*time.Second) }()
	// s2's waiter is registered before the write that changes s2.
	deadline := time.Now().Add(10 * time.Second)
	for waiting(st, "s2") == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	write(t, st, index, func(tx *Txn, i uint64) error {
		c, _ := tx.Session("s2")
		c = c.Copy()
		c.StatusInfo = "seen"
		return tx.PutSession(i, c)
	})
	if !<-waited {
		t.Error("s2's watch did not fire for a write of s2")
	}
	if fired(w1, 50*time.Millisecond) {
		t.Error("s1's watch fired for a write of s2")
	}
	if fired(wNone, 50*time.Millisecond) {
		t.Error("the watch of a session that does not exist fired for a write of s2")
	}
	// Changed between the read and the wait: at once.
	write(t, st, index, func(tx *Txn, i uint64) error {
		s, _ := tx.Session("s1")
		return tx.CollectSession(s, testBase.Add(time.Hour))
	})
	if !fired(w1, time.Second) {
		t.Error("s1's watch, read before s1 was collected, did not fire")
	}
	if _, w, _ := st.Read().SessionWatch("s1"); fired(w, 50*time.Millisecond) {
		t.Error("a watch on a collected session fired with nothing changed")
	}
	// A created session wakes who waited for it to exist.
	waited = make(chan bool)
	go func() { waited <- fired(wNone, 10*time.Second) }()
	for waiting(st, "s3") == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	write(t, st, index, func(tx *Txn, i uint64) error {
		return tx.PutSession(i, testSession("s3", "AK0", api.SessionPending))
	})
	if !<-waited {
		t.Error("s3's watch did not fire when s3 was created")
	}
	// A restore wakes everyone.
	_, w3, _ := st.Read().SessionWatch("s3")
	waited = make(chan bool)
	go func() { waited <- fired(w3, 10*time.Second) }()
	for waiting(st, "s3") == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	fresh, tx := Reset()
	tx.Commit()
	st.Swap(fresh)
	if !<-waited {
		t.Error("a restore did not wake the watch")
	}
	st.watches.mu.Lock()
	left := len(st.watches.m)
	st.watches.mu.Unlock()
	if left != 0 {
		t.Errorf("%d sessions keep a watch channel with nobody waiting", left)
	}
}

func waiting(st *Store, id string) int {
	st.watches.mu.Lock()
	defer st.watches.mu.Unlock()
	if x := st.watches.m[id]; x != nil {
		return x.n
	}
	return 0
}

// Keypairs page by access key from the cursor, the first key of the next
// page.
func TestKeypairsPageByAccessKey(t *testing.T) {
	st, index := treeStore(t)
	write(t, st, index, func(tx *Txn, i uint64) error {
		for n := range 25 {
			if err := tx.PutKeypair(i, &Keypair{AccessKey: fmt.Sprintf("AKX%02d", 24-n), User: "ann@x.io"}); err != nil {
				return err
			}
		}
		return nil
	})
	r := st.Read()
	var got []string
	cursor := ""
	for range 100 {
		page, next, err := r.Keypairs(cursor, 4, func(k *Keypair) bool { return strings.HasPrefix(k.AccessKey, "AKX") })
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ids(page)...)
		if cursor = next; cursor == "" {
			break
		}
	}
	var want []string
	for n := range 25 {
		want = append(want, fmt.Sprintf("AKX%02d", n))
	}
	if !slices.Equal(got, want) {
		t.Errorf("pages: %v", got)
	}
	ks, _ := r.KeypairsOfUser("ann@x.io")
	if len(ks) != 26 || !slices.IsSortedFunc(ks, func(x, y *Keypair) int { return cmp.Compare(x.AccessKey, y.AccessKey) }) {
		t.Errorf("ann's keypairs: %v", ids(ks))
	}
	if _, err := r.Keypair(""); err != nil || errors.Is(err, errNotFound) {
		t.Errorf("a lookup of no key: %v", err)
	}
}
