// Package client is the Go client of the Berth HTTP API (docs/API.md). The
// CLI speaks to the managers only through it, and tests of the manager use it.
//
// A Client may know several managers. Any manager serves any request, so on a
// connection failure, or when a manager answers 503 with the no-leader
// problem, the request is tried on the next address, a bounded number of
// times, with a short backoff after each full pass over the addresses.
package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/sign"
	"github.com/berth-cluster/berth/shared/version"
)

const (
	defaultBackoff    = 200 * time.Millisecond
	maxBackoff        = 2 * time.Second
	maxErrorBodyBytes = 512
)

// Config says where the managers are and how to authenticate.
type Config struct {
	// Addrs are base URLs of managers, e.g. http://127.0.0.1:8080. At least
	// one is required.
	Addrs []string
	// Token is a bearer token from login. When set, it is used and the
	// keypair is ignored.
	Token string
	// AccessKey and SecretKey sign each request (keypair auth) when Token is
	// empty and both are set.
	AccessKey, SecretKey string
	// HTTPClient sends the requests; nil means a client with
	// http.DefaultTransport and no overall timeout (use the context).
	HTTPClient *http.Client
	// TLS is used to dial https:// managers when HTTPClient is nil: set
	// RootCAs to trust a private CA (tlsfiles.Files{CA: ...}.Client()).
	// nil means the system roots.
	TLS *tls.Config
	// Now is the clock used to date signed requests; nil means time.Now.
	Now func() time.Time
	// MaxAttempts bounds how many times one call is sent in all, across
	// addresses; 0 means twice per address, at least 3.
	MaxAttempts int
	// Header is sent with every request (an agent's join token, say).
	Header http.Header
	// RetryBackoff is the wait after the first full pass over the addresses
	// fails; it grows linearly with each further pass, up to 2s. 0 means
	// 200ms; a negative value means no wait.
	RetryBackoff time.Duration
}

// Client calls the API. It is safe for concurrent use.
type Client struct {
	addrs       []*url.URL
	token       string
	accessKey   string
	secretKey   string
	http        *http.Client
	now         func() time.Time
	maxAttempts int
	backoff     time.Duration
	header      http.Header
	// preferred is the index of the address that last answered; calls
	// start there.
	preferred atomic.Int64
	// lastSigned is the UnixNano of the last signing time used: each
	// signed request is dated after the one before, so two identical
	// requests never share a signature (a manager accepts one only once),
	// however coarse the clock.
	lastSigned atomic.Int64
}

// New checks cfg and returns a Client.
func New(cfg Config) (*Client, error) {
	if len(cfg.Addrs) == 0 {
		return nil, errors.New("creating API client: no manager address given (for example http://127.0.0.1:8080)")
	}
	c := &Client{
		token:       cfg.Token,
		accessKey:   cfg.AccessKey,
		secretKey:   cfg.SecretKey,
		http:        cfg.HTTPClient,
		now:         cfg.Now,
		maxAttempts: cfg.MaxAttempts,
		backoff:     cfg.RetryBackoff,
		header:      cfg.Header.Clone(),
	}
	for _, a := range cfg.Addrs {
		u, err := parseAddr(a)
		if err != nil {
			return nil, fmt.Errorf("creating API client: %w", err)
		}
		c.addrs = append(c.addrs, u)
	}
	if (cfg.AccessKey == "") != (cfg.SecretKey == "") {
		return nil, errors.New("creating API client: the access key and the secret key must be given together")
	}
	if c.http == nil {
		c.http = &http.Client{}
		if cfg.TLS != nil {
			tr := http.DefaultTransport.(*http.Transport).Clone()
			tr.TLSClientConfig = cfg.TLS
			c.http.Transport = tr
		}
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.maxAttempts <= 0 {
		c.maxAttempts = max(3, 2*len(c.addrs))
	}
	if c.backoff == 0 {
		c.backoff = defaultBackoff
	}
	return c, nil
}

func parseAddr(a string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(a))
	if err != nil {
		return nil, fmt.Errorf("manager address %q must be a URL starting with http:// or https://: %w", a, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("manager address %q must start with http:// or https://", a)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("manager address %q has no host", a)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("manager address %q must not carry a query, fragment or user info", a)
	}
	return u, nil
}

// Addrs returns the manager base URLs the client was made with.
func (c *Client) Addrs() []string {
	out := make([]string, len(c.addrs))
	for i, u := range c.addrs {
		out[i] = u.String()
	}
	return out
}

// HTTPError is an error response that is not application/problem+json.
type HTTPError struct {
	Status int
	// Body is the start of the response body.
	Body string
}

func (e *HTTPError) Error() string {
	if e.Body == "" {
		return fmt.Sprintf("%d %s", e.Status, http.StatusText(e.Status))
	}
	return fmt.Sprintf("%d %s: %s", e.Status, http.StatusText(e.Status), e.Body)
}

// Do sends one JSON call. path is the escaped path below the manager's base
// URL, e.g. "/v1/users/" + url.PathEscape(email); query may be nil. in is
// encoded as the JSON body (nil sends none). On a 2xx answer the body is
// decoded into out unless out is nil or the status is 204. An error answer is
// returned as an *api.Problem when the manager sent one (use errors.As), else
// as an *HTTPError.
func (c *Client) Do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	return c.doJSON(ctx, true, method, path, query, in, out)
}

