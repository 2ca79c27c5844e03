package registrytest

import (
	"os/exec"
	"runtime"
	"testing"
	"time"
)

// Go ends a thread whose goroutine exits while locked to it (the agent's
// network code does so on purpose), and Pdeathsig kills a child when the
// thread that forked it ends: a registry started from such a goroutine
// must outlive it, or another test's network tears it down mid-test.
func TestARegistryOutlivesTheThreadThatStartedIt(t *testing.T) {
	r := Start(t, Options{})
	r.Stop()
	bin, err := exec.LookPath(Binary)
	if err != nil {
		bin = "/usr/bin/" + Binary
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
		errc <- r.start(bin)
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	done := r.done
	r.mu.Unlock()
	select {
	case <-done:
		t.Fatalf("the registry was killed when the thread that started it ended:\n%s", r.Log())
	case <-time.After(time.Second):
	}
	if !r.answers() {
		t.Fatalf("the registry does not answer:\n%s", r.Log())
	}
}
