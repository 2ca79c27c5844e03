package fsm

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/hashicorp/raft"

	"github.com/berth-cluster/berth/manager/state"
)

// A snapshot stream is a magic header and then records: table id (1 byte),
// body length (4 bytes, big endian), the object as JSON.
var snapshotMagic = [8]byte{'B', 'E', 'R', 'T', 'H', 'S', 0, 1}

// maxRecord bounds one record so a corrupt length cannot exhaust memory.
const maxRecord = 64 << 20

type snapshot struct{ store *state.Store }

func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	if err := writeSnapshot(sink, s.store); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("persist snapshot: %w", err)
	}
	return sink.Close()
}

func (s *snapshot) Release() {}

func writeSnapshot(w io.Writer, st *state.Store) error {
	bw := bufio.NewWriter(w)
	if _, err := bw.Write(snapshotMagic[:]); err != nil {
		return err
	}
	tx := st.Read()
	var hdr [5]byte
	for _, t := range state.Tables() {
		objs, err := tx.All(t.Name)
		if err != nil {
			return err
		}
		for _, o := range objs {
			body, err := json.Marshal(o)
			if err != nil {
				return fmt.Errorf("encode %s record: %w", t.Name, err)
			}
			hdr[0] = t.ID
			binary.BigEndian.PutUint32(hdr[1:], uint32(len(body)))
			if _, err := bw.Write(hdr[:]); err != nil {
				return err
			}
			if _, err := bw.Write(body); err != nil {
				return err
			}
		}
	}
	return bw.Flush()
}

func readSnapshot(r io.Reader) (*state.Store, error) {
	br := bufio.NewReader(r)
	var magic [8]byte
	if _, err := io.ReadFull(br, magic[:]); err != nil {
		return nil, fmt.Errorf("read header: %w", err)
	}
	if magic != snapshotMagic {
		return nil, errors.New("not a berth snapshot (bad header)")
	}
	tables := map[byte]state.Table{}
	for _, t := range state.Tables() {
		tables[t.ID] = t
	}
	st, tx := state.Reset()
	defer tx.Abort()
	var hdr [5]byte
	for n := 0; ; n++ {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, fmt.Errorf("read record %d: %w", n, err)
		}
		t, ok := tables[hdr[0]]
		if !ok {
			return nil, fmt.Errorf("record %d: unknown table id %d", n, hdr[0])
		}
		size := binary.BigEndian.Uint32(hdr[1:])
		if size > maxRecord {
			return nil, fmt.Errorf("record %d: %s record of %d bytes is over the limit", n, t.Name, size)
		}
		body := make([]byte, size)
		if _, err := io.ReadFull(br, body); err != nil {
			return nil, fmt.Errorf("record %d: %w", n, err)
		}
		obj := t.New()
		if err := json.Unmarshal(body, obj); err != nil {
			return nil, fmt.Errorf("record %d: decode %s: %w", n, t.Name, err)
		}
		if err := tx.Insert(t.Name, obj); err != nil {
			return nil, err
		}
	}
	tx.Commit()
	return st, nil
}

// CheckSnapshot reads a whole snapshot stream as Restore would, without
// touching any state: an operator's upload is checked before the cluster
// replaces its state with it.
func CheckSnapshot(r io.Reader) error {
	_, err := readSnapshot(r)
	return err
}