func (c *Client) doJSON(ctx context.Context, auth bool, method, path string, query url.Values, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return fmt.Errorf("%s %s: encoding request body: %w", method, path, err)
		}
	}
	ct := ""
	if body != nil {
		ct = "application/json"
	}
	resp, err := c.send(ctx, auth, method, path, query, bytesPayload(body), ct)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil || resp.StatusCode == http.StatusNoContent {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("%s %s: decoding %d response: %w", method, path, resp.StatusCode, err)
	}
	return nil
}

// DoRaw sends body (which may be nil) with the given content type and returns
// the 2xx response for the caller to read and close; it is meant for CSV,
// text and file transfers. A body that is an io.ReaderAt and io.Seeker (an
// *os.File) is streamed from its current offset to its end: it is read once
// for its SHA-256, then sent, and sent again from the same offset to another
// manager on a retry. Any other body is read into memory first, for the same
// reasons. Error answers are returned as by Do, with the response already
// closed.
func (c *Client) DoRaw(ctx context.Context, method, path string, query url.Values, body io.Reader, contentType string) (*http.Response, error) {
	p := bytesPayload(nil)
	var err error
	switch b := body.(type) {
	case nil:
	case readerAtSeeker:
		p, err = streamPayload(b)
	default:
		var all []byte
		if all, err = io.ReadAll(body); err == nil {
			p = bytesPayload(all)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%s %s: reading request body: %w", method, path, err)
	}
	return c.send(ctx, true, method, path, query, p, contentType)
}

type readerAtSeeker interface {
	io.ReaderAt
	io.Seeker
}

// payload is a request body and its X-Berth-Content-SHA256: bytes in memory,
// or a section of a file, each attempt reading it afresh.
type payload struct {
	mem  []byte
	file io.ReaderAt
	off  int64
	size int64
	hash string
}

func bytesPayload(b []byte) payload {
	return payload{mem: b, size: int64(len(b)), hash: sign.ContentHash(b)}
}

// streamPayload hashes r from its current offset to its end without keeping
// it; the bytes are read again when each attempt sends them.
func streamPayload(r readerAtSeeker) (payload, error) {
	off, err := r.Seek(0, io.SeekCurrent)
	if err != nil {
		return payload{}, err
	}
	end, err := r.Seek(0, io.SeekEnd)
	if err != nil {
		return payload{}, err
	}
	if _, err := r.Seek(off, io.SeekStart); err != nil {
		return payload{}, err
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(r, off, end-off)); err != nil {
		return payload{}, err
	}
	return payload{file: r, off: off, size: end - off, hash: hex.EncodeToString(h.Sum(nil))}, nil
}

// reader is a fresh reader of the whole body. A section reader keeps its own
// offset, so a transport still reading an earlier attempt's body cannot move
// this one's.
func (p payload) reader() io.Reader {
	if p.file != nil {
		return io.NewSectionReader(p.file, p.off, p.size)
	}
	return bytes.NewReader(p.mem)
}

// send performs the call with failover and returns a 2xx response, or the
// error the last answer or attempt produced.
func (c *Client) send(ctx context.Context, auth bool, method, path string, query url.Values, body payload, contentType string) (*http.Response, error) {
	what := method + " " + path
	start := int(c.preferred.Load())
	var lastErr error
	for attempt := 0; attempt < c.maxAttempts; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("%s: %w", what, joinLast(err, lastErr))
		}
		if attempt > 0 && attempt%len(c.addrs) == 0 {
			if err := c.wait(ctx, attempt/len(c.addrs)); err != nil {
				return nil, fmt.Errorf("%s: %w", what, joinLast(err, lastErr))
			}
		}
		i := (start + attempt) % len(c.addrs)
		resp, retry, err := c.attempt(ctx, auth, c.addrs[i], method, path, query, body, contentType)
		if err == nil {
			c.preferred.Store(int64(i))
			return resp, nil
		}
		if !retry {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		lastErr = fmt.Errorf("%s: %w", c.addrs[i].Host, err)
	}
	return nil, fmt.Errorf("%s: no manager answered after %d attempts (%s): %w",
		what, c.maxAttempts, strings.Join(c.Addrs(), ", "), lastErr)
}

