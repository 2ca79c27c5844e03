package httpapi

import (
	"encoding/json"
	"regexp"
	"strconv"

	"github.com/berth-cluster/berth/manager/apierr"
	"github.com/berth-cluster/berth/shared/api"
)

// sessionPortBody is one of a create's ports as it arrives: the number
// raw, so that a fraction or a string is reported, not folded.
type sessionPortBody struct {
	Name     string          `json:"name"`
	Port     json.RawMessage `json:"port"`
	Protocol string          `json:"protocol"`
}

// portName is what a port may be called: it will name the session's app
// in addresses (/s/{session}/{name}/), so a DNS label of 1–32.
var portName = regexp.MustCompile(`^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$`)

// checkPorts reads the ports a session declares: at most
// api.MaxSessionPorts, each with a unique name, a port from 1 to 65535
// and the protocol http or tcp. Every problem is reported.
func checkPorts(in []sessionPortBody, bad *apierr.Fields) []api.SessionPort {
	if len(in) > api.MaxSessionPorts {
		bad.Add("ports", "a session declares at most %d ports, not %d", api.MaxSessionPorts, len(in))
		return nil
	}
	out := make([]api.SessionPort, 0, len(in))
	seen := map[string]int{}
	for i, p := range in {
		field := func(f string) string { return "ports[" + strconv.Itoa(i) + "]." + f }
		ok := true
		switch j, dup := seen[p.Name]; {
		case !portName.MatchString(p.Name):
			bad.Add(field("name"), "%s %q must be 1 to 32 lower-case letters, digits and -, starting with a letter", field("name"), p.Name)
			ok = false
		case dup:
			bad.Add(field("name"), "%s %q is also the name of ports[%d]: names must be unique", field("name"), p.Name, j)
			ok = false
		default:
			seen[p.Name] = i
		}
		n, whole := jsonWholeIn(p.Port, 1, 65535)
		if !whole {
			bad.Add(field("port"), "%s must be a whole number from 1 to 65535", field("port"))
			ok = false
		}
		if p.Protocol != api.PortHTTP && p.Protocol != api.PortTCP {
			bad.Add(field("protocol"), "%s must be http or tcp", field("protocol"))
			ok = false
		}
		if ok {
			out = append(out, api.SessionPort{Name: p.Name, Port: int(n), Protocol: p.Protocol})
		}
	}
	return out
}
