package api

import "time"

// Registry is a container registry the agents pull from with its own
// credentials and TLS settings (GET /v1/registries): image references whose
// host is the host of URL use it. The password is never shown: PasswordSet
// says whether one is stored.
type Registry struct {
	Name string `json:"name"`
	// URL is https://HOST[:PORT], or http://HOST[:PORT] with InsecureHTTP.
	URL          string    `json:"url"`
	Host         string    `json:"host"`
	Username     string    `json:"username"`
	PasswordSet  bool      `json:"password_set"`
	InsecureHTTP bool      `json:"insecure_http"`
	CAPEM        string    `json:"ca_pem"`
	CreatedAt    time.Time `json:"created_at"`
	ModifiedAt   time.Time `json:"modified_at"`
}

// RegistryRequest is the body of POST /v1/registries and PATCH
// /v1/registries/{name}: in a PATCH, absent fields stay as they are and an
// empty password removes the stored one. The password is write-only.
type RegistryRequest struct {
	Name         string  `json:"name,omitempty"`
	URL          *string `json:"url,omitempty"`
	Username     *string `json:"username,omitempty"`
	Password     *string `json:"password,omitempty"`
	InsecureHTTP *bool   `json:"insecure_http,omitempty"`
	CAPEM        *string `json:"ca_pem,omitempty"`
}

// RegistryCredentials is what an agent needs to pull from one registry:
// sent to it, decrypted by the manager, in its desired state (for the
// images of the containers it should run) and with a pre-pull request,
// over the agent's authenticated channel. Error is set instead of Password
// when the manager could not decrypt the stored password.
type RegistryCredentials struct {
	Name         string `json:"name"`
	Host         string `json:"host"`
	InsecureHTTP bool   `json:"insecure_http,omitempty"`
	Username     string `json:"username,omitempty"`
	Password     string `json:"password,omitempty"`
	CAPEM        string `json:"ca_pem,omitempty"`
	Error        string `json:"error,omitempty"`
}

// ImagePullRequest is POST /v1/images/pull: pull an image on the named
// agents ahead of the sessions that need it (none named: every ALIVE,
// schedulable agent).
type ImagePullRequest struct {
	Image  string   `json:"image"`
	Agents []string `json:"agents,omitempty"`
}

// ImagePullAccepted answers POST /v1/images/pull (202): the agents that
// took the pull; progress is in GET /v1/images.
type ImagePullAccepted struct {
	Image  string   `json:"image"`
	Agents []string `json:"agents"`
	// Failed says, for each named agent that did not take the pull, why.
	Failed []string `json:"failed,omitempty"`
}

// ImagePullProgress is a pull under way on one agent.
type ImagePullProgress struct {
	Agent      string `json:"agent"`
	DoneBytes  int64  `json:"done_bytes"`
	TotalBytes int64  `json:"total_bytes"`
}

// AgentImagePull is the body of the manager's call to an agent's POST
// /v1/images/pull: the image and the credentials of its registry, if a
// registry object serves it.
type AgentImagePull struct {
	Image      string                `json:"image"`
	Registries []RegistryCredentials `json:"registries,omitempty"`
}

// ImagePull is a pull an agent reports in its heartbeat while it runs
// (and once after it failed, with Error).
type ImagePull struct {
	Image      string `json:"image"`
	DoneBytes  int64  `json:"done_bytes"`
	TotalBytes int64  `json:"total_bytes"`
	Error      string `json:"error,omitempty"`
}
