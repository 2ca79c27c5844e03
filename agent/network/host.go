package network

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
)

// Host is what the network needs of the host's own networking: its routes
// (a session range must not shadow any) and its links (bridges are
// removed with their session, and leftovers swept).
type Host interface {
	// Routes lists the main table's IPv4 routes with a destination.
	Routes() ([]Route, error)
	// Links lists the names of the host's network interfaces.
	Links() ([]string, error)
	// DeleteLink removes an interface; a missing one is not an error.
	DeleteLink(name string) error
}

// Route is a host route as the collision check needs it.
type Route struct {
	Dst    netip.Prefix
	Device string
}

// System is the Host of the machine, through netlink.
type System struct{}

// Routes implements Host.
func (System) Routes() ([]Route, error) {
	rs, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("list routes: %w", err)
	}
	var out []Route
	for _, r := range rs {
		if r.Dst == nil {
			continue // the default route: it is where egress goes
		}
		ones, _ := r.Dst.Mask.Size()
		a, ok := netip.AddrFromSlice(r.Dst.IP.To4())
		if !ok {
			continue
		}
		if ones == 0 {
			continue
		}
		dev := ""
		if l, err := netlink.LinkByIndex(r.LinkIndex); err == nil {
			dev = l.Attrs().Name
		}
		out = append(out, Route{Dst: netip.PrefixFrom(a, ones).Masked(), Device: dev})
	}
	return out, nil
}

// Links implements Host.
func (System) Links() ([]string, error) {
	ls, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	out := make([]string, 0, len(ls))
	for _, l := range ls {
		out = append(out, l.Attrs().Name)
	}
	return out, nil
}

// DeleteLink implements Host.
func (System) DeleteLink(name string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return fmt.Errorf("find link %s: %w", name, err)
	}
	if err := netlink.LinkDel(l); err != nil {
		return fmt.Errorf("delete link %s: %w", name, err)
	}
	return nil
}

// checkRoutes refuses a session range that overlaps a route of the host
// (other than the agent's own session bridges): sessions would shadow, or
// be shadowed by, a network the host already reaches.
func checkRoutes(h Host, cidr netip.Prefix, bridgePrefix string) error {
	rs, err := h.Routes()
	if err != nil {
		return err
	}
	for _, r := range rs {
		if blockOf(bridgePrefix, r.Device) >= 0 {
			continue
		}
		if r.Dst.Overlaps(cidr) {
			return fmt.Errorf("-session-cidr %s collides with the host's route to %s (dev %s): choose a range the host does not route, e.g. -session-cidr 10.89.0.0/16", cidr, r.Dst, r.Device)
		}
	}
	return nil
}
