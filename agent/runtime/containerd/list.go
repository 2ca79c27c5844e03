package containerd

import (
	"context"
	"fmt"
	"strconv"

	ctrd "github.com/containerd/containerd"
	tasks "github.com/containerd/containerd/api/services/tasks/v1"
	tasktypes "github.com/containerd/containerd/api/types/task"
	"github.com/containerd/containerd/containers"
	"github.com/containerd/typeurl/v2"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-cluster/berth/agent/runtime"
)

// List returns every container in the namespace with its task's state. It
// costs two calls whatever the number of containers: all container records,
// then all tasks.
func (r *Runtime) List(ctx context.Context) ([]runtime.Container, error) {
	ctx = r.ns(ctx)
	cs, err := r.client.Containers(ctx)
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	resp, err := r.client.TaskService().List(ctx, &tasks.ListTasksRequest{})
	if err != nil {
		return nil, fmt.Errorf("list tasks: %w", err)
	}
	byID := make(map[string]*tasktypes.Process, len(resp.Tasks))
	for _, t := range resp.Tasks {
		// A task's id is its container's; 1.6 daemons leave ContainerID
		// empty in this listing.
		id := t.ID
		if id == "" {
			id = t.ContainerID
		}
		byID[id] = t
	}

	out := make([]runtime.Container, 0, len(cs))
	for _, c := range cs {
		info, err := c.Info(ctx, ctrd.WithoutRefreshedMetadata)
		if err != nil {
			return nil, fmt.Errorf("list: info of %s: %w", c.ID(), err)
		}
		rc := fromInfo(info)
		t, ok := byID[info.ID]
		if !ok {
			// Run starts the task right after creating the container, so a
			// container without one is either mid-Run or a failed start.
			rc.State = runtime.Created
			out = append(out, rc)
			continue
		}
		rc.State = stateOf(t.Status)
		rc.Pid = t.Pid
		// containerd keeps no start time for tasks; Run starts the task
		// within milliseconds of creating the container.
		rc.StartedAt = info.CreatedAt
		if rc.State == runtime.Exited {
			rc.ExitCode = int(t.ExitStatus)
			if t.ExitedAt != nil {
				rc.ExitedAt = t.ExitedAt.AsTime()
			}
			rc.OOMKilled = r.oomKilled(info, rc.ExitCode)
		}
		out = append(out, rc)
	}
	return out, nil
}

// oomKilled tells whether an exited container died of the OOM killer. An
// exit status of 137 alone says only "SIGKILL"; this needs evidence of an
// OOM: an event seen by this Runtime, the label the event watcher left (for
// events before an agent restart), or the cgroup's own oom_kill counter (for
// OOMs while no agent was watching). A container whose init still exited 0
// was not killed by it, whatever happened to its children.
func (r *Runtime) oomKilled(info containers.Container, exitCode int) bool {
	if exitCode == 0 {
		return false
	}
	if r.sawOOM(info.ID) || info.Labels[labelOOMKilled] == "true" {
		return true
	}
	path := cgroupsPath(info)
	n, ok := oomKills(r.cfg.CgroupRoot, r.cg.v2, path)
	return ok && n > 0
}

// cgroupsPath reads the container's cgroup from its stored OCI spec.
func cgroupsPath(info containers.Container) string {
	if info.Spec == nil {
		return ""
	}
	v, err := typeurl.UnmarshalAny(info.Spec)
	if err != nil {
		return ""
	}
	s, ok := v.(*specs.Spec)
	if !ok || s.Linux == nil {
		return ""
	}
	return s.Linux.CgroupsPath
}

// fromInfo fills what the container record says; task fields are the
// caller's.
func fromInfo(info containers.Container) runtime.Container {
	labels := make(map[string]string, len(info.Labels))
	for k, v := range info.Labels {
		labels[k] = v
	}
	idx, _ := strconv.Atoi(labels[runtime.LabelIndex])
	return runtime.Container{
		ID:        info.ID,
		SessionID: labels[runtime.LabelSession],
		Index:     idx,
		Image:     info.Image,
		Labels:    labels,
		State:     runtime.Unknown,
		// ImageDigest: what Run recorded, not what the name means now.
		ImageDigest: labels[runtime.LabelImageDigest],
	}
}

// stateOf maps containerd's task status. Berth never pauses tasks, so a
// paused one is something it does not understand.
func stateOf(s tasktypes.Status) runtime.State {
	switch s {
	case tasktypes.Status_CREATED:
		return runtime.Created
	case tasktypes.Status_RUNNING:
		return runtime.Running
	case tasktypes.Status_STOPPED:
		return runtime.Exited
	default:
		return runtime.Unknown
	}
}
