package agent

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/client"
)

// AgentTokenHeader carries the cluster's agent join token on registration.
const AgentTokenHeader = "X-Berth-Agent-Token"

// Manager is the agent's view of the control plane.
type Manager interface {
	// Register introduces the agent; with an id and secret from an earlier
	// registration it re-registers under the same id.
	Register(ctx context.Context, req api.AgentRegister, secret string) (api.AgentRegistered, error)
	Heartbeat(ctx context.Context, id, secret string, hb api.AgentHeartbeat) (api.HeartbeatAnswer, error)
	// Report tells the managers of containers whose state changed.
	Report(ctx context.Context, id, secret string, changed []api.ContainerReport) error
	// Desired blocks until the desired containers change past index, or
	// wait passes.
	Desired(ctx context.Context, id, secret string, index uint64, wait time.Duration) (api.DesiredState, error)
}

// httpManager speaks to the managers' HTTP API, failing over between them.
type httpManager struct {
	addrs []string
	token string
	tls   *tls.Config // dials https:// managers
	// shared, when set, sends every call (Config.HTTPClient: agents of one
	// process sharing a pool of connections).
	shared *http.Client
	// http is one client for every call, so connections (and their TLS
	// handshakes) are reused between heartbeats.
	once sync.Once
	http *http.Client
}

// client calls the managers with the agent's secret; the join token goes
// only on registration, the one call that needs it, so it crosses the
// network as seldom as it can.
func (m *httpManager) client(secret string, join bool) (*client.Client, error) {
	h := http.Header{}
	if join {
		h.Set(AgentTokenHeader, m.token)
	}
	if m.shared != nil {
		return client.New(client.Config{Addrs: m.addrs, Token: secret, Header: h, MaxAttempts: 2 * len(m.addrs), HTTPClient: m.shared})
	}
	if m.tls == nil {
		// Go's default transport, as before TLS existed.
		return client.New(client.Config{Addrs: m.addrs, Token: secret, Header: h, MaxAttempts: 2 * len(m.addrs)})
	}
	m.once.Do(func() {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = m.tls
		m.http = &http.Client{Transport: tr}
	})
	return client.New(client.Config{Addrs: m.addrs, Token: secret, Header: h, MaxAttempts: 2 * len(m.addrs), HTTPClient: m.http})
}

func (m *httpManager) Register(ctx context.Context, req api.AgentRegister, secret string) (api.AgentRegistered, error) {
	var out api.AgentRegistered
	cl, err := m.client(secret, true)
	if err != nil {
		return out, err
	}
	if err := cl.Do(ctx, http.MethodPost, "/v1/agents/register", nil, req, &out); err != nil {
		return out, fmt.Errorf("register with the managers: %w", err)
	}
	return out, nil
}

func (m *httpManager) Heartbeat(ctx context.Context, id, secret string, hb api.AgentHeartbeat) (api.HeartbeatAnswer, error) {
	var out api.HeartbeatAnswer
	cl, err := m.client(secret, false)
	if err != nil {
		return out, err
	}
	if err := cl.Do(ctx, http.MethodPost, "/v1/agents/"+url.PathEscape(id)+"/heartbeat", nil, hb, &out); err != nil {
		return out, fmt.Errorf("heartbeat: %w", err)
	}
	return out, nil
}

func (m *httpManager) Report(ctx context.Context, id, secret string, changed []api.ContainerReport) error {
	cl, err := m.client(secret, false)
	if err != nil {
		return err
	}
	if err := cl.Do(ctx, http.MethodPost, "/v1/agents/"+url.PathEscape(id)+"/report", nil, api.AgentReport{Containers: changed}, nil); err != nil {
		return fmt.Errorf("report containers: %w", err)
	}
	return nil
}

func (m *httpManager) Desired(ctx context.Context, id, secret string, index uint64, wait time.Duration) (api.DesiredState, error) {
	var out api.DesiredState
	cl, err := m.client(secret, false)
	if err != nil {
		return out, err
	}
	q := url.Values{"index": {strconv.FormatUint(index, 10)}, "wait": {wait.String()}}
	if err := cl.Do(ctx, http.MethodGet, "/v1/agents/"+url.PathEscape(id)+"/desired", q, nil, &out); err != nil {
		return out, fmt.Errorf("fetch desired containers: %w", err)
	}
	return out, nil
}
