package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/berth-cluster/berth/manager/apierr"
	"github.com/berth-cluster/berth/manager/fsm"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/slots"
)

// sessionStatusList names every session status, for a reason.
func sessionStatusList() string {
	names := make([]string, 0, len(api.SessionStatuses()))
	for _, st := range api.SessionStatuses() {
		names = append(names, string(st))
	}
	return strings.Join(names, ", ")
}

// sessionView is a session as API.md shows it. requested is per container,
// as it was asked for; occupied is what the whole session holds now.
func sessionView(tx *state.Txn, s *state.Session) api.Session {
	out := api.Session{ID: s.ID, Name: s.Name, Owner: s.Owner, AccessKey: s.AccessKey, Image: s.Image, Type: s.Type,
		Status: s.Status, StatusInfo: statusInfo(tx, s), StatusHistory: slices.Clone(nonNil(s.StatusHistory)),
		Requested: s.Requested.Clone(), Occupied: s.Holds(), Containers: make([]api.SessionContainer, 0, len(s.Containers)),
		CreatedAt: s.CreatedAt, StartedAt: s.StartedAt, TerminatedAt: s.TerminatedAt, ExitCode: s.ExitCode,
		LastActivityAt: s.LastActivityAt, RunAsRoot: s.RunAsRoot}
	for _, c := range s.Containers {
		gpus := make([]api.SessionGPU, 0, len(c.GPUs))
		for _, g := range c.GPUs {
			gpus = append(gpus, api.SessionGPU{UUID: g.UUID, Share: sharesValue(g.Share)})
		}
		out.Containers = append(out.Containers, api.SessionContainer{Agent: c.Agent, Status: c.Status,
			Slots: c.Slots.Clone(), GPUs: gpus, Address: c.Address, ImageDigest: c.ImageDigest})
		if out.ImageDigest == "" {
			out.ImageDigest = c.ImageDigest
		}
	}
	out.Mounts = sessionMounts(s)
	out.Command = slices.Clone(nonNil(s.Command))
	out.ClusterSize = max(s.ClusterSize, 1)
	out.EnvNames = sortedStrings(s.Env)
	out.Ports = slices.Clone(nonNil(s.Ports))
	return out
}

// statusInfo is the session's status_info (Info: a refusal of the plan
// applier is rendered from its code here, as it is read), followed by a
// notice for each simulated agent it was placed on and, while it runs, one
// for each folder it mounts read-write that is over its size limit. The
// notices are derived when the session is read, from the agents' records
// and the over-quota mark the leader's folder measurements replicate, so
// they cost the log nothing.
func statusInfo(tx *state.Txn, s *state.Session) string {
	info := s.Info()
	for _, id := range simulatedAgents(tx, s) {
		if info != "" {
			info += "; "
		}
		info += "placed on simulated agent " + id + ": nothing of this session really runs (berth-agent -runtime sim)"
	}
	if s.Status.Ended() {
		return info
	}
	for _, notice := range disconnectedNotices(tx, s) {
		if info != "" {
			info += "; "
		}
		info += notice
	}
	for _, m := range s.Mounts {
		if m.Folder == "" || m.ReadOnly {
			continue
		}
		f, err := tx.Folder(m.Folder)
		if err != nil || f == nil || !f.OverQuota {
			continue
		}
		limit := "its"
		if l, err := tx.FolderSizeLimit(f); err == nil && l != nil {
			limit = fmt.Sprintf("its %d-byte", *l)
		}
		notice := fmt.Sprintf("folder %s, mounted read-write at %s, holds %d bytes, over %s max_vfolder_size: delete files from it; until then uploads to it are refused and new sessions mount it read-only",
			f.Name, m.Target, f.UsageBytes, limit)
		if info != "" {
			info += "; "
		}
		info += notice
	}
	return info
}

// disconnectedNotices say, for each DISCONNECTED agent the session's
// containers are on, since when: the session keeps its status and slots
// until the agent reports again or the grace ends.
func disconnectedNotices(tx *state.Txn, s *state.Session) []string {
	var out []string
	seen := map[string]bool{}
	for _, c := range s.Containers {
		if c.Agent == "" || seen[c.Agent] {
			continue
		}
		seen[c.Agent] = true
		if ag, err := tx.Agent(c.Agent); err == nil && ag != nil && ag.Status == state.AgentDisconnected {
			out = append(out, fmt.Sprintf("agent %s disconnected since %s (its last heartbeat): the session keeps its slots and resumes when the agent reports again; past the disconnect grace it ends ERROR agent-lost",
				ag.ID, ag.LastHeartbeatAt.UTC().Format(time.RFC3339)))
		}
	}
	return out
}

