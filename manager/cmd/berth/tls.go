package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-cluster/berth/shared/tlsgen"
)

// The tls commands take Nomad's single-dash flags (berth tls cert create
// -manager), which cobra's parser would read as shorthand letters: they
// parse their own arguments with Go's flag package, which accepts -flag and
// --flag alike.
func (c *cli) tlsCmd() *cobra.Command {
	t := &cobra.Command{
		Use:   "tls",
		Short: "Make the cluster's CA and the managers', agents' and users' certificates (no openssl needed)",
	}
	ca := &cobra.Command{Use: "ca", Short: "The cluster's certificate authority"}
	ca.AddCommand(&cobra.Command{
		Use:                "create " + caCreateUse,
		Short:              "Make a CA: DIR/NAME.pem and DIR/NAME-key.pem",
		DisableFlagParsing: true,
		RunE:               func(_ *cobra.Command, args []string) error { return c.tlsCACreate(args) },
	})
	cert := &cobra.Command{Use: "cert", Short: "Certificates signed by the cluster's CA"}
	cert.AddCommand(&cobra.Command{
		Use:                "create " + certCreateUse,
		Short:              "Make a certificate and key: DIR/NAME.pem and DIR/NAME-key.pem",
		DisableFlagParsing: true,
		RunE:               func(_ *cobra.Command, args []string) error { return c.tlsCertCreate(args) },
	})
	t.AddCommand(ca, cert)
	return t
}

const (
	caCreateUse   = "[-dir DIR] [-days N] [-name ca] [-force]"
	certCreateUse = "-manager|-agent|-cli [-dir DIR] [-name NAME] [-additional-dnsname N]... [-additional-ipaddress IP]... [-ca FILE -key FILE] [-days N] [-force]"
	defaultCAName = "ca"
	day           = 24 * time.Hour
)

// parseTLSFlags parses args with fs; -h prints the usage and ends the
// command successfully.
func (c *cli) parseTLSFlags(fs *flag.FlagSet, args []string, use, about string) (done bool, err error) {
	fs.SetOutput(c.stdout)
	fs.Usage = func() {
		fmt.Fprintf(c.stdout, "Usage: berth tls %s\n\n%s\n\nFlags:\n", use, about)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return true, nil
		}
		return true, err
	}
	if fs.NArg() > 0 {
		return true, fmt.Errorf("unexpected argument %q: berth tls %s takes only flags (flags go before arguments)", fs.Arg(0), fs.Name())
	}
	return false, nil
}

func (c *cli) tlsCACreate(args []string) error {
	fs := flag.NewFlagSet("ca create", flag.ContinueOnError)
	dir := fs.String("dir", ".", "directory to write the CA's files to")
	days := fs.Int("days", 1825, "days the CA is valid")
	name := fs.String("name", defaultCAName, "file prefix: writes NAME.pem and NAME-key.pem")
	cn := fs.String("common-name", "Berth cluster CA", "the CA's subject common name")
	force := fs.Bool("force", false, "overwrite existing files (every certificate the old CA signed stops being trusted)")
	if done, err := c.parseTLSFlags(fs, args, "ca create "+caCreateUse, "Makes the cluster's certificate authority (ECDSA P-256). Keep NAME-key.pem off the\n"+
		"nodes, offline if you can; they need only NAME.pem (-tls-ca, --ca-cert)."); done {
		return err
	}
	if err := checkFilePrefix(*name); err != nil {
		return err
	}
	if *days <= 0 {
		return fmt.Errorf("-days must be positive, not %d", *days)
	}
	ca, err := tlsgen.NewCA(time.Now(), *cn, time.Duration(*days)*day)
	if err != nil {
		return err
	}
	certFile, keyFile := tlsgen.Files(*dir, *name)
	if err := tlsgen.Write(certFile, ca.CertPEM, keyFile, ca.KeyPEM, *force); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "wrote CA certificate %s (%s, valid until %s)\n", certFile, *cn, ca.Cert.NotAfter.UTC().Format(time.DateOnly))
	fmt.Fprintf(c.stdout, "wrote CA key %s (mode 0600): it signs certificates the whole cluster trusts; keep it off the nodes\n", keyFile)
	return nil
}

