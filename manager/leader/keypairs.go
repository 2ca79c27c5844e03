package leader

import (
	"context"

	"github.com/berth-cluster/berth/manager/fsm"
)

// KeypairUsed records that a keypair signed a request now. The uses are
// written together by the keypair touch duty, so a signed request costs
// no Raft round trip of its own. A manager that does not lead forgets them:
// its own reads are stale reads, and the leader records what it serves.
func (l *Leader) KeypairUsed(accessKey string) {
	if t := l.current(); t != nil {
		t.keypairs.touch(accessKey, l.now())
	}
}

// keypairTouch writes the keypairs' last use, gathered in memory, in one
// entry per period.
type keypairTouch struct {
	l *Leader
	t *term
}

func (l *Leader) newKeypairTouch(t *term) *keypairTouch { return &keypairTouch{l: l, t: t} }

func (k *keypairTouch) run(ctx context.Context) { every(ctx, k.l.cfg.KeypairTouchEvery, k.flush) }

func (k *keypairTouch) flush(ctx context.Context) {
	uses := k.t.keypairs.drain()
	if len(uses) == 0 {
		return
	}
	if err := k.l.propose(ctx, fsm.KeypairsTouch{LastUsed: uses}); err != nil && ctx.Err() == nil {
		k.l.log.Warn("record keypair use", "keypairs", len(uses), "err", err)
	}
}
