package server_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-cluster/berth/manager/auth"
	"github.com/berth-cluster/berth/manager/fsm"
	"github.com/berth-cluster/berth/manager/server"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/api"
)

// seedUsers writes n users through Raft, many proposals in flight so that
// Raft batches them; all share one password hash (hashing is not what these
// benchmarks measure).
func seedUsers(b *testing.B, s *server.Server, n int) {
	b.Helper()
	hash, err := auth.HashPassword(rngReader{}, "Passw0rd!")
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now().UTC()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				email := fmt.Sprintf("user%06d@example.com", i)
				resp, err := s.Propose(context.Background(), fsm.UserCreate{
					User: state.User{Email: email, Username: fmt.Sprintf("user%06d", i), FullName: fmt.Sprintf("User Number %d", i),
						PasswordHash: hash, Role: api.RoleUser, Status: api.StatusActive, Domain: "default", Groups: []string{"default"},
						CreatedAt: now, ModifiedAt: now},
					Keypair: state.Keypair{AccessKey: fmt.Sprintf("AK%018d", i), SecretKey: "s", User: email, IsActive: true,
						ResourcePolicy: "default", CreatedAt: now},
				})
				if err == nil && resp.Err != nil {
					err = resp.Err
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
}

type rngReader struct{}

func (rngReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(i * 7)
	}
	return len(p), nil
}

// peakHeap samples the heap while f runs and returns the highest HeapInuse.
func peakHeap(f func()) uint64 {
	var peak atomic.Uint64
	done := make(chan struct{})
	go func() {
		var m runtime.MemStats
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	f()
	close(done)
	return peak.Load()
}

// BenchmarkPeople100k measures, over 100,000 users: the CSV export of all of
// them (time, bytes, peak heap of the whole process) and a list with a
// substring filter that matches few.
func BenchmarkPeople100k(b *testing.B) {
	c := testcluster.StartDev(b)
	s := c.Servers[0]
	start := time.Now()
	seedUsers(b, s, 100000)
	b.Logf("seeded 100,000 users through Raft in %s", time.Since(start).Round(time.Millisecond))
	token := testcluster.Login(b, s, testcluster.AdminEmail, testcluster.AdminPassword)
	get := func(path string) (int64, int) {
		req, _ := http.NewRequest(http.MethodGet, testcluster.URL(s)+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		n, err := io.Copy(io.Discard, resp.Body)
		if err != nil {
			b.Fatal(err)
		}
		return n, resp.StatusCode
	}

	b.Run("export-users-csv", func(b *testing.B) {
		runtime.GC()
		var base runtime.MemStats
		runtime.ReadMemStats(&base)
		var size int64
		peak := peakHeap(func() {
			for i := 0; i < b.N; i++ {
				n, code := get("/v1/export/users.csv")
				if code != 200 {
					b.Fatalf("status %d", code)
				}
				size = n
			}
		})
		b.ReportMetric(float64(size)/1e6, "MB-file")
		b.ReportMetric(float64(peak-min(peak, base.HeapInuse))/1e6, "MB-peak-heap-growth")
	})
	b.Run("list-substring-filter", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, code := get("/v1/users?email=user0999&limit=100"); code != 200 {
				b.Fatalf("status %d", code)
			}
		}
	})
}
