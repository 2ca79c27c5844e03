package containerd

import (
	"bytes"
	"errors"
	"testing"
)

func TestBoundedBuffer(t *testing.T) {
	b := &boundedBuffer{max: 5}
	for _, s := range []string{"ab", "cdef", "gh"} {
		if n, err := b.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v: must accept everything", s, n, err)
		}
	}
	if got := b.Bytes(); !bytes.Equal(got, []byte("abcde")) {
		t.Errorf("kept %q, want abcde", got)
	}
}

func TestNotFound(t *testing.T) {
	for msg, want := range map[string]bool{
		`OCI runtime exec failed: exec failed: unable to start container process: exec: "nope": executable file not found in $PATH: unknown`:     true,
		`OCI runtime exec failed: exec failed: unable to start container process: exec: "/nope": stat /nope: no such file or directory: unknown`: true,
		`context deadline exceeded`: false,
		`OCI runtime create failed: runc create failed: unable to start container process: error during container init: error mounting "/data/x" to rootfs at "/home/work/x": stat /data/x: no such file or directory: unknown`: false,
	} {
		if got := notFound(errors.New(msg)); got != want {
			t.Errorf("notFound(%q) = %v", msg, got)
		}
	}
}
