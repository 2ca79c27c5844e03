package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// credentials is what "berth login" saves.
type credentials struct {
	// Addr is the comma-separated list of managers logged in to.
	Addr      string    `json:"addr"`
	Token     string    `json:"token"`
	Email     string    `json:"email,omitempty"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// credentialsPath is $BERTH_CONFIG, else $XDG_CONFIG_HOME/berth/credentials.json,
// else ~/.config/berth/credentials.json.
func credentialsPath(getenv func(string) string) (string, error) {
	if p := getenv("BERTH_CONFIG"); p != "" {
		return p, nil
	}
	if d := getenv("XDG_CONFIG_HOME"); d != "" {
		return filepath.Join(d, "berth", "credentials.json"), nil
	}
	home := getenv("HOME")
	if home == "" {
		var err error
		if home, err = os.UserHomeDir(); err != nil {
			return "", fmt.Errorf("finding the credentials file: set BERTH_CONFIG or HOME: %w", err)
		}
	}
	return filepath.Join(home, ".config", "berth", "credentials.json"), nil
}

func readCredentials(path string) (credentials, error) {
	var c credentials
	b, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("reading credentials: %w", err)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("reading credentials %s: %w (run \"berth login\" again)", path, err)
	}
	return c, nil
}

// writeCredentials replaces the file at path atomically. The file is only
// ever readable by its owner (0600), and a directory it creates is 0700.
func writeCredentials(path string, c credentials) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding credentials: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating credentials directory: %w", err)
	}
	f, err := os.CreateTemp(dir, ".credentials-*.json")
	if err != nil {
		return fmt.Errorf("writing credentials: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op once renamed
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("writing credentials: %w", err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("writing credentials: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing credentials: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing credentials: %w", err)
	}
	return nil
}

// removeCredentials deletes the file; a file that is not there is fine.
func removeCredentials(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing credentials: %w", err)
	}
	return nil
}
