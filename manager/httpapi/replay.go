package httpapi

import (
	"encoding/hex"
	"sync"
	"time"

	"github.com/berth-cluster/berth/shared/sign"
)

// replayBucket is the width of the time slots the replay cache forgets in.
const replayBucket = 10 * time.Second

// replayCache remembers the keypair signatures this manager accepted, so
// each is accepted once: someone who captured a signed request cannot send
// it again. A signature is valid only while its date is within sign.MaxSkew
// of the clock, so it is kept until date+MaxSkew and then forgotten with
// its whole slot. Only verified signatures are recorded, so the cache grows
// with honest traffic alone (about 50 bytes per signed request over the
// last MaxSkew).
//
// Each manager has its own: a follower forwards the requests that are not
// its to answer before it checks their signature, so the leader sees a
// forwarded request once; a signed read answered by a follower (stale
// reads, /v1/info) could be replayed against another manager, which is a
// read the holder of the signature has already seen.
type replayCache struct {
	mu    sync.Mutex
	slots map[int64]map[[32]byte]struct{} // slot of date+MaxSkew → signatures
	swept int64                           // the slot of the last sweep
}

func newReplayCache() *replayCache {
	return &replayCache{slots: map[int64]map[[32]byte]struct{}{}}
}

// firstUse records the signature (hex, as parsed) of a request dated date
// and reports whether it was not recorded before.
func (c *replayCache) firstUse(signature string, date, now time.Time) bool {
	var key [32]byte
	if _, err := hex.Decode(key[:], []byte(signature)); err != nil {
		return false
	}
	slot := date.Add(sign.MaxSkew).UnixNano() / int64(replayBucket)
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur := now.UnixNano() / int64(replayBucket); cur != c.swept {
		c.swept = cur
		for s := range c.slots {
			// Every date in slot s is at most (s+1)·bucket − MaxSkew, so
			// its signatures expired once the clock passed (s+1)·bucket.
			if s < cur {
				delete(c.slots, s)
			}
		}
	}
	seen := c.slots[slot]
	if seen == nil {
		seen = map[[32]byte]struct{}{}
		c.slots[slot] = seen
	}
	if _, ok := seen[key]; ok {
		return false
	}
	seen[key] = struct{}{}
	return true
}
