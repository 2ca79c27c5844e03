package folderfs

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func newTestStore(t *testing.T) (*Store, string) {
	t.Helper()
	host := t.TempDir()
	s := New(map[string]string{"h": host}, time.Hour, 0, nil)
	if err := s.Create("h", "f"); err != nil {
		t.Fatal(err)
	}
	return s, filepath.Join(host, "f")
}

func ptr(v int64) *int64 { return &v }

// gatedReader yields n bytes, the first half at once, the rest once the
// gate opens.
type gatedReader struct {
	n, sent int64
	gate    chan struct{}
}

func (g *gatedReader) Read(p []byte) (int, error) {
	if g.sent >= g.n {
		return 0, io.EOF
	}
	if g.sent >= g.n/2 {
		<-g.gate
	}
	k := min(int64(len(p)), g.n-g.sent)
	if g.sent < g.n/2 {
		k = min(k, g.n/2-g.sent)
	}
	for i := range p[:k] {
		p[i] = 'x'
	}
	g.sent += k
	return int(k), nil
}

// Room is reserved before a byte is written: while one upload holds its
// room, a second that would not fit beside it is refused at once, whatever
// the folder's measured usage says; once the first ends its file counts.
func TestUploadsReserveRoomUnderTheQuota(t *testing.T) {
	s, dir := newTestStore(t)
	quota := ptr(1000)
	first := &gatedReader{n: 900, gate: make(chan struct{})}
	var wg sync.WaitGroup
	var firstErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, firstErr = s.Write("h", "f", "a.bin", first, 900, quota)
	}()
	waitFor(t, func() bool {
		ents, _ := os.ReadDir(dir)
		return len(ents) == 1 && strings.HasPrefix(ents[0].Name(), uploadPrefix)
	})
	// The half-written temporary file is counted once, by the reservation.
	if u, err := s.Usage("h", "f"); err != nil || u != 0 {
		t.Errorf("usage during the upload %d, %v; want 0 (its room is reserved instead)", u, err)
	}
	_, err := s.Write("h", "f", "b.bin", strings.NewReader(strings.Repeat("y", 200)), 200, quota)
	var qe *QuotaError
	if !errors.As(err, &qe) || !errors.Is(err, ErrTooLarge) {
		t.Fatalf("second upload beside a reservation: %v, want a QuotaError", err)
	}
	if qe.Reserved != 900 || qe.Used != 0 || qe.Size != 200 {
		t.Errorf("quota error %+v", qe)
	}
	for _, want := range []string{"uploads in progress hold 900", "100 bytes are free", "the upload has 200"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not say %q", err, want)
		}
	}
	if n, err := s.Write("h", "f", "c.bin", strings.NewReader(strings.Repeat("z", 100)), 100, quota); err != nil || n != 100 {
		t.Fatalf("an upload that fits beside the reservation: %d, %v", n, err)
	}
	close(first.gate)
	wg.Wait()
	if firstErr != nil {
		t.Fatal(firstErr)
	}
	if u, err := s.Usage("h", "f"); err != nil || u != 1000 {
		t.Fatalf("usage %d, %v; want 1000", u, err)
	}
	if len(s.quota.reserved) != 0 || len(s.quota.inflight) != 0 {
		t.Errorf("room still held after every upload ended: %v %v", s.quota.reserved, s.quota.inflight)
	}
}

// Replacing a file credits the bytes it frees: the same 900 bytes can be
// written again into a folder of 1000, but not beside themselves.
func TestReplacingAFileCreditsItsSize(t *testing.T) {
	s, _ := newTestStore(t)
	quota := ptr(1000)
	body := strings.Repeat("x", 900)
	for i := range 2 {
		if _, err := s.Write("h", "f", "a.bin", strings.NewReader(body), 900, quota); err != nil {
			t.Fatalf("write %d of a.bin: %v", i+1, err)
		}
	}
	_, err := s.Write("h", "f", "b.bin", strings.NewReader(body), 900, quota)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("a second 900-byte file: %v, want ErrTooLarge", err)
	}
	// A larger replacement needs only the difference.
	if _, err := s.Write("h", "f", "a.bin", strings.NewReader(strings.Repeat("x", 1000)), 1000, quota); err != nil {
		t.Fatalf("replacing with 1000 bytes: %v", err)
	}
}

// An upload that does not say its length holds all the room left and is
// cut off past it; nothing is kept.
func TestAnUploadOfUnknownLengthIsBoundedByTheRoomLeft(t *testing.T) {
	s, dir := newTestStore(t)
	quota := ptr(1000)
	if _, err := s.Write("h", "f", "a.bin", strings.NewReader(strings.Repeat("x", 600)), -1, quota); err != nil {
		t.Fatal(err)
	}
	_, err := s.Write("h", "f", "b.bin", strings.NewReader(strings.Repeat("x", 401)), -1, quota)
	var qe *QuotaError
	if !errors.As(err, &qe) || qe.Size != -1 || qe.Used != 600 {
		t.Fatalf("401 bytes of unannounced length into 400 free: %v", err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("the folder holds %d entries after a refused upload, want only a.bin", len(ents))
	}
	if _, err := s.Write("h", "f", "b.bin", strings.NewReader(strings.Repeat("x", 400)), -1, quota); err != nil {
		t.Fatalf("400 bytes into 400 free: %v", err)
	}
}

// A failed body (the client went away, or sent other bytes than it signed)
// leaves no file and holds no room.
func TestAFailedBodyLeavesNothing(t *testing.T) {
	s, dir := newTestStore(t)
	boom := errors.New("client went away")
	_, err := s.Write("h", "f", "d/a.bin", io.MultiReader(strings.NewReader("partial"), errReader{boom}), 100, ptr(1000))
	if !errors.Is(err, boom) {
		t.Fatalf("write: %v, want the body's error", err)
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "d"))
	if len(ents) != 0 {
		t.Errorf("a failed upload left %v", ents)
	}
	if len(s.quota.reserved) != 0 {
		t.Errorf("a failed upload still holds %v", s.quota.reserved)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// A temporary-looking file nobody is writing (left over, or made by a
// session to hide its bytes) counts like any other.
func TestStrayUploadNamesStillCount(t *testing.T) {
	s, dir := newTestStore(t)
	if err := os.WriteFile(filepath.Join(dir, uploadPrefix+"hide"), make([]byte, 700), 0o644); err != nil {
		t.Fatal(err)
	}
	if u, _ := s.Usage("h", "f"); u != 700 {
		t.Fatalf("usage %d, want 700", u)
	}
}

// Open refuses a named pipe, a socket and a device without opening it:
// opening a pipe for reading would wait for a writer.
func TestOpenRefusesSpecialFilesAtOnce(t *testing.T) {
	s, dir := newTestStore(t)
	if err := syscall.Mkfifo(filepath.Join(dir, "pipe"), 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("pipe", filepath.Join(dir, "to-pipe")); err != nil {
		t.Fatal(err)
	}
	names := map[string]string{"pipe": "named pipe", "to-pipe": "named pipe"}
	if os.Geteuid() == 0 {
		if err := syscall.Mknod(filepath.Join(dir, "null"), syscall.S_IFCHR|0o666, 0x103); err == nil {
			names["null"] = "character device"
		}
	}
	for name, kind := range names {
		done := make(chan error, 1)
		go func() {
			f, err := s.Open("h", "f", name)
			if err == nil {
				f.Close()
			}
			done <- err
		}()
		select {
		case err := <-done:
			if !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), kind) {
				t.Errorf("open %s: %v, want ErrNotRegular naming a %s", name, err, kind)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("open %s blocked", name)
		}
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
