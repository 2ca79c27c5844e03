package httpapi_test

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/api"
)

// Attacks on the storage folders' files API: special files that would hold
// a thread per download, and uploads racing past the size limit.

// osThreads is this process's thread count.
func osThreads(t *testing.T) int {
	t.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Threads:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no Threads: line in /proc/self/status")
	return 0
}

// A session can make a named pipe in a folder it mounts. Downloading it
// must answer 400 at once: opening a pipe for reading waits for a writer,
// and each such download held an OS thread forever (150 requests, 157
// threads). 100 concurrent downloads of a FIFO (and of a symlink to it)
// each answer 400 within seconds, and neither goroutines nor threads are
// left behind.
func TestDownloadingAFIFOAnswers400AtOnce(t *testing.T) {
	t.Parallel()
	e := newFolderEnv(t)
	tok, _ := e.user("ann")
	f := e.createFolder(tok, map[string]any{"name": "box", "host": "local"})
	dir := filepath.Join(e.host, f.ID)
	if err := syscall.Mkfifo(filepath.Join(dir, "pipe"), 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("pipe", filepath.Join(dir, "to-pipe")); err != nil {
		t.Fatal(err)
	}
	cl := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 20 * time.Second}
	get := func(name string) (int, string, error) {
		req := newRequest(t, http.MethodGet, e.url("/v1/folders/"+f.ID+"/files/"+name), nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := cl.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		return resp.StatusCode, b.String(), nil
	}
	if code, body, err := get("pipe"); err != nil || code != http.StatusBadRequest || !strings.Contains(body, "named pipe (FIFO)") {
		t.Fatalf("download of a FIFO: %d %s %v", code, body, err)
	}
	goroutines, threads := runtime.NumGoroutine(), osThreads(t)
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := []string{"pipe", "to-pipe"}[i%2]
			code, body, err := get(name)
			if err == nil && code != http.StatusBadRequest {
				err = fmt.Errorf("status %d: %s", code, body)
			}
			if err != nil {
				errs <- fmt.Errorf("download %s: %w", name, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("100 downloads of a FIFO took %s", took)
	}
	testcluster.Eventually(t, 10*time.Second, func() error {
		if n := runtime.NumGoroutine(); n > goroutines+10 {
			return fmt.Errorf("%d goroutines, %d before the downloads", n, goroutines)
		}
		return nil
	})
	// Go keeps idle threads, so a few may have been added for the burst;
	// a blocked open would add one per download.
	n := osThreads(t)
	t.Logf("threads before the downloads %d, after %d", threads, n)
	if n > threads+20 {
		t.Errorf("%d threads after 100 downloads, %d before: downloads are holding threads", n, threads)
	}
}

// withFolderLimit sets the default policy's max_vfolder_size.
func withFolderLimit(t *testing.T, e *folderEnv, bytes int64) {
	t.Helper()
	wantStatus(t, e.do(http.MethodPatch, "/v1/resource-policies/default", e.admin, map[string]any{"max_vfolder_size": bytes}), http.StatusOK)
}

// Two 900 kB uploads at once into a folder limited to 1 MiB: room is
// reserved before a body is read, so exactly one lands (201) and the other
// is refused (413) while the first is still streaming; before, each was
// checked against the folder as it was and both landed.
func TestParallelUploadsCannotTogetherPassTheQuota(t *testing.T) {
	t.Parallel()
	e := newFolderEnv(t)
	withFolderLimit(t, e, 1<<20)
	tok, _ := e.user("ann")
	f := e.createFolder(tok, map[string]any{"name": "box", "host": "local"})
	dir := filepath.Join(e.host, f.ID)
	const size = 900_000
	first := dialRaw(t, e.s, http.MethodPut, "/v1/folders/"+f.ID+"/files/first.bin",
		http.Header{"Authorization": {"Bearer " + tok}, "Content-Length": {strconv.Itoa(size)}})
	if _, err := first.Write(make([]byte, size/2)); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 10*time.Second, func() error {
		ents, _ := os.ReadDir(dir)
		if len(ents) == 0 {
			return fmt.Errorf("the first upload has not started writing")
		}
		return nil
	})
	second := e.put(tok, f.ID, "second.bin", string(make([]byte, size)))
	if _, err := first.Write(make([]byte, size-size/2)); err != nil {
		t.Fatal(err)
	}
	got := []int{first.answer(t, 10*time.Second).Status, second.Status}
	if got[0] != http.StatusCreated || got[1] != http.StatusRequestEntityTooLarge {
		t.Fatalf("statuses %v, want [201 413]", got)
	}
	p := wantProblem(t, second, http.StatusRequestEntityTooLarge, api.ProblemTooLarge)
	wantDetail(t, p, "uploads in progress hold 900000", "nothing was kept")
	var l api.List[api.FileEntry]
	e.do(http.MethodGet, "/v1/folders/"+f.ID+"/files", tok, nil).JSON(t, &l)
	if len(l.Items) != 1 || l.Items[0].Name != "first.bin" || l.Items[0].Size != size {
		t.Errorf("the folder lists %+v, want first.bin alone", l.Items)
	}
}

// Replacing a file needs room only for what it adds: 900 kB written twice
// to the same name in a 1 MiB folder is fine, a second 900 kB file is not.
func TestReplacingAFileCreditsItsOldSize(t *testing.T) {
	t.Parallel()
	e := newFolderEnv(t)
	withFolderLimit(t, e, 1<<20)
	tok, _ := e.user("ann")
	f := e.createFolder(tok, map[string]any{"name": "box", "host": "local"})
	body := string(make([]byte, 900_000))
	wantStatus(t, e.put(tok, f.ID, "a.bin", body), http.StatusCreated)
	wantStatus(t, e.put(tok, f.ID, "a.bin", body), http.StatusCreated)
	p := wantProblem(t, e.put(tok, f.ID, "b.bin", body), http.StatusRequestEntityTooLarge, api.ProblemTooLarge)
	wantDetail(t, p, "holds 900000 bytes of its max_vfolder_size 1048576")
}
