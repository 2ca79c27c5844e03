package state

import (
	"github.com/hashicorp/go-memdb"
)

// Setting is a cluster-wide value decided once (the cluster secret, the
// bootstrap marker).
type Setting struct {
	Key   string `json:"key"`
	Value string `json:"value"`
	Meta
}

func (s *Setting) id() string { return s.Key }

// Setting keys.
const (
	// SettingClusterSecret authenticates what managers tell each other over
	// HTTP (the client address of a forwarded request).
	SettingClusterSecret = "cluster-secret"
	// SettingBootstrapped marks that the first-start objects were created.
	SettingBootstrapped = "bootstrapped"
)

const tableSettings = "settings"

func settingsTable() Table {
	return Table{Name: tableSettings, ID: 8, New: func() any { return new(Setting) },
		schema: &memdb.TableSchema{Indexes: map[string]*memdb.IndexSchema{
			"id": stringIndex("id", "Key", true, false),
		}}}
}

// Setting returns the setting's value, "" when unset.
func (t *Txn) Setting(key string) (string, error) {
	s, err := first[Setting](t, tableSettings, "id", key)
	if err != nil || s == nil {
		return "", err
	}
	return s.Value, nil
}

// PutSetting sets a value at the Raft index.
func (t *Txn) PutSetting(index uint64, key, value string) error {
	old, err := first[Setting](t, tableSettings, "id", key)
	if err != nil {
		return err
	}
	s := &Setting{Key: key, Value: value}
	if old != nil {
		s.Meta = old.Meta
	}
	return t.put(tableSettings, index, s)
}
