package raftnode

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/raft"
)

// tlsStream is a Raft stream layer over mutual TLS: every manager presents
// its certificate both ways, so only holders of a certificate from the
// cluster's CA can join the log traffic.
type tlsStream struct {
	net.Listener
	advertise net.Addr
	client    *tls.Config
}

// newTLSStream listens on bind with server (which must require client
// certificates) and dials peers with client.
func newTLSStream(bind string, advertise net.Addr, server, client *tls.Config) (*tlsStream, error) {
	if server == nil || client == nil {
		return nil, errors.New("raft over TLS needs both a server and a client TLS configuration")
	}
	ln, err := tls.Listen("tcp", bind, server)
	if err != nil {
		return nil, fmt.Errorf("listen for raft (TLS) on %s: %w", bind, err)
	}
	s := &tlsStream{Listener: ln, advertise: advertise, client: client}
	// As raft.NewTCPTransport: peers cannot dial 0.0.0.0.
	if tcp, ok := s.Addr().(*net.TCPAddr); !ok || tcp.IP == nil || tcp.IP.IsUnspecified() {
		ln.Close()
		return nil, fmt.Errorf("raft address %s is not one peers can dial: bind a specific address or set the advertise address", s.Addr())
	}
	return s, nil
}

// Addr is what peers dial: the advertised address, else the bound one.
func (s *tlsStream) Addr() net.Addr {
	if s.advertise != nil {
		return s.advertise
	}
	return s.Listener.Addr()
}

// Dial implements raft.StreamLayer; the server name checked against the
// peer's certificate is the host of its Raft address.
func (s *tlsStream) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: timeout}, Config: s.client}
	conn, err := d.Dial("tcp", string(addr))
	if err != nil {
		return nil, fmt.Errorf("dial raft peer %s over TLS: %w", addr, err)
	}
	return conn, nil
}