func (c *cli) tlsCertCreate(args []string) error {
	fs := flag.NewFlagSet("cert create", flag.ContinueOnError)
	manager := fs.Bool("manager", false, "a manager's certificate: serves the API, and speaks Raft both ways (names "+tlsgen.ManagerDNSName+")")
	agent := fs.Bool("agent", false, "an agent's certificate: serves the agent's API to the managers")
	cliRole := fs.Bool("cli", false, "a client certificate for a user of the CLI")
	dir := fs.String("dir", ".", "directory to write the certificate's files to")
	caFile := fs.String("ca", "", "the CA certificate to sign with (default DIR/"+defaultCAName+".pem)")
	keyFile := fs.String("key", "", "the CA key to sign with (default DIR/"+defaultCAName+"-key.pem)")
	days := fs.Int("days", 365, "days the certificate is valid")
	name := fs.String("name", "", "file prefix: writes NAME.pem and NAME-key.pem (default: manager, agent or cli)")
	cn := fs.String("common-name", "", "the certificate's subject common name (default: NAME)")
	var dnsNames stringList
	var ips ipList
	fs.Var(&dnsNames, "additional-dnsname", "a DNS name the node is dialed at, besides localhost (repeatable)")
	fs.Var(&ips, "additional-ipaddress", "an IP address the node is dialed at, besides 127.0.0.1 and ::1 (repeatable)")
	force := fs.Bool("force", false, "overwrite existing files")
	if done, err := c.parseTLSFlags(fs, args, "cert create "+certCreateUse, "Makes a key and a certificate signed by the cluster's CA (ECDSA P-256). A manager's or\n"+
		"an agent's certificate must name every address it is dialed at (-additional-dnsname,\n"+
		"-additional-ipaddress): -advertise-http and -raft-addr hosts for managers, -advertise-addr\n"+
		"for agents."); done {
		return err
	}
	var role tlsgen.Role
	n := 0
	for r, on := range map[tlsgen.Role]bool{tlsgen.Manager: *manager, tlsgen.Agent: *agent, tlsgen.CLI: *cliRole} {
		if on {
			role, n = r, n+1
		}
	}
	if n != 1 {
		return errors.New("say what the certificate is for: exactly one of -manager, -agent, -cli")
	}
	if *name == "" {
		*name = string(role)
	}
	if *cn == "" {
		*cn = *name
	}
	if err := checkFilePrefix(*name); err != nil {
		return err
	}
	if *days <= 0 {
		return fmt.Errorf("-days must be positive, not %d", *days)
	}
	caCert, caKey := tlsgen.Files(*dir, defaultCAName)
	if *caFile != "" {
		caCert = *caFile
	}
	if *keyFile != "" {
		caKey = *keyFile
	}
	ca, err := tlsgen.LoadCA(caCert, caKey)
	if err != nil {
		return fmt.Errorf("%w (make one with: berth tls ca create, or name yours with -ca and -key)", err)
	}
	is, err := ca.Issue(time.Now(), tlsgen.Request{Role: role, CommonName: *cn, DNSNames: dnsNames, IPs: ips,
		Validity: time.Duration(*days) * day})
	if err != nil {
		return err
	}
	certOut, keyOut := tlsgen.Files(*dir, *name)
	if err := tlsgen.Write(certOut, is.CertPEM, keyOut, is.KeyPEM, *force); err != nil {
		return err
	}
	var addrs []string
	for _, ip := range is.Cert.IPAddresses {
		addrs = append(addrs, ip.String())
	}
	fmt.Fprintf(c.stdout, "wrote %s certificate %s (DNS: %s; IP: %s; valid until %s)\n", role, certOut,
		orNone(is.Cert.DNSNames), orNone(addrs), is.Cert.NotAfter.UTC().Format(time.DateOnly))
	fmt.Fprintf(c.stdout, "wrote key %s (mode 0600)\n", keyOut)
	return nil
}

func orNone(list []string) string {
	if len(list) == 0 {
		return "none"
	}
	return strings.Join(list, ", ")
}

func checkFilePrefix(name string) error {
	if name == "" || name != filepath.Base(name) || strings.HasPrefix(name, ".") {
		return fmt.Errorf("-name %q must be a plain file name prefix (use -dir for the directory)", name)
	}
	return nil
}

// stringList collects a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// ipList collects a repeatable IP address flag.
type ipList []net.IP

func (l *ipList) String() string {
	var out []string
	for _, ip := range *l {
		out = append(out, ip.String())
	}
	return strings.Join(out, ",")
}

func (l *ipList) Set(v string) error {
	ip := net.ParseIP(strings.TrimSpace(v))
	if ip == nil {
		return fmt.Errorf("%q is not an IP address", v)
	}
	*l = append(*l, ip)
	return nil
}
