package server

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/berth-cluster/berth/manager/auth"
	"github.com/berth-cluster/berth/manager/fsm"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
)

// tokenSweepEvery is how often the leader removes expired login tokens.
const tokenSweepEvery = time.Minute

// defaultKeypairTouchEvery is how often the leader records keypairs' last use.
const defaultKeypairTouchEvery = 15 * time.Second

// watchLeadership runs the leader's duties while this node leads.
func (s *Server) watchLeadership() {
	var stop context.CancelFunc
	done := make(chan struct{})
	close(done)
	for {
		select {
		case <-s.ctx.Done():
			if stop != nil {
				stop()
				<-done
			}
			return
		case isLeader := <-s.node.LeaderCh():
			if stop != nil {
				stop()
				<-done
				stop = nil
			}
			if !isLeader {
				s.log.Info("lost leadership")
				continue
			}
			s.log.Info("gained leadership")
			var ctx context.Context
			ctx, stop = context.WithCancel(s.ctx)
			done = make(chan struct{})
			go func() {
				defer close(done)
				s.lead(ctx)
			}()
		}
	}
}

func (s *Server) lead(ctx context.Context) {
	// Agents' clocks start before anything else, so heartbeats that reach
	// this leader while it settles in are kept.
	s.api.StartAgentClocks(s.cfg.Now().UTC())
	defer s.api.StopAgentClocks()
	defer s.api.SetLeaderReady(false)
	if err := s.establish(ctx); err != nil {
		if ctx.Err() == nil {
			s.log.Error("leader setup failed; will retry on the next leadership", "err", err)
		}
		return
	}
	defer s.startIdleLoop(ctx)()        // idle.go
	defer s.startScheduler(ctx)()       // scheduler.go
	defer s.startFolderUsageLoop(ctx)() // folders.go
	defer s.startUsageChecks(ctx)()     // agents.go
	sweep := time.NewTicker(tokenSweepEvery)
	defer sweep.Stop()
	every := s.cfg.KeypairTouchEvery
	if every <= 0 {
		every = defaultKeypairTouchEvery
	}
	touch := time.NewTicker(every)
	defer touch.Stop()
	agents := time.NewTicker(s.agentCheckEvery())
	defer agents.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-sweep.C:
			if _, err := s.propose(ctx, fsm.TokensExpire{Now: s.cfg.Now().UTC()}); err != nil && ctx.Err() == nil {
				s.log.Warn("expire login tokens", "err", err)
			}
		case <-touch.C:
			s.flushKeypairUses(ctx)
		case <-agents.C:
			s.markLostAgents(ctx)
		}
	}
}

// flushKeypairUses writes the keypairs' last use, gathered in memory, in one
// entry, so a signed request costs no Raft round trip of its own.
func (s *Server) flushKeypairUses(ctx context.Context) {
	uses := s.api.DrainKeypairUses()
	if len(uses) == 0 {
		return
	}
	if _, err := s.propose(ctx, fsm.KeypairsTouch{LastUsed: uses}); err != nil && ctx.Err() == nil {
		s.log.Warn("record keypair use", "keypairs", len(uses), "err", err)
	}
}

// establish brings the state up to date with this leadership: every entry of
// earlier terms applied, members recorded, first-start objects created.
func (s *Server) establish(ctx context.Context) error {
	if err := s.node.Barrier(ctx); err != nil {
		return err
	}
	// Only now does this manager's state hold every write a previous
	// leader acknowledged: reads answered before could miss one.
	s.api.SetLeaderReady(true)
	if err := s.recordMembers(ctx); err != nil {
		return err
	}
	return s.bootstrapObjects(ctx)
}

// recordMembers makes sure this manager and the statically configured peers
// have their HTTP addresses in the replicated state, so followers can
// forward to whichever of them leads.
func (s *Server) recordMembers(ctx context.Context) error {
	s.mu.Lock()
	want := append([]Peer(nil), s.peers...)
	s.mu.Unlock()
	self := Peer{ID: s.cfg.NodeID, RaftAddr: s.node.Addr(), HTTPAddr: s.httpAddr}
	found := false
	for i, p := range want {
		if p.ID == self.ID {
			want[i] = self
			found = true
		}
	}
	if !found {
		want = append(want, self)
	}
	for _, p := range want {
		have, err := s.fsm.State().Read().Member(p.ID)
		if err != nil {
			return err
		}
		if have != nil && have.HTTPAddr == p.HTTPAddr && have.RaftAddr == p.RaftAddr {
			continue
		}
		if _, err := s.propose(ctx, fsm.MemberPut{Member: state.Member{ID: p.ID, RaftAddr: p.RaftAddr, HTTPAddr: p.HTTPAddr}}); err != nil {
			return fmt.Errorf("record member %s: %w", p.ID, err)
		}
	}
	return nil
}

