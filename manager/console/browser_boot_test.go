package console_test

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/berth-cluster/berth/manager/console"
)

// flakyFiles drops the connections of the requests for path during the
// first loads of the page, as resets on a busy network do, and serves the
// console otherwise. (Chromium itself sends a request again when its
// connection closes before an answer, so a single drop fails nothing.)
type flakyFiles struct {
	path string
	next http.Handler

	mu sync.Mutex
	// failingLoads is how many loads of the page fail (every request for
	// path while they last; negative: all of them).
	failingLoads int
	dropped      int
	pages        int // answers of the page itself
}

func (f *flakyFiles) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	if r.URL.Path == "/" {
		f.pages++
	}
	drop := r.URL.Path == f.path && (f.pages <= f.failingLoads || f.failingLoads < 0)
	if drop {
		f.dropped++
	}
	f.mu.Unlock()
	if drop {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	f.next.ServeHTTP(w, r)
}

// A module file whose download fails fails the browser's whole module
// graph: the page reloads itself and comes up; when the file keeps failing
// it says so rather than "Loading…" for ever.
func TestAConsoleFileThatFailsToDownloadIsFetchedAgainOrSaidSo(t *testing.T) {
	chromiumPath(t)
	for _, tc := range []struct {
		name         string
		failingLoads int
		want         chromedp.Action[chromedp.Void]
		// The loads of the page: a loaded machine may fail a download
		// of its own (Chromium gives up on a slow module), which the
		// page answers with its second reload, still within the limit.
		minPages, maxPages int
	}{
		{"the first load fails: the page reloads and comes up", 1, chromedp.WaitVisible(chromedp.CSS("#login-email")), 2, 3},
		{"every load fails: two reloads, then the page says what happened", -1, waitText("#app", "could not download its files"), 3, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := &flakyFiles{path: "/assets/pages/statistics.js", next: console.Handler(), failingLoads: tc.failingLoads}
			srv := httptest.NewServer(files)
			t.Cleanup(srv.Close)
			b := startBrowser(t, srv.URL)
			b.do("open the console", chromedp.Navigate(b.base+"/"), tc.want)
			files.mu.Lock()
			defer files.mu.Unlock()
			if files.dropped == 0 {
				t.Fatal("no download was dropped: the test proves nothing")
			}
			if files.pages < tc.minPages || files.pages > tc.maxPages {
				t.Errorf("the page was loaded %d times, want %d to %d", files.pages, tc.minPages, tc.maxPages)
			}
		})
	}
}
