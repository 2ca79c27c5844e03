package network

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
)

// Firewall applies the agent's rules to the host. The product runs the
// host's iptables (nf_tables or legacy, whichever its iptables is);
// tests of the rule logic use a fake.
type Firewall interface {
	// Restore replaces the agent's chains atomically with the rules of an
	// iptables-restore "filter" table (other chains untouched).
	Restore(ctx context.Context, rules string) error
	// EnsureFirst makes `-j chain` the first rule of builtin.
	EnsureFirst(ctx context.Context, builtin, chain string) error
}

// Iptables is the Firewall of the host's iptables binaries.
type Iptables struct{}

// CheckIptables finds iptables and iptables-restore, or says where they
// come from.
func CheckIptables() error {
	for _, b := range []string{"iptables", "iptables-restore"} {
		if _, err := exec.LookPath(b); err != nil {
			return fmt.Errorf("%s not found: the agent keeps sessions apart with iptables rules; install Debian's iptables (apt-get install iptables)", b)
		}
	}
	return nil
}

// Restore implements Firewall.
func (Iptables) Restore(ctx context.Context, rules string) error {
	cmd := exec.CommandContext(ctx, "iptables-restore", "--noflush", "-w", "10")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("iptables-restore: %w: %s", err, bytes.TrimSpace(out))
	}
	return nil
}

// EnsureFirst implements Firewall: a jump that is missing, or that other
// rules (another tool's) went above, is put back at the top. Old jumps go
// and the new one comes in one iptables-restore transaction, so the chain
// is never without it.
func (ipt Iptables) EnsureFirst(ctx context.Context, builtin, chain string) error {
	out, err := exec.CommandContext(ctx, "iptables", "-w", "10", "-S", builtin).Output()
	if err != nil {
		return fmt.Errorf("iptables -S %s: %w", builtin, err)
	}
	want := "-A " + builtin + " -j " + chain
	var rules []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "-A ") {
			rules = append(rules, strings.TrimSpace(l))
		}
	}
	if len(rules) > 0 && rules[0] == want {
		return nil
	}
	var b strings.Builder
	b.WriteString("*filter\n")
	for _, r := range rules {
		if r == want {
			fmt.Fprintf(&b, "-D %s -j %s\n", builtin, chain)
		}
	}
	fmt.Fprintf(&b, "-I %s 1 -j %s\nCOMMIT\n", builtin, chain)
	return ipt.Restore(ctx, b.String())
}

// sessionRule is what the rules need of one session.
type sessionRule struct {
	subnet netip.Prefix
	egress bool
}

// chains are the agent's two chains, jumped to first from INPUT (what
// sessions send to the host itself) and FORWARD (what they send through
// it).
func chains(prefix string) (input, forward string) {
	return prefix + "-INPUT", prefix + "-FORWARD"
}

// renderRules is the whole of the agent's rules for the sessions it has,
// as one iptables-restore input. Every rule is here and nowhere else; the
// order is the policy:
//
//   - to the host: replies to what the host opened, the allowed ports,
//     then nothing;
//   - through the host: replies into sessions; within a session (bridged
//     traffic, seen here only where br_netfilter passes it to iptables);
//     then never the metadata range, never another session, never a new
//     connection into a session from elsewhere, never beyond the node
//     for a session without egress; the rest (egress) is accepted, so a
//     host whose FORWARD policy is DROP still lets it out.
func renderRules(prefix string, cidr netip.Prefix, allow []HostPort, sessions []sessionRule) string {
	in, fwd := chains(prefix)
	c := cidr.String()
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	w("*filter")
	w(":%s - [0:0]", in)
	w(":%s - [0:0]", fwd)
	w("-A %s -s %s -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT", in, c)
	for _, p := range allow {
		w("-A %s -s %s -p %s -m %s --dport %d -j ACCEPT", in, c, p.Proto, p.Proto, p.Port)
	}
	w("-A %s -s %s -j DROP", in, c)
	w("-A %s -d %s -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT", fwd, c)
	for _, s := range sessions {
		w("-A %s -s %s -d %s -j ACCEPT", fwd, s.subnet, s.subnet)
	}
	w("-A %s -s %s -d %s -j DROP", fwd, c, MetadataRange)
	w("-A %s -s %s -d %s -j DROP", fwd, c, c)
	w("-A %s -d %s -j DROP", fwd, c)
	for _, s := range sessions {
		if !s.egress {
			w("-A %s -s %s -j DROP", fwd, s.subnet)
		}
	}
	w("-A %s -s %s -j ACCEPT", fwd, c)
	w("COMMIT")
	return b.String()
}
