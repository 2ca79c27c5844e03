package containerd

import (
	"context"
	"errors"
	"fmt"
	"time"

	ctrd "github.com/containerd/containerd"
	runcoptions "github.com/containerd/containerd/api/types/runc/options"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/identifiers"

	"github.com/berth-cluster/berth/agent/runtime"
)

// cleanupTimeout bounds undoing a half-made container after a failed Run,
// which must happen even when the caller's ctx is what failed.
const cleanupTimeout = 30 * time.Second

// runcShim is the runtime every container runs under: containerd's runc v2
// shim, one shim process per container, which outlives the agent.
const runcShim = "io.containerd.runc.v2"

// Run creates the container (filesystem from the image, OCI spec, labels)
// and starts its task, with output going to the container's log file.
func (r *Runtime) Run(ctx context.Context, s runtime.Spec) (runtime.Container, error) {
	ctx = r.ns(ctx)
	if err := identifiers.Validate(s.ID); err != nil {
		return runtime.Container{}, fmt.Errorf("run: container id: %w", err)
	}
	img, err := r.image(ctx, s.Image)
	if err != nil {
		return runtime.Container{}, fmt.Errorf("run %s: %w", s.ID, err)
	}
	// Images imported by ImportImage are unpacked already; this covers ones
	// imported by other means (ctr) and an emptied snapshotter.
	unpacked, err := img.IsUnpacked(ctx, r.cfg.Snapshotter)
	if err != nil {
		return runtime.Container{}, fmt.Errorf("run %s: check image %s unpacked: %w", s.ID, img.Name(), err)
	}
	if !unpacked {
		if err := img.Unpack(ctx, r.cfg.Snapshotter); err != nil {
			return runtime.Container{}, fmt.Errorf("run %s: unpack image %s: %w", s.ID, img.Name(), err)
		}
	}

	if !r.cfg.UserNS.contains(s.User) {
		return runtime.Container{}, fmt.Errorf("run %s: user %d:%d (groups %v) is outside the user namespace's %d ids", s.ID, s.User.UID, s.User.GID, s.User.AdditionalGIDs, r.cfg.UserNS.Size)
	}
	if s.Home != "" {
		home, err := r.makeHome(ctx, s.ID, s.User)
		if err != nil {
			return runtime.Container{}, fmt.Errorf("run %s: %w", s.ID, err)
		}
		// First, so that the Spec's mounts below the home go on top of it.
		s.Mounts = append([]runtime.Mount{{Source: home, Target: s.Home}}, s.Mounts...)
	}
	// The snapshot must exist before the spec: WithImageConfig reads
	// /etc/group from it.
	snapshot := ctrd.WithNewSnapshot(s.ID+"-rootfs", img)
	if m := r.cfg.UserNS; m != nil {
		// The image's files, owned by the mapped root (copied once per
		// image and map, then shared by its containers).
		snapshot = ctrd.WithRemappedSnapshot(s.ID+"-rootfs", img, m.HostUID, m.HostGID)
	}
	l := limits{defaultPids: r.cfg.DefaultPids, cgroups: r.cg, cdiDirs: r.cfg.CDISpecDirs, seccomp: r.cfg.Seccomp, userns: r.cfg.UserNS}
	c, err := r.client.NewContainer(ctx, s.ID,
		ctrd.WithRuntime(runcShim, &runcoptions.Options{Root: r.cfg.RuncRoot}),
		ctrd.WithImage(img),
		ctrd.WithSnapshotter(r.cfg.Snapshotter),
		snapshot,
		ctrd.WithNewSpec(specOpts(img, s, l)...),
		ctrd.WithContainerLabels(withImageDigest(containerLabels(s), img)),
	)
	if errdefs.IsAlreadyExists(err) {
		// The home is the existing container's: makeHome found none, so
		// this one appeared meanwhile; its home is left alone.
		return runtime.Container{}, fmt.Errorf("run %s: container already exists: %w", s.ID, err)
	}
	if err != nil {
		return runtime.Container{}, errors.Join(fmt.Errorf("run %s: create container: %w", s.ID, err), r.removeHome(s.ID))
	}

	// The shim opens the log file itself and keeps writing when the agent
	// is gone; nothing in this process holds the container's output.
	t, err := c.NewTask(ctx, cio.LogFile(r.logPath(s.ID)))
	if err != nil {
		if notFound(err) {
			err = fmt.Errorf("%w (%v)", ErrCommandNotFound, err)
		}
		return runtime.Container{}, errors.Join(
			fmt.Errorf("run %s: create task: %w", s.ID, err),
			r.undo(ctx, c, nil))
	}
	if s.GPU.BeforeStart != nil {
		var dir string
		if spec, err := c.Spec(ctx); err == nil && spec.Linux != nil {
			dir = taskCgroupDir(r.cfg.CgroupRoot, r.cg, spec.Linux.CgroupsPath)
		}
		if err := s.GPU.BeforeStart(ctx, dir); err != nil {
			return runtime.Container{}, errors.Join(
				fmt.Errorf("run %s: before start: %w", s.ID, err),
				r.undo(ctx, c, t))
		}
	}
	if err := t.Start(ctx); err != nil {
		return runtime.Container{}, errors.Join(
			fmt.Errorf("run %s: start task: %w", s.ID, err),
			r.undo(ctx, c, t))
	}

	r.markUsed(ctx, img)
	info, err := c.Info(ctx, ctrd.WithoutRefreshedMetadata)
	if err != nil {
		return runtime.Container{}, fmt.Errorf("run %s: container info: %w", s.ID, err)
	}
	out := fromInfo(info)
	out.State = runtime.Running
	out.Pid = t.Pid()
	// The same approximation List makes (containerd keeps no start time),
	// so that both report the same instant.
	out.StartedAt = info.CreatedAt
	return out, nil
}

// undo removes what a failed Run made, so that a retry with the same id can
// succeed.
func (r *Runtime) undo(ctx context.Context, c ctrd.Container, t ctrd.Task) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	var errs []error
	if t != nil {
		if _, err := t.Delete(ctx, ctrd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("clean up task: %w", err))
		}
	}
	if err := c.Delete(ctx, ctrd.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		errs = append(errs, fmt.Errorf("clean up container: %w", err))
	} else if err := r.removeHome(c.ID()); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
