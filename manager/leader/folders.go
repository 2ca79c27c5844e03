package leader

import (
	"context"

	"github.com/berth-cluster/berth/manager/fsm"
)

// folderUsage measures the storage folders on this manager's hosts and
// records, in one entry, those whose usage changed; the FSM marks
// over-quota ones against their policy, so a folder a session filled past
// max_vfolder_size is no longer mounted read-write.
type folderUsage struct{ l *Leader }

func (l *Leader) newFolderUsage() *folderUsage { return &folderUsage{l: l} }

func (f *folderUsage) run(ctx context.Context) { every(ctx, f.l.cfg.FolderUsageEvery, f.measure) }

// measure records the usage of every folder on a host this manager has
// whose usage or over-quota mark would change.
func (f *folderUsage) measure(ctx context.Context) {
	store := f.l.cfg.Folders
	tx := f.l.cfg.Cluster.Read()
	folders, err := tx.Folders()
	if err != nil {
		f.l.log.Error("list folders to measure", "err", err)
		return
	}
	var usage []fsm.FolderUsage
	for _, fo := range folders {
		if ctx.Err() != nil {
			return
		}
		if !store.Has(fo.Host) {
			continue
		}
		used, err := store.Usage(fo.Host, fo.ID)
		if err != nil {
			f.l.log.Warn("measure folder", "folder", fo.ID, "host", fo.Host, "err", err)
			continue
		}
		limit, err := tx.FolderSizeLimit(fo)
		if err != nil {
			f.l.log.Error("folder size limit", "folder", fo.ID, "err", err)
			continue
		}
		over := limit != nil && used > *limit
		if used != fo.UsageBytes || over != fo.OverQuota {
			usage = append(usage, fsm.FolderUsage{ID: fo.ID, Bytes: used})
		}
	}
	if len(usage) == 0 {
		return
	}
	if err := f.l.propose(ctx, fsm.FoldersUsage{Usage: usage}); err != nil && ctx.Err() == nil {
		f.l.log.Warn("record folder usage", "folders", len(usage), "err", err)
	}
}
