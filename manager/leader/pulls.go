package leader

import "github.com/berth-cluster/berth/shared/api"

// Pulls is what the agent's last heartbeat to this leader said it was
// pulling (GET /v1/images shows it); nil on a manager that does not lead or
// has not heard from the agent since it began to.
func (l *Leader) Pulls(id string) []api.ImagePull {
	t := l.current()
	if t == nil {
		return nil
	}
	t.agents.mu.Lock()
	defer t.agents.mu.Unlock()
	if b := t.agents.beats[id]; b != nil {
		return b.pulls
	}
	return nil
}
