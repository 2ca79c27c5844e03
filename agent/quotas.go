package agent

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"

	"github.com/berth-cluster/berth/agent/fsquota"
	"github.com/berth-cluster/berth/shared/api"
)

// folderQuotas keeps project quotas on the folders this node's containers
// mount read-write, where the folder host's filesystem enforces them: the
// folder's directory tree is put into its project before every start of a
// container that mounts it (which also takes back what an earlier session
// moved out of the project: a file's owner may), and the project's hard
// limit follows the limit the managers send. A read-only mount writes
// nothing, so it needs none. A limit is removed when no desired container
// mounts the folder read-write any more, so a folder nobody runs with, or
// one deleted since, keeps no limit on the host.
type folderQuotas struct {
	q   fsquota.Quotas
	log *slog.Logger
	// hosts are the folder hosts (name → path) that enforce project quotas.
	hosts map[string]string
	set   map[folderKey]projectLimit // what this agent run has set
}

type folderKey struct{ host, folder string }

type projectLimit struct {
	project uint32
	limit   *int64 // nil: labelled, no limit
}

// findQuotaHosts asks q which folder hosts enforce project quotas; a host
// it cannot tell about is taken as one without (and logged).
func findQuotaHosts(q fsquota.Quotas, folderHosts map[string]string, log *slog.Logger) map[string]string {
	out := map[string]string{}
	for _, name := range slices.Sorted(maps.Keys(folderHosts)) {
		path := folderHosts[name]
		ok, err := q.Enforced(path)
		switch {
		case err != nil:
			log.Warn("cannot tell whether the folder host enforces project quotas; taking it as one without", "host", name, "path", path, "err", err)
		case ok:
			log.Info("folder host enforces project quotas: folders mounted read-write get their size limit as a hard limit", "host", name, "path", path)
			out[name] = path
		default:
			log.Info("folder host has no project quotas (mount it with prjquota to have them): folder limits are the managers' alone", "host", name, "path", path)
		}
	}
	return out
}

// rw are the read-write folder mounts of d on hosts with project quotas.
func (fq *folderQuotas) rw(d api.DesiredContainer) []api.Mount {
	var out []api.Mount
	for _, m := range d.Mounts {
		if _, ok := fq.hosts[m.Host]; ok && m.Folder != "" && !m.ReadOnly {
			out = append(out, m)
		}
	}
	return out
}

// ensure brings the quotas of d's folders to the limits d carries. It is
// called before d starts (starting: the folders are labelled again), where
// an error fails the start, and on every pass while d runs, to follow a
// changed limit.
func (fq *folderQuotas) ensure(ctx context.Context, d api.DesiredContainer, starting bool) error {
	for _, m := range fq.rw(d) {
		if err := fq.ensureOne(ctx, m, starting); err != nil {
			return fmt.Errorf("project quota of folder %s on host %s: %w", m.Folder, m.Host, err)
		}
	}
	return nil
}

func (fq *folderQuotas) ensureOne(ctx context.Context, m api.Mount, starting bool) error {
	key := folderKey{m.Host, m.Folder}
	host, path := fq.hosts[m.Host], filepath.Join(fq.hosts[m.Host], m.Folder)
	cur, known := fq.set[key]
	if m.LimitBytes == nil { // unlimited
		if !known || cur.limit == nil {
			return nil
		}
		if err := fq.q.ClearLimit(host, cur.project); err != nil {
			return err
		}
		fq.log.Info("removed the project quota of a folder (its policy is now unlimited)", "host", m.Host, "folder", m.Folder, "project", cur.project, "path", path)
		fq.set[key] = projectLimit{project: cur.project}
		return nil
	}
	project := cur.project
	if !known || starting {
		id, err := fq.q.Label(ctx, host, m.Folder)
		if err != nil {
			return err
		}
		project = id
	}
	if known && project == cur.project && equalLimit(cur.limit, m.LimitBytes) {
		return nil
	}
	if err := fq.q.SetLimit(host, project, *m.LimitBytes); err != nil {
		return err
	}
	fq.log.Info("set the project quota of a folder", "host", m.Host, "folder", m.Folder, "project", project, "limit_bytes", *m.LimitBytes, "path", path)
	if known && project != cur.project && cur.limit != nil {
		// The folder moved to another project (its id became another
		// folder's): its old one keeps no limit.
		if err := fq.q.ClearLimit(host, cur.project); err != nil {
			fq.log.Warn("could not remove the limit of a folder's former project", "host", m.Host, "folder", m.Folder, "project", cur.project, "err", err)
		}
	}
	fq.set[key] = projectLimit{project: project, limit: cloneLimit(m.LimitBytes)}
	return nil
}

// release removes the limits of folders no desired container mounts
// read-write any more. A limit that cannot be removed is tried again on
// the next pass.
func (fq *folderQuotas) release(desired map[string]api.DesiredContainer) {
	if len(fq.set) == 0 {
		return
	}
	inUse := map[folderKey]bool{}
	for _, d := range desired {
		for _, m := range fq.rw(d) {
			inUse[folderKey{m.Host, m.Folder}] = true
		}
	}
	for key, cur := range fq.set {
		if inUse[key] {
			continue
		}
		if cur.limit != nil {
			if err := fq.q.ClearLimit(fq.hosts[key.host], cur.project); err != nil {
				fq.log.Warn("could not remove the project quota of a folder no container mounts any more", "host", key.host,
					"folder", key.folder, "project", cur.project, "err", err)
				continue
			}
			fq.log.Info("removed the project quota of a folder no container mounts any more", "host", key.host,
				"folder", key.folder, "project", cur.project)
		}
		delete(fq.set, key)
	}
}

func equalLimit(a, b *int64) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

func cloneLimit(l *int64) *int64 {
	if l == nil {
		return nil
	}
	v := *l
	return &v
}
