package server_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/berth-cluster/berth/manager/testcluster"
)

// Disaster recovery into a new cluster: a snapshot of one cluster restored
// into a fresh 3-manager cluster brings the saved records, keeps the new
// cluster's own managers (followers still forward writes to the leader),
// and the saved users' credentials are the ones that work afterwards.
func TestSnapshotRestoresIntoAFreshCluster(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	old := testcluster.StartDev(t)
	oldAdmin := adminClient(t, old, old.Servers[0])
	if err := createUser(ctx, oldAdmin, 7); err != nil {
		t.Fatal(err)
	}
	var snap bytes.Buffer
	info, err := oldAdmin.SaveSnapshot(ctx, &snap)
	if err != nil {
		t.Fatalf("save: %v", err)
	}
	if info.Index == 0 || info.Bytes != int64(snap.Len()) {
		t.Fatalf("snapshot info %+v for %d bytes", info, snap.Len())
	}

	fresh := testcluster.Start(t, 3)
	follower := fresh.Follower()
	if err := adminClient(t, fresh, follower).RestoreSnapshot(ctx, &snap); err != nil {
		t.Fatalf("restore through follower %s: %v", follower.ID(), err)
	}
	for _, s := range fresh.Servers {
		testcluster.Eventually(t, 20*time.Second, func() error {
			tx := s.State().Read()
			if u, err := tx.User("user7@example.com"); err != nil || u == nil {
				return fmt.Errorf("%s lacks the restored user (err %v)", s.ID(), err)
			}
			for _, peer := range fresh.Servers {
				m, err := tx.Member(peer.ID())
				if err != nil || m == nil || m.HTTPAddr != peer.HTTPAddr() {
					return fmt.Errorf("%s records member %s as %+v, want %s", s.ID(), peer.ID(), m, peer.HTTPAddr())
				}
			}
			ms, _ := tx.Members()
			if len(ms) != len(fresh.Servers) {
				return fmt.Errorf("%s records %d members, want %d", s.ID(), len(ms), len(fresh.Servers))
			}
			return nil
		})
	}
	// Logging in again (the restored users, tokens and keypairs are the
	// saved cluster's) and writing through a follower: forwarding works.
	if err := createUser(ctx, adminClient(t, fresh, fresh.Follower()), 8); err != nil {
		t.Fatalf("write through a follower after the restore: %v", err)
	}
	waitHasUsers(t, fresh.Leader(), []string{"user7@example.com", "user8@example.com"})
}