// simulatedAgents are the simulated agents the session's containers were
// placed on, each once, in container order.
func simulatedAgents(tx *state.Txn, s *state.Session) []string {
	var out []string
	for _, c := range s.Containers {
		if c.Agent == "" || slices.Contains(out, c.Agent) {
			continue
		}
		if ag, err := tx.Agent(c.Agent); err == nil && ag != nil && ag.Simulated {
			out = append(out, c.Agent)
		}
	}
	return out
}

// sharesValue is a cuda.shares quantity as the wire's decimal (0.5).
func sharesValue(v int64) float64 { return slotValue(slots.CUDAShares, v) }

// visibleSession reads one session the caller may see; one answer for
// "no such session" and "not yours", so ids do not leak.
func (a *API) visibleSession(c *Call) (*state.Session, error) {
	return visibleSessionIn(c, a.cluster.Read())
}

// visibleSessionIn is visibleSession in a read already open.
func visibleSessionIn(c *Call, tx *state.Txn) (*state.Session, error) {
	id := c.R.PathValue("id")
	s, err := tx.Session(id)
	if err != nil {
		return nil, err
	}
	if s == nil {
		if gone, err := tx.CollectedSession(id); err != nil {
			return nil, err
		} else if gone != nil && canSeeCollectedSession(c.Who, tx, gone) {
			return nil, apierr.New(apierr.NotFound, "session %s was collected at %s: it ended at %s, and finished sessions are kept for the managers' -session-retention; its usage stays in GET /v1/usage",
				id, gone.CollectedAt.UTC().Format(time.RFC3339), gone.TerminatedAt.UTC().Format(time.RFC3339))
		}
	}
	if s == nil || !canSeeSession(c.Who, tx, s) {
		return nil, apierr.New(apierr.NotFound, "no session %s", id)
	}
	return s, nil
}

// sessionFilter reads ?status=, ?owner= and ?all=true, shared by the list
// and the CSV export. A user sees their own sessions; admins and monitors
// may ask for one owner's or, with all=true, every one they can see.
// exportAll makes the export's default "every visible session" for admins.
func (a *API) sessionFilter(c *Call, tx *state.Txn, exportAll bool) (func(*state.Session) bool, error) {
	q := c.R.URL.Query()
	var bad apierr.Fields
	status := api.SessionStatus(strings.ToUpper(q.Get("status")))
	if status != "" && !status.Known() {
		bad.Add("status", "status must be one of %s", sessionStatusList())
	}
	asked := false
	if v := q.Get("all"); v != "" {
		var err error
		if asked, err = strconv.ParseBool(v); err != nil {
			bad.Add("all", "all must be true or false")
		}
	}
	all := exportAll || asked
	owner := normalizeEmail(q.Get("owner"))
	if err := bad.Err(); err != nil {
		return nil, err
	}
	watcher := watches(c.Who)
	me := c.Who.User.Email
	switch {
	case !watcher && owner != "" && owner != me:
		return nil, apierr.Field(apierr.Forbidden, "owner", "only admins may list other users' sessions")
	case !watcher && asked:
		return nil, apierr.Field(apierr.Forbidden, "all", "only admins may list every user's sessions")
	case !watcher:
		owner, all = me, false
	case owner == "" && !all:
		owner = me
	}
	return func(s *state.Session) bool {
		return canSeeSession(c.Who, tx, s) && (owner == "" || s.Owner == owner) && (status == "" || s.Status == status)
	}, nil
}

func (a *API) listSessions(c *Call) error {
	q := c.R.URL.Query()
	limit, err := listLimit(q.Get("limit"))
	if err != nil {
		return err
	}
	tx := a.cluster.Read()
	keep, err := a.sessionFilter(c, tx, false)
	if err != nil {
		return err
	}
	ss, next, err := tx.Sessions(q.Get("cursor"), limit, keep)
	if err != nil {
		return err
	}
	out := api.List[api.Session]{Items: make([]api.Session, 0, len(ss)), NextCursor: next}
	for _, s := range ss {
		out.Items = append(out.Items, sessionView(tx, s))
	}
	return c.JSON(http.StatusOK, out)
}

