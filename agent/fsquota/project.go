package fsquota

import (
	"hash/fnv"
	"math"
	"strconv"
)

// maxAttempts bounds how many project ids a folder tries before giving up:
// each further one is taken by another folder directory of the same host.
const maxAttempts = 16

// ProjectID is the project id a folder's directory tries at attempt k
// (0, 1, ...): the 32-bit FNV-1a hash of the folder id (k = 0) or of
// "ID/k", mapped onto 1 .. 2^32-2. Never 0, the project every file is in
// until it is given one (its usage is nobody's and it has no limit), and
// never 2^32-1, which the kernel refuses. Folder ids cannot contain "/",
// so "ID/k" is never another folder's id. The id is derived, not stored
// anywhere but in the directory itself, so any agent (and a restarted
// one) finds the same id for the same folder; the attempts after 0 exist
// for two folders whose ids hash alike (Label).
func ProjectID(folder string, k int) uint32 {
	h := fnv.New32a()
	h.Write([]byte(folder))
	if k > 0 {
		h.Write([]byte("/" + strconv.Itoa(k)))
	}
	return 1 + h.Sum32()%(math.MaxUint32-1)
}