// joinLast reports a context error together with the failure that led to
// the retry it interrupted.
func joinLast(ctxErr, last error) error {
	if last == nil {
		return ctxErr
	}
	return fmt.Errorf("%w (after: %w)", ctxErr, last)
}

func (c *Client) wait(ctx context.Context, pass int) error {
	if c.backoff < 0 {
		return nil
	}
	d := min(c.backoff*time.Duration(pass), maxBackoff)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// attempt sends the request to one manager. retry says whether another
// manager may be tried.
func (c *Client) attempt(ctx context.Context, auth bool, base *url.URL, method, path string, query url.Values, body payload, contentType string) (*http.Response, bool, error) {
	req, err := c.newRequest(ctx, auth, base, method, path, query, body, contentType)
	if err != nil {
		return nil, false, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, false, err
		}
		return nil, retryable(method, err), err
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, false, nil
	}
	defer resp.Body.Close()
	apiErr := decodeError(resp)
	var p *api.Problem
	if errors.As(apiErr, &p) && resp.StatusCode == http.StatusServiceUnavailable && p.Type == api.ProblemNoLeader {
		return nil, true, apiErr
	}
	return nil, false, apiErr
}

func (c *Client) newRequest(ctx context.Context, auth bool, base *url.URL, method, path string, query url.Values, body payload, contentType string) (*http.Request, error) {
	if !strings.HasPrefix(path, "/") {
		return nil, fmt.Errorf("path %q must start with /", path)
	}
	u, err := url.Parse(strings.TrimRight(base.String(), "/") + path)
	if err != nil {
		return nil, fmt.Errorf("building URL for path %q: %w", path, err)
	}
	if u.RawQuery != "" {
		return nil, fmt.Errorf("path %q must not carry a query; pass it as query values", path)
	}
	u.RawQuery = query.Encode()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("building request: %w", err)
	}
	if body.size > 0 {
		req.Body = io.NopCloser(body.reader())
		req.ContentLength = body.size
	}
	// Every request says what its body hashes to; the manager checks the
	// body against it as it arrives, and a signature covers it.
	req.Header.Set(sign.ContentHeader, body.hash)
	req.Header.Set("Accept", "application/json, "+api.ProblemContentType+", */*;q=0.5")
	req.Header.Set("User-Agent", "berth-client/"+version.Version)
	for k, vs := range c.header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if contentType != "" && body.size > 0 {
		req.Header.Set("Content-Type", contentType)
	}
	if !auth {
		return req, nil
	}
	switch {
	case c.token != "":
		req.Header.Set("Authorization", "Bearer "+c.token)
	case c.accessKey != "":
		if err := sign.SignRequestHash(req, c.accessKey, c.secretKey, body.hash, c.signingTime()); err != nil {
			return nil, err
		}
	}
	return req, nil
}

// signingTime is now, or a nanosecond after the last signing time when the
// clock has not moved on since.
func (c *Client) signingTime() time.Time {
	n := c.now().UnixNano()
	for {
		last := c.lastSigned.Load()
		next := max(n, last+1)
		if c.lastSigned.CompareAndSwap(last, next) {
			return time.Unix(0, next).UTC()
		}
	}
}

// retryable says whether a transport error allows trying another manager:
// always when the connection could not be made (nothing was sent), otherwise
// only for idempotent methods.
func retryable(method string, err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// decodeError turns an error response into an *api.Problem or *HTTPError.
func decodeError(resp *http.Response) error {
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	raw, readErr := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if mt == api.ProblemContentType && readErr == nil {
		var p api.Problem
		if err := json.Unmarshal(raw, &p); err == nil {
			if p.Status == 0 {
				p.Status = resp.StatusCode
			}
			if p.Title == "" {
				p.Title = http.StatusText(resp.StatusCode)
			}
			return &p
		}
	}
	text := strings.TrimSpace(string(raw))
	if len(text) > maxErrorBodyBytes {
		text = strings.ToValidUTF8(text[:maxErrorBodyBytes], "") + "…"
	}
	return &HTTPError{Status: resp.StatusCode, Body: text}
}