// getSession is GET /v1/sessions/{id}. X-Berth-Index says the index the
// answer is at (the session's last write; a stale read's applied index);
// with ?index=N it is a blocking query that answers once the session is
// written past N, or ?wait= (default 30s) passes: `berth session start
// --wait` follows a session this way without polling.
func (a *API) getSession(c *Call) error {
	s, err := a.visibleSession(c)
	if err != nil {
		return err
	}
	index, wait, err := blockingQuery(c)
	if err != nil {
		return err
	}
	tx := a.cluster.Read()
	if index != nil {
		ctx, cancel := context.WithTimeout(c.R.Context(), wait)
		defer cancel()
		for s.ModifyIndex <= *index && ctx.Err() == nil {
			var watch state.Watch
			if s, watch, err = tx.SessionWatch(s.ID); err != nil {
				return err
			}
			if s == nil {
				// Collected while the caller waited: the same answer as
				// a GET after it.
				_, err := visibleSessionIn(c, tx)
				return err
			}
			if !canSeeSession(c.Who, tx, s) {
				return apierr.New(apierr.NotFound, "no session %s", c.R.PathValue("id"))
			}
			if s.ModifyIndex > *index {
				break
			}
			// Running out of wait is a normal answer.
			if err := watch.Wait(ctx); err != nil && c.R.Context().Err() != nil {
				return err
			}
			tx = a.cluster.Read()
		}
	}
	if c.W.Header().Get(hdrIndex) == "" {
		c.W.Header().Set(hdrIndex, strconv.FormatUint(s.ModifyIndex, 10))
	}
	return c.JSON(http.StatusOK, sessionView(tx, s))
}

// terminateSession is DELETE /v1/sessions/{id}: 202, the session goes
// TERMINATING and, once its agents report the containers gone,
// TERMINATED (a PENDING one is CANCELLED at once). Asking again, or for a
// session that already ended, changes nothing and answers the same way.
func (a *API) terminateSession(c *Call) error {
	s, err := a.visibleSession(c)
	if err != nil {
		return err
	}
	if !canActOnSession(c.Who, a.cluster.Read(), s) {
		return apierr.New(apierr.Forbidden, "only the owner or an admin may terminate session %s", s.ID)
	}
	if !s.Status.EndingOrEnded() {
		if s, err = propose[*state.Session](c, fsm.SessionTerminate{SessionID: s.ID, At: a.now().UTC(), Reason: "user-request"}); err != nil {
			return err
		}
	}
	return c.JSON(http.StatusAccepted, sessionView(a.cluster.Read(), s))
}

var sessionColumns = []string{"id", "name", "owner", "access_key", "image", "type", "status", "status_info", "agents",
	"cpu", "mem", "cuda.device", "cuda.shares", "created_at", "started_at", "terminated_at", "exit_code"}

// exportSessions is the sessions CSV: admins get every session they can
// see (the list filters narrow it), users their own. Slots are per
// container, as requested.
func (a *API) exportSessions(c *Call) error {
	name, err := exportFilename(c.R.URL.Query().Get("filename"), "sessions.csv")
	if err != nil {
		return err
	}
	tx := a.cluster.Read()
	keep, err := a.sessionFilter(c, tx, true)
	if err != nil {
		return err
	}
	return c.csvExport(name, sessionColumns, func(row func([]string) error) error {
		return tx.EachSession(keep, func(s *state.Session) error {
			cells := []string{s.ID, s.Name, s.Owner, s.AccessKey, s.Image, s.Type, string(s.Status), statusInfo(tx, s),
				strings.Join(s.Agents, ";")}
			for _, n := range slots.Known {
				cells = append(cells, slots.Format(n, s.Requested[n]).String())
			}
			cells = append(cells, csvTime(s.CreatedAt), csvTimePtr(s.StartedAt), csvTimePtr(s.TerminatedAt), csvOptional(s.ExitCode))
			return row(cells)
		})
	})
}

func csvTimePtr(t *time.Time) string {
	if t == nil {
		return ""
	}
	return csvTime(*t)
}
