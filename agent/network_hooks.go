package agent

import (
	"context"
	"net/netip"

	"github.com/berth-cluster/berth/agent/network"
	"github.com/berth-cluster/berth/agent/runtime"
	"github.com/berth-cluster/berth/shared/api"
)

// Network is what the agent needs of session networking (agent/network):
// a container is attached before it starts and detached after it is gone.
type Network interface {
	Attach(ctx context.Context, req network.Request) (network.Attachment, error)
	Detach(ctx context.Context, container string) error
	Address(container string) (netip.Addr, bool)
	Sweep(ctx context.Context, live map[string]bool) error
	Ensure(ctx context.Context) error
	Facts() network.Facts
}

// attachNetwork puts a container about to start on its session's network:
// the namespace it joins, /etc/hosts naming every container of the
// session, /etc/resolv.conf, and the BERTH_CLUSTER_* variables, which win
// over the session's own.
func (c *converger) attachNetwork(ctx context.Context, d api.DesiredContainer, s *runtime.Spec) error {
	if c.net == nil {
		return nil
	}
	ports := make([]network.Port, len(d.Ports))
	for i, p := range d.Ports {
		ports[i] = network.Port{Name: p.Name, Port: p.Port, Protocol: p.Protocol}
	}
	att, err := c.net.Attach(ctx, network.Request{ContainerID: d.ID, SessionID: d.SessionID, Index: d.Index,
		Size: max(d.ClusterSize, d.Index+1), Egress: !d.NoEgress, Hostname: runtimeHostname(d.ID), Ports: ports})
	if err != nil {
		return err
	}
	s.NetNS = att.NetNS
	s.Mounts = append(s.Mounts,
		runtime.Mount{Source: att.Hosts, Target: "/etc/hosts", ReadOnly: true},
		runtime.Mount{Source: att.ResolvConf, Target: "/etc/resolv.conf", ReadOnly: true})
	for k, v := range att.Env {
		s.Env[k] = v
	}
	return nil
}

// detachNetwork frees a gone container's network; a failure is logged and
// left to the next start's sweep.
func (c *converger) detachNetwork(ctx context.Context, id string) {
	if c.net == nil {
		return
	}
	if err := c.net.Detach(ctx, id); err != nil {
		c.log.Warn("could not detach a container's network", "container", id, "err", err)
	}
}

// address is a container's address on its session's network ("": none).
func (c *converger) address(id string) string {
	if c.net == nil {
		return ""
	}
	if a, ok := c.net.Address(id); ok {
		return a.String()
	}
	return ""
}

// runtimeHostname is the host name the runtime gives a container (its id,
// cut to HOST_NAME_MAX), which its /etc/hosts also names.
func runtimeHostname(id string) string {
	if len(id) > 64 {
		return id[:64]
	}
	return id
}

// networkInfo is the fingerprint's part about networking (nil: none).
func (a *Agent) networkInfo() *api.NodeNetwork {
	if a.cfg.Network == nil {
		return nil
	}
	f := a.cfg.Network.Facts()
	return &api.NodeNetwork{Mode: f.Mode, CNIPlugins: f.Plugins, Egress: f.Egress, CIDR: f.CIDR}
}
