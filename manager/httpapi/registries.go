package httpapi

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/berth-cluster/berth/manager/apierr"
	"github.com/berth-cluster/berth/manager/fsm"
	"github.com/berth-cluster/berth/manager/secrets"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/imageref"
	"github.com/berth-cluster/berth/shared/registry"
)

// Registries are cluster objects: admins read them, superadmins change
// them. The password is write-only: sealed here with the managers'
// -secrets-key-file before it is proposed (the log, snapshots and backups
// hold only the sealed bytes), opened only to hand it to an agent that
// must pull, never returned, never logged.

// Bounds of a registry's fields.
const (
	maxRegistryUsername = 255
	maxRegistryPassword = 4096
	maxRegistryCA       = 64 << 10
	// registryProbeTimeout bounds the check that a registry answers at
	// its URL before it is stored.
	registryProbeTimeout = 10 * time.Second
)

// registryBody is POST /v1/registries and PATCH /v1/registries/{name}.
type registryBody struct {
	Name         *string `json:"name"`
	URL          *string `json:"url"`
	Username     *string `json:"username"`
	Password     *string `json:"password"`
	InsecureHTTP *bool   `json:"insecure_http"`
	CAPEM        *string `json:"ca_pem"`
}

func registryView(r *state.Registry) api.Registry {
	return api.Registry{Name: r.Name, URL: r.URL, Host: r.Host, Username: r.Username, PasswordSet: len(r.Password) > 0,
		InsecureHTTP: r.InsecureHTTP, CAPEM: r.CAPEM, CreatedAt: r.CreatedAt, ModifiedAt: r.ModifiedAt}
}

func (a *API) listRegistries(c *Call) error {
	rs, err := a.cluster.Read().Registries()
	if err != nil {
		return err
	}
	items := make([]api.Registry, 0, len(rs))
	for _, r := range rs {
		items = append(items, registryView(r))
	}
	out, err := pageOf(c, items, func(r api.Registry) string { return r.Name })
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

func (a *API) getRegistry(c *Call) error {
	r, err := a.pathRegistry(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, registryView(r))
}

func (a *API) pathRegistry(c *Call) (*state.Registry, error) {
	name := c.R.PathValue("name")
	r, err := a.cluster.Read().Registry(name)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, apierr.New(apierr.NotFound, "no registry named %s", name)
	}
	return r, nil
}

// registryFields is a registry as a request leaves it: the old record's
// fields with the body's on top (a create starts from nothing).
type registryFields struct {
	name, url, username, password, ca string
	insecure, passwordSent            bool
}

func (a *API) createRegistry(c *Call) error {
	var b registryBody
	if err := c.Decode(&b); err != nil {
		return err
	}
	f := registryFields{}
	apply(&f, b)
	var bad apierr.Fields
	checkRegistryName(b.Name, &bad)
	host := checkRegistryFields(f, b, &bad)
	if err := bad.Err(); err != nil {
		return err
	}
	sealed, keyID, err := a.sealRegistryPassword(c, f)
	if err != nil {
		return err
	}
	if err := a.probeRegistry(c.R.Context(), f, host); err != nil {
		return err
	}
	now := a.now().UTC()
	rec := state.Registry{Name: f.name, URL: strings.TrimSuffix(f.url, "/"), Host: imageref.HostKey(host), Username: f.username,
		Password: sealed, KeyID: keyID, InsecureHTTP: f.insecure, CAPEM: f.ca, CreatedAt: now, ModifiedAt: now}
	v, err := propose[*state.Registry](c, fsm.RegistryCreate{Registry: rec})
	if err != nil {
		return err
	}
	a.log.Info("registry created", "registry", f.name, "url", rec.URL, "by", c.Who.User.Email, "password_set", len(sealed) > 0)
	return c.JSON(http.StatusCreated, registryView(v))
}

