package testenv

import "testing"

// Chromium returns the path of Debian's chromium, for tests that drive a
// browser (scripts/install-deps.sh installs it). Without it the test is
// skipped, except with CI=true.
func Chromium(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := lookPath(name); err == nil {
			return p
		}
	}
	unavailable(t, "a browser", []string{"chromium (Debian package chromium, scripts/install-deps.sh)"})
	return ""
}
