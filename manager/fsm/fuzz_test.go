package fsm

import (
	"bytes"
	"io"
	"testing"
)

// FuzzApplyEntry feeds arbitrary entries of known types: the FSM may refuse
// them but must never panic or write half an entry.
func FuzzApplyEntry(f *testing.F) {
	for _, seed := range testLog(f, 1, 5) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fs := newTestFSM()
		if len(data) > 0 {
			if _, known := fs.appliers[MsgType(data[0])]; !known && MsgType(data[0])&IgnoreUnknown == 0 {
				return // stopping on unknown types is the intended behaviour
			}
		}
		fs.ApplyEntry(1, data)
	})
}

// FuzzRestore feeds arbitrary snapshot streams: restore must fail cleanly.
func FuzzRestore(f *testing.F) {
	fs := newTestFSM()
	for i, e := range testLog(f, 1, 5) {
		fs.ApplyEntry(uint64(i+1), e)
	}
	snap, _ := fs.Snapshot()
	sink := &bufferSink{}
	if err := snap.Persist(sink); err != nil {
		f.Fatal(err)
	}
	f.Add(sink.Bytes())
	f.Add(snapshotMagic[:])
	f.Fuzz(func(t *testing.T, data []byte) {
		_ = newTestFSM().Restore(io.NopCloser(bytes.NewReader(data)))
	})
}