func (a *API) updateRegistry(c *Call) error {
	old, err := a.pathRegistry(c)
	if err != nil {
		return err
	}
	var b registryBody
	if err := c.Decode(&b); err != nil {
		return err
	}
	var bad apierr.Fields
	if b.Name != nil && *b.Name != old.Name {
		bad.Add("name", "the name is the registry's key and cannot be changed; add a registry under the new name and remove this one")
	}
	if b.URL == nil && b.Username == nil && b.Password == nil && b.InsecureHTTP == nil && b.CAPEM == nil {
		return apierr.New(apierr.Invalid, "the request changes nothing; send at least one of url, username, password, insecure_http, ca_pem")
	}
	f := registryFields{name: old.Name, url: old.URL, username: old.Username, insecure: old.InsecureHTTP, ca: old.CAPEM}
	apply(&f, b)
	// The stored password counts as given: a username cleared under it
	// would leave a password for nobody.
	if !f.passwordSent && len(old.Password) > 0 {
		f.password = "(stored)"
	}
	host := checkRegistryFields(f, b, &bad)
	if err := bad.Err(); err != nil {
		return err
	}
	u := fsm.RegistryUpdate{Name: old.Name, ModifiedAt: a.now().UTC(), Username: b.Username, InsecureHTTP: b.InsecureHTTP, CAPEM: b.CAPEM}
	if b.URL != nil {
		trimmed, key := strings.TrimSuffix(f.url, "/"), imageref.HostKey(host)
		u.URL, u.Host = &trimmed, &key
	}
	if b.Password != nil {
		sealed, keyID, err := a.sealRegistryPassword(c, f)
		if err != nil {
			return err
		}
		u.Password, u.KeyID = &sealed, &keyID
	}
	if b.URL != nil || b.InsecureHTTP != nil || b.CAPEM != nil {
		if err := a.probeRegistry(c.R.Context(), f, host); err != nil {
			return err
		}
	}
	v, err := propose[*state.Registry](c, u)
	if err != nil {
		return err
	}
	a.log.Info("registry updated", "registry", old.Name, "by", c.Who.User.Email, "password_changed", b.Password != nil)
	return c.JSON(http.StatusOK, registryView(v))
}

func (a *API) deleteRegistry(c *Call) error {
	if err := c.Propose(fsm.RegistryDelete{Name: c.R.PathValue("name")}); err != nil {
		return err
	}
	a.log.Info("registry removed", "registry", c.R.PathValue("name"), "by", c.Who.User.Email)
	c.W.WriteHeader(http.StatusNoContent)
	return nil
}

func apply(f *registryFields, b registryBody) {
	if b.Name != nil {
		f.name = *b.Name
	}
	if b.URL != nil {
		f.url = *b.URL
	}
	if b.Username != nil {
		f.username = *b.Username
	}
	if b.Password != nil {
		f.password, f.passwordSent = *b.Password, true
	}
	if b.InsecureHTTP != nil {
		f.insecure = *b.InsecureHTTP
	}
	if b.CAPEM != nil {
		f.ca = *b.CAPEM
	}
}

func checkRegistryName(name *string, bad *apierr.Fields) {
	switch {
	case name == nil || *name == "":
		bad.Add("name", "name is required")
	case utf8.RuneCountInString(*name) > maxNameLen:
		bad.Add("name", "name must be at most %d characters", maxNameLen)
	case !policyNameChars(*name) || *name == "." || *name == "..":
		bad.Add("name", "name may contain only letters, digits, '.', '_' and '-'")
	}
}

