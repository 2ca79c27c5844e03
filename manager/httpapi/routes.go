package httpapi

import (
	"net/http"

	"github.com/berth-cluster/berth/shared/api"
)

// routeTable is every endpoint of the manager. Each resource's handlers
// live in their own file (auth.go, users.go, keypairs.go, policies.go,
// domains.go, operator.go, info.go).
func (a *API) routeTable() []Route {
	get, post, del := http.MethodGet, http.MethodPost, http.MethodDelete
	return []Route{
		{Method: get, Path: "/healthz", Summary: "The process is up", Access: Public, Local: true, Handle: a.healthz},
		{Method: get, Path: "/readyz", Summary: "This manager knows a leader and has the cluster's first-start objects", Access: Public, Local: true, Handle: a.readyz},
		{Method: get, Path: "/metrics", Summary: "Prometheus metrics", Access: Public, Local: true, Produces: "text/plain", Handle: a.metricsHandler},
		{Method: get, Path: "/v1/openapi.json", Summary: "This API as OpenAPI 3", Access: Public, Local: true, Handle: a.openapi},
		{Method: get, Path: "/v1/info", Summary: "Version, licence and cluster state", Access: Authenticated, Local: true, Out: api.Info{}, Handle: a.info},

		{Method: post, Path: "/v1/auth/login", Summary: "Log in with email and password", Access: Public, In: api.LoginRequest{}, Out: api.LoginResponse{}, Handle: a.login},
		{Method: post, Path: "/v1/auth/logout", Summary: "End this login token", Access: Authenticated, Status: http.StatusNoContent, Handle: a.logout},
		{Method: get, Path: "/v1/auth/whoami", Summary: "The caller", Access: Authenticated, Out: api.WhoAmI{}, Handle: a.whoami},
		{Method: post, Path: "/v1/auth/password", Summary: "Change the caller's password", Access: Authenticated, In: api.PasswordChange{}, Status: http.StatusNoContent, Handle: a.changePassword},

		{Method: get, Path: "/v1/users", Summary: "List users", Access: AdminRead, Query: []string{"status", "email", "username", "group", "limit", "cursor"}, Out: api.List[api.User]{}, Handle: a.listUsers},
		{Method: post, Path: "/v1/users", Summary: "Create a user with a first keypair", Access: Admin, In: userCreate{}, Out: userCreated{}, Status: http.StatusCreated, Handle: a.createUser},
		{Method: get, Path: "/v1/users/{email}", Summary: "One user with domain, groups and keypairs", Access: AdminRead, Out: api.User{}, Handle: a.getUser},
		{Method: del, Path: "/v1/users/{email}", Summary: "Refused: users are deactivated, never deleted", Access: Admin, Handle: a.deleteUser},

		{Method: get, Path: "/v1/keypairs", Summary: "List keypairs (admins: of their users; others: their own)", Access: Authenticated, Query: []string{"user", "is_active", "limit", "cursor"}, Out: api.List[api.Keypair]{}, Handle: a.listKeypairs},
		{Method: get, Path: "/v1/resource-policies", Summary: "List resource policies", Access: AdminRead, Out: api.List[api.ResourcePolicy]{}, Handle: a.listResourcePolicies},
		{Method: get, Path: "/v1/domains", Summary: "List domains", Access: AdminRead, Out: api.List[api.Domain]{}, Handle: a.listDomains},
		{Method: get, Path: "/v1/domains/{domain}/groups", Summary: "List the groups of a domain", Access: AdminRead, Out: api.List[api.Group]{}, Handle: a.listGroups},

		{Method: post, Path: "/v1/operator/raft/join", Summary: "A new manager asks to join (cluster join token)", Access: Public, In: api.JoinRequest{}, Status: http.StatusNoContent, Handle: a.join},
		{Method: get, Path: "/v1/operator/raft", Summary: "Raft configuration and indexes", Access: Superadmin, Local: true, Out: api.RaftConfiguration{}, Handle: a.raftConfiguration},
		{Method: del, Path: "/v1/operator/raft/peers/{id}", Summary: "Remove a manager from the Raft cluster", Access: Superadmin, Status: http.StatusNoContent, Handle: a.removePeer},
	}
}
