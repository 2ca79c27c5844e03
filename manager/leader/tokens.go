package leader

import (
	"context"

	"github.com/berth-cluster/berth/manager/fsm"
)

// tokenSweep removes expired login tokens from the state. Expiry itself is
// checked on every use; the sweep only keeps the table from growing.
type tokenSweep struct{ l *Leader }

func (l *Leader) newTokenSweep() *tokenSweep { return &tokenSweep{l: l} }

func (s *tokenSweep) run(ctx context.Context) { every(ctx, tokenSweepEvery, s.sweep) }

func (s *tokenSweep) sweep(ctx context.Context) {
	if err := s.l.propose(ctx, fsm.TokensExpire{Now: s.l.now()}); err != nil && ctx.Err() == nil {
		s.l.log.Warn("expire login tokens", "err", err)
	}
}
