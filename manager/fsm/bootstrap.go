package fsm

import (
	"github.com/berth-cluster/berth/manager/state"
)

// Bootstrap creates the first-start objects of an empty cluster: the default
// domain, group and policy, the superadmin with a first keypair, and the
// cluster secret. Every leader proposes it when it takes office; only the
// first one applied does anything, so a failover during first start is safe.
type Bootstrap struct {
	Domain        state.Domain         `json:"domain"`
	Group         state.Group          `json:"group"`
	Policy        state.ResourcePolicy `json:"policy"`
	Admin         state.User           `json:"admin"`
	AdminKeypair  state.Keypair        `json:"admin_keypair"`
	ClusterSecret string               `json:"cluster_secret"`
}

// MsgType implements Command.
func (Bootstrap) MsgType() MsgType { return MsgBootstrap }

// BootstrapResult says whether this entry created the objects.
type BootstrapResult struct{ Created bool }

func applyBootstrap(tx *state.Txn, index uint64, c *Bootstrap) (any, error) {
	done, err := tx.Setting(state.SettingBootstrapped)
	if err != nil {
		return nil, err
	}
	if done != "" {
		return BootstrapResult{}, nil
	}
	puts := []func() error{
		func() error { return tx.PutDomain(index, &c.Domain) },
		func() error { return tx.PutGroup(index, &c.Group) },
		func() error { return tx.PutResourcePolicy(index, &c.Policy) },
		func() error { return tx.PutUser(index, &c.Admin) },
		func() error { return tx.PutKeypair(index, &c.AdminKeypair) },
		func() error { return tx.PutSetting(index, state.SettingClusterSecret, c.ClusterSecret) },
		func() error { return tx.PutSetting(index, state.SettingBootstrapped, "true") },
	}
	for _, put := range puts {
		if err := put(); err != nil {
			return nil, err
		}
	}
	return BootstrapResult{Created: true}, nil
}
