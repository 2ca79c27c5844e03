package state

import (
	"time"

	"github.com/hashicorp/go-memdb"
)

// Registry is a container registry the agents pull from with its own
// credentials and TLS settings. Password is sealed (manager/secrets) by the
// handler that wrote it, with the key KeyID names: the clear text is never in
// the log, a snapshot or a backup.
type Registry struct {
	Name string `json:"name"`
	URL  string `json:"url"`
	// Host is the key references are matched on (imageref.HostKey of the
	// URL's host): one registry per host.
	Host         string    `json:"host"`
	Username     string    `json:"username,omitempty"`
	Password     []byte    `json:"password,omitempty"`
	KeyID        string    `json:"key_id,omitempty"`
	InsecureHTTP bool      `json:"insecure_http,omitempty"`
	CAPEM        string    `json:"ca_pem,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
	ModifiedAt   time.Time `json:"modified_at"`
	Meta
}

func (r *Registry) id() string { return r.Name }

const tableRegistries = "registries"

func registriesTable() Table {
	return Table{Name: tableRegistries, ID: 60, New: func() any { return new(Registry) },
		schema: &memdb.TableSchema{Indexes: map[string]*memdb.IndexSchema{
			"id":   stringIndex("id", "Name", true, false),
			"host": stringIndex("host", "Host", true, false),
		}}}
}

// Registry returns the named registry or nil.
func (t *Txn) Registry(name string) (*Registry, error) {
	return first[Registry](t, tableRegistries, "id", name)
}

// RegistryForHost returns the registry serving host (an imageref.HostKey),
// or nil.
func (t *Txn) RegistryForHost(host string) (*Registry, error) {
	return first[Registry](t, tableRegistries, "host", host)
}

// Registries lists every registry by name.
func (t *Txn) Registries() ([]*Registry, error) {
	return list[Registry](t, tableRegistries, "id")
}

// PutRegistry inserts or replaces a registry at the Raft index.
func (t *Txn) PutRegistry(index uint64, r *Registry) error { return t.put(tableRegistries, index, r) }

// DeleteRegistry removes a registry.
func (t *Txn) DeleteRegistry(r *Registry) error { return t.remove(tableRegistries, r) }
