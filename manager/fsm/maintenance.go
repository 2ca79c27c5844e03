package fsm

import "github.com/berth-cluster/berth/manager/state"

// UsageRecalculate repairs the derived occupancy (per keypair, per agent)
// and the usage rows (what the sessions still held contributed; no
// negative value anywhere) from the session records:
// POST /v1/maintenance/recalculate-usage, and
// the leader's periodic check when it finds drift. Every manager repairs
// its own copy, so a drift only one of them had is mended too; the answer
// is the proposer's.
type UsageRecalculate struct{}

// MsgType implements Command.
func (UsageRecalculate) MsgType() MsgType { return MsgUsageRecalculate }

// UsageRecalculated is what applying a UsageRecalculate found and fixed.
type UsageRecalculated struct {
	Agents   int `json:"agents"`
	Keypairs int `json:"keypairs"`
	// UsageDays is how many usage rows were checked.
	UsageDays int                `json:"usage_days"`
	Drift     []state.UsageDrift `json:"drift"`
}

func applyUsageRecalculate(tx *state.Txn, _ uint64, _ *UsageRecalculate) (any, error) {
	agents, err := tx.Agents()
	if err != nil {
		return nil, err
	}
	n, err := tx.CountKeypairs()
	if err != nil {
		return nil, err
	}
	drift, err := tx.RepairUsage()
	if err != nil {
		return nil, err
	}
	days, rows, err := tx.RepairUsageDays()
	if err != nil {
		return nil, err
	}
	return &UsageRecalculated{Agents: len(agents), Keypairs: n, UsageDays: rows, Drift: append(drift, days...)}, nil
}
