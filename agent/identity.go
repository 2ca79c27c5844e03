package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// identity is what the agent keeps in its state dir across restarts: the id
// the managers gave it and the secret it authenticates with.
type identity struct {
	ID     string `json:"id"`
	Secret string `json:"secret"`
}

const identityFile = "agent.json"

func loadIdentity(dir string) (identity, error) {
	var id identity
	b, err := os.ReadFile(filepath.Join(dir, identityFile))
	if errors.Is(err, fs.ErrNotExist) {
		return id, nil
	}
	if err != nil {
		return id, fmt.Errorf("read agent identity: %w", err)
	}
	if err := json.Unmarshal(b, &id); err != nil {
		return id, fmt.Errorf("agent identity %s is corrupt (remove it to register as a new agent): %w", filepath.Join(dir, identityFile), err)
	}
	return id, nil
}

// saveIdentity writes the identity atomically with mode 0600: a crash
// mid-write must not lose the secret the managers know this agent by.
func saveIdentity(dir string, id identity) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create state dir %s: %w", dir, err)
	}
	b, err := json.Marshal(id)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, identityFile+".*")
	if err != nil {
		return fmt.Errorf("save agent identity: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("save agent identity: %w", err)
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("save agent identity: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("save agent identity: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save agent identity: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, identityFile)); err != nil {
		return fmt.Errorf("save agent identity: %w", err)
	}
	return nil
}
