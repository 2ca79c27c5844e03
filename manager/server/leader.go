package server

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/berth-cluster/berth/manager/auth"
	"github.com/berth-cluster/berth/manager/fsm"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
)

// setup is what a leadership needs in the state before its duties start
// (leader.Config.Setup): this manager's and the configured peers' member
// records, and on the first start of an empty cluster the first-start
// objects. It runs after the leader's barrier, so it reads every entry of
// earlier terms.
func (s *Server) setup(ctx context.Context) error {
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
	self := Peer{ID: s.cfg.NodeID, RaftAddr: s.RaftAddr(), HTTPAddr: s.httpAddr}
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
		have, err := s.backend.Read().Member(p.ID)
		if err != nil {
			return err
		}
		if have != nil && have.HTTPAddr == p.HTTPAddr && have.RaftAddr == p.RaftAddr {
			continue
		}
		if err := s.propose(ctx, fsm.MemberPut{Member: state.Member{ID: p.ID, RaftAddr: p.RaftAddr, HTTPAddr: p.HTTPAddr}}); err != nil {
			return fmt.Errorf("record member %s: %w", p.ID, err)
		}
	}
	return nil
}

// bootstrapObjects creates, on the first start of an empty cluster, the
// default domain, group and policy and the superadmin.
func (s *Server) bootstrapObjects(ctx context.Context) error {
	done, err := s.backend.Read().Setting(state.SettingBootstrapped)
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
	resp, err := s.backend.Propose(ctx, cmd)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		return fmt.Errorf("create first-start objects: %w", err)
	}
	res, err := fsm.Value[fsm.BootstrapResult](resp)
	if err != nil {
		return err
	}
	if !res.Created {
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
	hash, err := s.cfg.PasswordCost.Hash(s.cfg.Rand, password)
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

// propose commits the leader's own setup writes.
func (s *Server) propose(ctx context.Context, c fsm.Command) error {
	resp, err := s.backend.Propose(ctx, c)
	if err != nil {
		return err
	}
	if resp.Err != nil {
		return fmt.Errorf("%T refused: %w", c, resp.Err)
	}
	return nil
}
