package folderfs

import (
	"fmt"
	"sync"
)

// QuotaError is an upload that does not fit its folder's size limit.
type QuotaError struct {
	Limit    int64 // the folder's max_vfolder_size
	Used     int64 // measured in the folder
	Reserved int64 // held by other uploads in flight
	Replaced int64 // the size of the file the upload would replace
	Size     int64 // the upload's length; -1 when unknown
}

func (e *QuotaError) Error() string {
	free := max(e.Limit-e.Used-e.Reserved, 0)
	msg := fmt.Sprintf("the folder holds %d bytes of its max_vfolder_size %d", e.Used, e.Limit)
	if e.Reserved > 0 {
		msg += fmt.Sprintf(" and uploads in progress hold %d more", e.Reserved)
	}
	if e.Replaced > 0 {
		free += e.Replaced
		msg += fmt.Sprintf("; with the %d bytes of the file it replaces, %d bytes are free", e.Replaced, free)
	} else {
		msg += fmt.Sprintf("; %d bytes are free", free)
	}
	if e.Size >= 0 {
		msg += fmt.Sprintf(" and the upload has %d", e.Size)
	} else {
		msg += " and the upload (of unannounced length) sent more"
	}
	return msg
}

// Unwrap makes a QuotaError an ErrTooLarge.
func (e *QuotaError) Unwrap() error { return ErrTooLarge }

// quotaBook is the room under their size limits that uploads in flight
// hold, per folder. It lives in the memory of the manager that writes the
// folder: uploads are the leader's (followers forward them), and a new
// leader starts with none in flight.
type quotaBook struct {
	mu       sync.Mutex
	locks    map[string]*sync.Mutex // folder id → serialises measure-and-reserve
	reserved map[string]int64       // folder id → bytes held
	inflight map[string]bool        // folder id + "/" + temporary file
}

func newQuotaBook() quotaBook {
	return quotaBook{locks: map[string]*sync.Mutex{}, reserved: map[string]int64{}, inflight: map[string]bool{}}
}

func (q *quotaBook) lock(id string) *sync.Mutex {
	q.mu.Lock()
	defer q.mu.Unlock()
	l, ok := q.locks[id]
	if !ok {
		l = &sync.Mutex{}
		q.locks[id] = l
	}
	return l
}

// inFlight reports whether tmp (relative to the folder) is the temporary
// file of an upload this store is writing: its bytes are counted by the
// room the upload holds, not by the walk. A file of that name nobody is
// writing (a leftover, or one a session made) counts like any other.
func (q *quotaBook) inFlight(id, tmp string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.inflight[id+"/"+tmp]
}

// reserve holds room in the folder for an upload to its temporary file tmp
// and returns the most bytes the body may have, and the error to answer when
// it has more. With no quota, the bound is
// size (-1: none). With one, the room is the limit less the folder's
// measured usage and what other uploads in flight hold, plus the size of
// the file the upload replaces; an upload of known size holds what it adds,
// one of unknown size holds all the room left until it ends. The
// measurement and the reservation happen under the folder's lock, and done
// (which the caller defers) forgets the measurement and releases the room
// under it too, so a later upload sees either the reservation or the file
// it became, never neither.
func (s *Store) reserve(host, id, tmp string, size, replaced int64, quota *int64) (limit int64, over error, done func(), err error) {
	q := &s.quota
	key := id + "/" + tmp
	l := q.lock(id)
	l.Lock()
	defer l.Unlock()
	held := int64(0)
	limit, over = size, ErrTooLarge
	if quota != nil {
		used, err := s.Usage(host, id)
		if err != nil {
			return 0, nil, nil, err
		}
		q.mu.Lock()
		others := q.reserved[id]
		q.mu.Unlock()
		room := *quota - used - others
		qe := &QuotaError{Limit: *quota, Used: used, Reserved: others, Replaced: replaced, Size: size}
		if size >= 0 {
			held = max(size-replaced, 0)
			if held > room {
				return 0, nil, nil, qe
			}
		} else {
			held = max(room, 0)
			limit, over = held+replaced, qe
		}
	}
	q.mu.Lock()
	q.reserved[id] += held
	q.inflight[key] = true
	q.mu.Unlock()
	return limit, over, func() {
		l.Lock()
		defer l.Unlock()
		s.forget(id)
		q.mu.Lock()
		defer q.mu.Unlock()
		if q.reserved[id] -= held; q.reserved[id] <= 0 {
			delete(q.reserved, id)
		}
		delete(q.inflight, key)
	}, nil
}