// bootstrapObjects creates, on the first start of an empty cluster, the
// default domain, group and policy and the superadmin.
func (s *Server) bootstrapObjects(ctx context.Context) error {
	done, err := s.fsm.State().Read().Setting(state.SettingBootstrapped)
	if err != nil || done != "" {
		return err
	}
	password := s.cfg.BootstrapAdminPassword
	generated := password == ""
	if generated {
		if password, err = auth.NewPassword(s.cfg.Rand); err != nil {
			return err
		}
	} else if p := auth.PasswordProblems(password); len(p) > 0 {
		return fmt.Errorf("BERTH_BOOTSTRAP_ADMIN_PASSWORD is not acceptable: %v", p)
	}
	cmd, err := s.bootstrapCommand(password)
	if err != nil {
		return err
	}
	credFile := filepath.Join(s.cfg.DataDir, "bootstrap-admin.txt")
	if generated {
		// Written before proposing: if the entry commits but this leader
		// dies before hearing so, the password must not be lost.
		text := fmt.Sprintf("email: %s\npassword: %s\naccess_key: %s\nsecret_key: %s\n",
			cmd.Admin.Email, password, cmd.AdminKeypair.AccessKey, cmd.AdminKeypair.SecretKey)
		if err := os.WriteFile(credFile, []byte(text), 0o600); err != nil {
			return fmt.Errorf("write %s: %w", credFile, err)
		}
	}
	v, err := s.propose(ctx, cmd)
	if err != nil {
		return fmt.Errorf("create first-start objects: %w", err)
	}
	if !v.(fsm.BootstrapResult).Created {
		if generated {
			_ = os.Remove(credFile)
		}
		return nil
	}
	s.log.Info("created first-start objects", "admin", cmd.Admin.Email)
	if generated {
		fmt.Fprintf(s.cfg.Out, "Berth superadmin created: email %s password %s (also in %s; shown only once)\n",
			cmd.Admin.Email, password, credFile)
	}
	return nil
}

func (s *Server) bootstrapCommand(password string) (fsm.Bootstrap, error) {
	now := s.cfg.Now().UTC()
	hash, err := auth.HashPassword(s.cfg.Rand, password)
	if err != nil {
		return fsm.Bootstrap{}, err
	}
	ak, err := auth.NewAccessKey(s.cfg.Rand)
	if err != nil {
		return fsm.Bootstrap{}, err
	}
	sk, err := auth.NewSecretKey(s.cfg.Rand)
	if err != nil {
		return fsm.Bootstrap{}, err
	}
	secret, err := auth.NewSecretKey(s.cfg.Rand)
	if err != nil {
		return fsm.Bootstrap{}, err
	}
	hosts := slices.Sorted(maps.Keys(s.cfg.FolderHosts))
	policy := state.ResourcePolicy{ResourcePolicy: api.ResourcePolicy{
		Name: "default", MaxContainersPerSession: 100, IdleTimeout: 0, MaxVfolderCount: 50,
		AllowedVfolderHosts: hosts, CreatedAt: now, ModifiedAt: now,
	}}
	return fsm.Bootstrap{
		Domain: state.Domain{Name: "default", Description: "Created at first start", IsActive: true, CreatedAt: now},
		Group:  state.Group{Domain: "default", Name: "default", Description: "Created at first start", IsActive: true, CreatedAt: now},
		Policy: policy,
		Admin: state.User{Email: s.cfg.BootstrapAdminEmail, Username: "admin", FullName: "Administrator", PasswordHash: hash,
			Role: api.RoleSuperadmin, Status: api.StatusActive, Domain: "default", Groups: []string{"default"},
			Description: "Created at first start", CreatedAt: now, ModifiedAt: now},
		AdminKeypair: state.Keypair{AccessKey: ak, SecretKey: sk, User: s.cfg.BootstrapAdminEmail, IsActive: true, IsAdmin: true,
			ResourcePolicy: "default", CreatedAt: now},
		ClusterSecret: secret,
	}, nil
}