// checkRegistryFields checks a registry as the request leaves it and
// returns the URL's host ("" when the URL is bad).
func checkRegistryFields(f registryFields, b registryBody, bad *apierr.Fields) string {
	host := ""
	u, err := url.Parse(f.url)
	switch {
	case f.url == "":
		bad.Add("url", "url is required: https://HOST[:PORT] (or http://HOST[:PORT] with insecure_http)")
	case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		bad.Add("url", "url %q must be https://HOST[:PORT], or http://HOST[:PORT] with insecure_http", f.url)
	case u.User != nil:
		bad.Add("url", "url must not hold credentials; send them as username and password")
	case (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "":
		bad.Add("url", "url must be the registry's root, https://HOST[:PORT], with no path: references name the repositories")
	case u.Scheme == "http" && !f.insecure:
		bad.Add("url", "url is plain http://: set insecure_http to true to pull from it without TLS (anyone on the path can read and change what is pulled)")
	case u.Scheme == "https" && f.insecure:
		bad.Add("insecure_http", "insecure_http is for http:// URLs; this url is https://")
	default:
		host = u.Host
		if _, err := imageref.Parse(host + "/x"); err != nil {
			bad.Add("url", "the host %s of url cannot appear in an image reference", host)
			host = ""
		}
	}
	switch {
	case utf8.RuneCountInString(f.username) > maxRegistryUsername:
		bad.Add("username", "username must be at most %d characters", maxRegistryUsername)
	case strings.IndexFunc(f.username, unicode.IsControl) >= 0 || strings.Contains(f.username, ":"):
		bad.Add("username", "username must not contain control characters or ':'")
	}
	if b.Password != nil {
		switch {
		case len(*b.Password) > maxRegistryPassword:
			bad.Add("password", "password must be at most %d bytes", maxRegistryPassword)
		case strings.IndexFunc(*b.Password, unicode.IsControl) >= 0:
			bad.Add("password", "password must not contain control characters")
		}
	}
	if f.password != "" && f.username == "" {
		bad.Add("username", "a password needs a username")
	}
	if len(f.ca) > maxRegistryCA {
		bad.Add("ca_pem", "ca_pem must be at most %d bytes", maxRegistryCA)
	} else if err := registry.CheckCA(f.ca); err != nil {
		bad.Add("ca_pem", "%s", err.Error())
	} else if f.ca != "" && f.insecure {
		bad.Add("ca_pem", "ca_pem is for https:// registries; an insecure_http registry has no TLS to check")
	}
	return host
}

// sealRegistryPassword seals the request's password for the record ("" →
// none). Without a key a password is refused: storing it in the clear in
// the log is the one thing that must not happen.
func (a *API) sealRegistryPassword(c *Call, f registryFields) ([]byte, string, error) {
	if !f.passwordSent || f.password == "" {
		return nil, "", nil
	}
	sealed, err := a.cfg.Secrets.Seal(a.rnd, []byte(f.password), registrySecretContext(f.name))
	if errors.Is(err, secrets.ErrNoKey) {
		return nil, "", apierr.Field(apierr.Conflict, "password", "a registry password cannot be stored: "+err.Error()+"; or add the registry without a password")
	}
	if err != nil {
		return nil, "", err
	}
	return sealed, a.cfg.Secrets.KeyID(), nil
}

func registrySecretContext(name string) string { return "registry/" + name }

// probeRegistry checks that the registry answers at its URL as its object
// says (TLS with its CA, or plain HTTP): a wrong URL or CA is refused now,
// not found out by every pull.
func (a *API) probeRegistry(ctx context.Context, f registryFields, host string) error {
	ctx, cancel := context.WithTimeout(ctx, registryProbeTimeout)
	defer cancel()
	err := registry.Probe(ctx, api.RegistryCredentials{Name: f.name, Host: host, InsecureHTTP: f.insecure, CAPEM: f.ca})
	if err != nil {
		return apierr.Field(apierr.Unprocessable, "url", "the registry does not answer as its settings say: "+err.Error())
	}
	return nil
}

// registryCredentials are the credentials of the registries that serve
// hosts (image reference hosts), with their passwords opened: for an agent
// that must pull from them. A password that does not open (a manager
// without the key, or with another) is an Error the agent's pull reports.
func (a *API) registryCredentials(tx *state.Txn, hosts []string) ([]api.RegistryCredentials, error) {
	var out []api.RegistryCredentials
	seen := map[string]bool{}
	for _, h := range hosts {
		key := imageref.HostKey(h)
		if seen[key] {
			continue
		}
		seen[key] = true
		r, err := tx.RegistryForHost(key)
		if err != nil {
			return nil, err
		}
		if r == nil {
			continue
		}
		out = append(out, a.openRegistry(r))
	}
	return out, nil
}

func (a *API) openRegistry(r *state.Registry) api.RegistryCredentials {
	u, _ := url.Parse(r.URL)
	host := r.Host
	if u != nil && u.Host != "" {
		host = u.Host
	}
	c := api.RegistryCredentials{Name: r.Name, Host: host, InsecureHTTP: r.InsecureHTTP, Username: r.Username, CAPEM: r.CAPEM}
	if len(r.Password) > 0 {
		plain, err := a.cfg.Secrets.Open(r.Password, registrySecretContext(r.Name))
		if err != nil {
			c.Error = "the manager that answered cannot open the registry's password (sealed with key " + r.KeyID +
				", its key is " + keyIDOrNone(a.cfg.Secrets) + "): " + err.Error()
			a.log.Error("registry password does not open", "registry", r.Name, "key_id", r.KeyID, "err", err)
		} else {
			c.Password = string(plain)
		}
	}
	return c
}

func keyIDOrNone(b *secrets.Box) string {
	if id := b.KeyID(); id != "" {
		return id
	}
	return "none"
}
