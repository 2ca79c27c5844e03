package fsm

import (
	"time"

	"github.com/berth-cluster/berth/manager/apierr"
	"github.com/berth-cluster/berth/manager/state"
)

// Registries are cluster objects: the handler checks the request, seals the
// password and derives the host; Apply decides what depends on the state
// (the name and the host are free, the registry exists) and stores the
// sealed bytes as they come.

// RegistryCreate adds a registry.
type RegistryCreate struct {
	Registry state.Registry `json:"registry"`
}

// MsgType implements Command.
func (RegistryCreate) MsgType() MsgType { return MsgRegistryCreate }

func applyRegistryCreate(tx *state.Txn, index uint64, c *RegistryCreate) (any, error) {
	r := c.Registry
	r.Meta = state.Meta{}
	old, err := tx.Registry(r.Name)
	if err != nil {
		return nil, err
	}
	if old != nil {
		return nil, apierr.Field(apierr.Conflict, "name", "a registry named "+r.Name+" already exists")
	}
	if err := hostFree(tx, r.Host, r.Name); err != nil {
		return nil, err
	}
	if err := tx.PutRegistry(index, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// hostFree refuses a host another registry serves: a reference's host must
// name one registry, or which credentials it is pulled with would be a
// matter of chance.
func hostFree(tx *state.Txn, host, name string) error {
	other, err := tx.RegistryForHost(host)
	if err != nil {
		return err
	}
	if other != nil && other.Name != name {
		return apierr.Field(apierr.Conflict, "url", "registry "+other.Name+" already serves host "+host+"; change or remove it instead")
	}
	return nil
}

// RegistryUpdate changes the fields that are set, against the registry as
// it is when applied. Password (sealed) and KeyID go together; an empty
// non-nil Password removes the stored one.
type RegistryUpdate struct {
	Name         string    `json:"name"`
	ModifiedAt   time.Time `json:"modified_at"`
	URL          *string   `json:"url,omitempty"`
	Host         *string   `json:"host,omitempty"`
	Username     *string   `json:"username,omitempty"`
	Password     *[]byte   `json:"password,omitempty"`
	KeyID        *string   `json:"key_id,omitempty"`
	InsecureHTTP *bool     `json:"insecure_http,omitempty"`
	CAPEM        *string   `json:"ca_pem,omitempty"`
}

// MsgType implements Command.
func (RegistryUpdate) MsgType() MsgType { return MsgRegistryUpdate }

func applyRegistryUpdate(tx *state.Txn, index uint64, c *RegistryUpdate) (any, error) {
	old, err := tx.Registry(c.Name)
	if err != nil {
		return nil, err
	}
	if old == nil {
		return nil, apierr.New(apierr.NotFound, "no registry named %s", c.Name)
	}
	r := *old
	setPresent(&r.URL, c.URL)
	setPresent(&r.Host, c.Host)
	setPresent(&r.Username, c.Username)
	setPresent(&r.Password, c.Password)
	setPresent(&r.KeyID, c.KeyID)
	setPresent(&r.InsecureHTTP, c.InsecureHTTP)
	setPresent(&r.CAPEM, c.CAPEM)
	if len(r.Password) == 0 {
		r.Password, r.KeyID = nil, ""
	}
	r.ModifiedAt = c.ModifiedAt
	if err := hostFree(tx, r.Host, r.Name); err != nil {
		return nil, err
	}
	if err := tx.PutRegistry(index, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// RegistryDelete removes a registry. Sessions already placed keep the
// image reference; their pulls go anonymous from then on.
type RegistryDelete struct {
	Name string `json:"name"`
}

// MsgType implements Command.
func (RegistryDelete) MsgType() MsgType { return MsgRegistryDelete }

func applyRegistryDelete(tx *state.Txn, _ uint64, c *RegistryDelete) (any, error) {
	r, err := tx.Registry(c.Name)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, apierr.New(apierr.NotFound, "no registry named %s", c.Name)
	}
	if err := tx.DeleteRegistry(r); err != nil {
		return nil, err
	}
	return r, nil
}
