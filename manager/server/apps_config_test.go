package server

import (
	"strings"
	"testing"
)

func TestAppsFlagsAreChecked(t *testing.T) {
	for _, c := range []struct {
		addr, domain, want string
	}{
		{"", "", ""},
		{":8443", "", ""},
		{":8443", "apps.example.com", ""},
		{":8443", "apps.example.com:443", ""},
		{":8443", "localhost", ""},
		{"", "apps.example.com", "-apps-domain needs -apps-addr"},
		{":8443", "https://apps.example.com", "must be a DNS name"},
		{":8443", "apps.example.com/x", "must be a DNS name"},
		{":8443", "*.apps.example.com", "must be a DNS name"},
		{":8443", "apps.example.com:https", "must be a DNS name"},
	} {
		cfg := Config{AppsAddr: c.addr, AppsDomain: c.domain}
		got := strings.Join(cfg.appsProblems(), "; ")
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("-apps-addr %q -apps-domain %q: %q, want %q", c.addr, c.domain, got, c.want)
		}
	}
}
