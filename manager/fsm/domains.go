package fsm

import (
	"github.com/berth-cluster/berth/manager/apierr"
	"github.com/berth-cluster/berth/manager/state"
)

// DomainCreate creates a domain.
type DomainCreate struct {
	Domain state.Domain `json:"domain"`
}

// MsgType implements Command.
func (DomainCreate) MsgType() MsgType { return MsgDomainCreate }

func applyDomainCreate(tx *state.Txn, index uint64, c *DomainCreate) (any, error) {
	old, err := tx.Domain(c.Domain.Name)
	if err != nil {
		return nil, err
	}
	if old != nil {
		return nil, apierr.Field(apierr.Conflict, "name", "domain "+c.Domain.Name+" already exists")
	}
	d := c.Domain
	if err := tx.PutDomain(index, &d); err != nil {
		return nil, err
	}
	return &d, nil
}
