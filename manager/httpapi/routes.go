package httpapi

import (
	"net/http"
	"slices"

	"github.com/berth-cluster/berth/shared/api"
)

// routeTable is every endpoint of the manager. Each resource's handlers
// live in their own file (auth.go, users.go, keypairs.go, policies.go,
// domains.go, groups.go, operator.go, info.go).
func (a *API) routeTable() []Route {
	get, post, patch, put, del := http.MethodGet, http.MethodPost, http.MethodPatch, http.MethodPut, http.MethodDelete
	csv := "text/csv"
	userFilters := []string{"status", "email", "username", "group"}
	keypairFilters := []string{"user", "is_active"}
	sessionFilters := []string{"status", "owner", "all"}
	return []Route{
		{Method: get, Path: "/healthz", Summary: "The process is up", Access: Public, Local: true, Handle: a.healthz},
		{Method: get, Path: "/readyz", Summary: "This manager knows a leader and has the cluster's first-start objects", Access: Public, Local: true, Handle: a.readyz},
		{Method: get, Path: "/metrics", Summary: "Prometheus metrics", Long: true, Access: Public, Local: true, Produces: "text/plain", Handle: a.metricsHandler},
		{Method: get, Path: "/v1/openapi.json", Summary: "This API as OpenAPI 3", Access: Public, Local: true, Handle: a.openapi},
		{Method: post, Path: "/v1/maintenance/recalculate-usage", Summary: "Recompute every derived occupancy (per agent, per keypair) from the session records, compare the records with what agents report running, fix what differs and list it", Access: Superadmin, Out: api.UsageRecalculation{}, Handle: a.recalculateUsage},
		{Method: get, Path: "/v1/info", Summary: "Version, licence and cluster state", Access: Authenticated, Local: true, Out: api.Info{}, Handle: a.info},

		{Method: post, Path: "/v1/auth/login", Summary: "Log in with email and password", Access: Public, In: api.LoginRequest{}, Out: api.LoginResponse{}, Handle: a.login},
		{Method: post, Path: "/v1/auth/logout", Summary: "End this login token", Access: Authenticated, Status: http.StatusNoContent, Handle: a.logout},
		{Method: get, Path: "/v1/auth/whoami", Summary: "The caller", Access: Authenticated, Out: api.WhoAmI{}, Handle: a.whoami},
		{Method: post, Path: "/v1/auth/password", Summary: "Change the caller's password", Access: Authenticated, In: api.PasswordChange{}, Status: http.StatusNoContent, Handle: a.changePassword},

		{Method: get, Path: "/v1/users", Summary: "List users, newest first (substring filters on email and username, any case)", Access: AdminRead, Query: slices.Concat(userFilters, []string{"limit", "cursor"}), Out: api.List[api.User]{}, Handle: a.listUsers},
		{Method: post, Path: "/v1/users", Summary: "Create a user with a first keypair", Access: Admin, In: api.UserCreate{}, Out: api.UserCreated{}, Status: http.StatusCreated, Handle: a.createUser},
		{Method: get, Path: "/v1/users/{email}", Summary: "One user with domain, groups and keypairs", Access: AdminRead, Out: api.User{}, Handle: a.getUser},
		{Method: patch, Path: "/v1/users/{email}", Summary: "Change a user; status inactive deactivates every keypair and login", Access: Admin, In: userPatch{}, Out: api.User{}, Handle: a.updateUser},
		{Method: del, Path: "/v1/users/{email}", Summary: "Refused: users are deactivated, never deleted", Access: Admin, Handle: a.deleteUser},
		{Method: get, Path: "/v1/export/users.csv", Summary: "Users as CSV (the list filters apply; groups joined with ';')", Long: true, Access: AdminRead, Query: slices.Concat(userFilters, []string{"filename"}), Produces: csv, Handle: a.exportUsers},

		{Method: get, Path: "/v1/keypairs", Summary: "List keypairs (admins and monitors: of their domain's users, not a superadmin's; others: their own)", Access: Authenticated, Query: slices.Concat(keypairFilters, []string{"limit", "cursor"}), Out: api.List[api.Keypair]{}, Handle: a.listKeypairs},
		{Method: post, Path: "/v1/keypairs", Summary: "Create a keypair for a user; the secret is shown only here", Access: Admin, In: api.KeypairCreate{}, Out: api.Keypair{}, Status: http.StatusCreated, Handle: a.createKeypair},
		{Method: get, Path: "/v1/keypairs/{access_key}", Summary: "One keypair", Access: Authenticated, Out: api.Keypair{}, Handle: a.getKeypair},
		{Method: patch, Path: "/v1/keypairs/{access_key}", Summary: "Activate, deactivate, change policy or rate limit (requests per 15 minutes, 0 = none)", Access: Admin, In: api.KeypairPatch{}, Out: api.Keypair{}, Handle: a.updateKeypair},
		{Method: del, Path: "/v1/keypairs/{access_key}", Summary: "Delete a keypair", Access: Admin, Status: http.StatusNoContent, Handle: a.deleteKeypair},
		{Method: get, Path: "/v1/export/keypairs.csv", Summary: "Keypairs as CSV (the list filters apply)", Long: true, Access: Authenticated, Query: slices.Concat(keypairFilters, []string{"filename"}), Produces: csv, Handle: a.exportKeypairs},
		{Method: get, Path: "/v1/resource-policies", Summary: "List resource policies by name", Access: AdminRead, Query: []string{"limit", "cursor"}, Out: api.List[api.ResourcePolicy]{}, Handle: a.listResourcePolicies},
		{Method: post, Path: "/v1/resource-policies", Summary: "Create a resource policy (mem and max_vfolder_size in bytes: the manual's GB is GiB, 2^30 bytes; idle_timeout and max_session_lifetime in seconds); absent fields default to unlimited slots, max_containers_per_session 1, idle_timeout 0 (never), max_concurrent_sessions, max_session_lifetime and max_vfolder_size null (unlimited), allowed_vfolder_hosts [], max_vfolder_count 10, allow_root false", Access: Superadmin, In: api.ResourcePolicyRequest{}, Out: api.ResourcePolicy{}, Status: http.StatusCreated, Handle: a.createResourcePolicy},
		{Method: get, Path: "/v1/resource-policies/{name}", Summary: "One resource policy", Access: AdminRead, Out: api.ResourcePolicy{}, Handle: a.getResourcePolicy},
		{Method: patch, Path: "/v1/resource-policies/{name}", Summary: "Change the fields sent (a slot or nullable field sent as null becomes unlimited; slots not named stay); the name cannot change; new sessions see the change at once", Access: Superadmin, In: api.ResourcePolicyRequest{}, Out: api.ResourcePolicy{}, Handle: a.updateResourcePolicy},
		{Method: del, Path: "/v1/resource-policies/{name}", Summary: "Delete a policy no keypair holds (inactive ones included); default is never deleted", Access: Superadmin, Status: http.StatusNoContent, Handle: a.deleteResourcePolicy},
		{Method: get, Path: "/v1/export/resource-policies.csv", Summary: "Resource policies as CSV (empty cell = unlimited; allowed_vfolder_hosts joined with ';')", Long: true, Access: AdminRead, Query: []string{"filename"}, Produces: csv, Handle: a.exportResourcePolicies},
		{Method: get, Path: "/v1/resources/me", Summary: "Resource indicator of the caller's keypair (token callers: their oldest active keypair); admins may name any keypair with ?access_key=", Access: Authenticated, Query: []string{"access_key"}, Out: api.ResourceIndicator{}, Handle: a.myResources},
		{Method: post, Path: "/v1/sessions", Summary: "Start a compute session with the caller's keypair (token callers: their oldest active keypair); a request that can never run (over the policy, over every agent, an image its policy's allowed_images does not match, or one no ALIVE agent has that its registry does not serve) is refused at once with the numbers, else it is PENDING until the scheduler places it; resources are per container; run_as_root needs a policy with allow_root (else 403)", Access: Authenticated, In: api.SessionCreate{}, Out: api.Session{}, Status: http.StatusCreated, Handle: a.createSession},
		{Method: get, Path: "/v1/sessions", Summary: "List sessions, newest first: the caller's own; admins and monitors may ask for one owner's or, with all=true, every one they can see", Query: slices.Concat(sessionFilters, []string{"limit", "cursor"}), Access: Authenticated, Out: api.List[api.Session]{}, Handle: a.listSessions},
		{Method: get, Path: "/v1/sessions/{id}", Summary: "One session with its containers and status history; header X-Berth-Index is the index it is at, and with ?index=N the call blocks until the session changes past N or ?wait= (default 30s, at most 5m) elapses", Long: true, Access: Authenticated, Query: []string{"index", "wait"}, Out: api.Session{}, Handle: a.getSession},
		{Method: del, Path: "/v1/sessions/{id}", Summary: "Terminate a session: PENDING ones are CANCELLED, others go TERMINATING, then TERMINATED once their containers are gone", Access: Authenticated, Out: api.Session{}, Status: http.StatusAccepted, Handle: a.terminateSession},
		{Method: post, Path: "/v1/sessions/{id}/exec", Summary: "Run a command in the session's first container (RUNNING sessions only); counts as activity", Long: true, Access: Authenticated, In: api.ExecRequest{}, Out: api.ExecResult{}, Handle: a.execSession},
		{Method: get, Path: "/v1/sessions/{id}/logs", Summary: "The output of the session's first container; counts as activity", Long: true, Access: Authenticated, Produces: "text/plain", Handle: a.sessionLogs},
		{Method: get, Path: "/v1/export/sessions.csv", Summary: "Sessions as CSV (admins: every session they can see, users: their own; the list filters apply; agents joined with ';'; slots per container)", Long: true, Access: Authenticated, Query: slices.Concat(sessionFilters, []string{"filename"}), Produces: csv, Handle: a.exportSessions},
		{Method: get, Path: "/v1/domains", Summary: "List domains", Access: AdminRead, Query: []string{"limit", "cursor"}, Out: api.List[api.Domain]{}, Handle: a.listDomains},
		{Method: post, Path: "/v1/domains", Summary: "Create a domain", Access: Superadmin, In: api.DomainCreate{}, Out: api.Domain{}, Status: http.StatusCreated, Handle: a.createDomain},
		{Method: get, Path: "/v1/domains/{domain}/groups", Summary: "List the groups of a domain", Access: AdminRead, Query: []string{"limit", "cursor"}, Out: api.List[api.Group]{}, Handle: a.listGroups},
		{Method: post, Path: "/v1/domains/{domain}/groups", Summary: "Create a group", Access: Admin, In: api.GroupCreate{}, Out: api.Group{}, Status: http.StatusCreated, Handle: a.createGroup},
		{Method: get, Path: "/v1/domains/{domain}/groups/{group}", Summary: "One group with its members", Access: AdminRead, Out: api.GroupDetail{}, Handle: a.getGroup},
		{Method: patch, Path: "/v1/domains/{domain}/groups/{group}", Summary: "Change a group's description or activity", Access: Admin, In: api.GroupPatch{}, Out: api.Group{}, Handle: a.updateGroup},
		{Method: post, Path: "/v1/domains/{domain}/groups/{group}/members", Summary: "Add and remove members (users of the domain)", Access: Admin, In: api.GroupMembersChange{}, Out: api.GroupDetail{}, Handle: a.changeGroupMembers},

		{Method: get, Path: "/v1/folder-hosts", Summary: "Storage folder hosts the caller's policy allows (available: this manager has the host)", Access: Authenticated, Out: api.List[api.FolderHost]{}, Handle: a.listFolderHosts},
		{Method: get, Path: "/v1/folders", Summary: "Storage folders the caller sees, newest first: own, shared with them (accepted) and group folders of their groups, each with the caller's permission", Access: Authenticated, Query: []string{"limit", "cursor"}, Out: api.List[api.Folder]{}, Handle: a.listFolders},
		{Method: post, Path: "/v1/folders", Summary: "Create a storage folder on an allowed host; a user folder takes no permission (its owner has wd); type group (admins) is seen by every member of the group with permission ro or rw, the group of domain (default the caller's; superadmins may name any); over max_vfolder_count is 409", Access: Authenticated, In: api.FolderCreate{}, Out: api.Folder{}, Status: http.StatusCreated, Handle: a.createFolder},
		{Method: get, Path: "/v1/folders/{id}", Summary: "One folder, by id or name", Access: Authenticated, Out: api.Folder{}, Handle: a.getFolder},
		{Method: del, Path: "/v1/folders/{id}", Summary: "Delete a folder and its files (owner, or an admin of its domain); refused while a session that has not ended mounts it", Long: true, Access: Authenticated, Status: http.StatusNoContent, Handle: a.deleteFolder},
		{Method: post, Path: "/v1/folders/{id}/invitations", Summary: "Invite a user of the folder's domain to the caller's user folder with ro or rw (an email of another domain is answered as unknown)", Access: Authenticated, In: api.InvitationCreate{}, Out: api.Invitation{}, Status: http.StatusCreated, Handle: a.createInvitation},
		{Method: get, Path: "/v1/invitations", Summary: "Invitations sent to and by the caller, any state", Access: Authenticated, Query: []string{"limit", "cursor"}, Out: api.List[api.Invitation]{}, Handle: a.listInvitations},
		{Method: post, Path: "/v1/invitations/{id}/accept", Summary: "Accept an invitation: the folder is listed with the invited permission (counts against max_vfolder_count)", Access: Authenticated, Out: api.Invitation{}, Handle: a.answerInvitation(true)},
		{Method: post, Path: "/v1/invitations/{id}/reject", Summary: "Reject an invitation", Access: Authenticated, Out: api.Invitation{}, Handle: a.answerInvitation(false)},
		{Method: del, Path: "/v1/invitations/{id}", Summary: "Revoke an invitation (the inviter, or an admin of the folder's domain) or leave a shared folder (the invitee)", Access: Authenticated, Status: http.StatusNoContent, Handle: a.deleteInvitation},
		{Method: get, Path: "/v1/folders/{id}/files", Summary: "List a directory of the folder (?path=DIR, default the top)", Access: Authenticated, Query: []string{"path"}, Out: api.List[api.FileEntry]{}, Handle: a.listFiles},
		{Method: get, Path: "/v1/folders/{id}/files/{path...}", Summary: "Download a file", Long: true, Access: Authenticated, Produces: "application/octet-stream", Handle: a.downloadFile},
		{Method: put, Path: "/v1/folders/{id}/files/{path...}", Summary: "Upload a file (the body, any type; directories are made on the way), streamed to a temporary file renamed into place once it all arrived; ro → 403, past max_vfolder_size (room is reserved before the body is read) → 413; a keypair-signed upload signs X-Berth-Content-SHA256 instead of the body, and a body that does not match it → 401, nothing kept; too many uploads at once → 429", Access: Authenticated, Stream: true, Out: api.FileEntry{}, Status: http.StatusCreated, Handle: a.uploadFile},
		{Method: post, Path: "/v1/folders/{id}/directories", Summary: "Make a directory (and those on the way) in the folder (rw or wd); 409 if the path exists", Access: Authenticated, In: api.DirectoryCreate{}, Out: api.FileEntry{}, Status: http.StatusCreated, Handle: a.makeDirectory},
		{Method: del, Path: "/v1/folders/{id}/files/{path...}", Summary: "Delete a file or a directory with its content (rw or wd)", Access: Authenticated, Status: http.StatusNoContent, Handle: a.deleteFile},

		{Method: post, Path: "/v1/agents/register", Summary: "An agent registers. Without id: a new agent, admitted by header " + api.AgentTokenHeader + " (the managers' -agent-token, or a token from POST /v1/agents/tokens, which uses it once), 201 with its id and secret (shown only here); with id: Authorization: Bearer SECRET instead, the record is updated, 200. Failed attempts are limited per client address (429)", Access: Public, In: api.AgentRegister{}, Out: api.AgentRegistered{}, Status: http.StatusCreated, Handle: a.registerAgent},
		{Method: post, Path: "/v1/agents/{id}/heartbeat", Summary: "An agent's heartbeat (Authorization: Bearer SECRET): liveness and its report; answers its status and desired index", Access: Public, In: api.AgentHeartbeat{}, Out: api.HeartbeatAnswer{}, Handle: a.agentHeartbeat},
		{Method: post, Path: "/v1/agents/{id}/report", Summary: "An agent reports its containers whose state changed (started, exited, OOM-killed, gone) as it happens (Authorization: Bearer SECRET); the leader records it at once. Only containers placed on this agent are moved", Access: Public, In: api.AgentReport{}, Status: http.StatusNoContent, Handle: a.agentReport},
		{Method: get, Path: "/v1/agents/{id}/desired", Summary: "The containers an agent should run (Authorization: Bearer SECRET); with ?index=N it blocks until the state passes N or ?wait= (default 30s, at most 5m) elapses", Long: true, Access: Public, Query: []string{"index", "wait"}, Out: api.DesiredState{}, Handle: a.agentDesired},
		{Method: get, Path: "/v1/agents", Summary: "List agents with capacity, occupied, used (leader's last reports; empty on a stale read from a follower) and status", Access: AdminRead, Query: []string{"status", "limit", "cursor"}, Out: api.List[api.Agent]{}, Handle: a.listAgents},
		{Method: get, Path: "/v1/agents/{id}", Summary: "One agent", Access: AdminRead, Out: api.Agent{}, Handle: a.getAgent},
		{Method: patch, Path: "/v1/agents/{id}", Summary: "Make an agent schedulable or not (what runs on it stays)", Access: Superadmin, In: api.AgentPatch{}, Out: api.Agent{}, Handle: a.updateAgent},
		{Method: get, Path: "/v1/images", Summary: "Images on the ALIVE agents (what a session may start), each with the agents that have it and the pulls of it under way (admins and monitors; others get an empty agents list and no pulls); allowed=true keeps the images the caller's resource policy allows", Access: Authenticated, Query: []string{"allowed", "limit", "cursor"}, Out: api.List[api.ClusterImage]{}, Handle: a.listImages},
		{Method: post, Path: "/v1/images/pull", Summary: "Pull an image on the named agents (none: every ALIVE, schedulable, approved agent) ahead of the sessions that need it, with the credentials of the registry object serving its host; refused at once when the registry says the image does not exist or is not authorised (422); progress in GET /v1/images", Access: Admin, In: api.ImagePullRequest{}, Out: api.ImagePullAccepted{}, Status: http.StatusAccepted, Handle: a.pullImage},
		{Method: del, Path: "/v1/images/{ref...}", Summary: "Remove an image from an agent (?agent=ID); refused (409) while a container there uses it or is about to", Access: Admin, Query: []string{"agent"}, Status: http.StatusNoContent, Handle: a.removeImage},
		{Method: get, Path: "/v1/registries", Summary: "Container registries the agents pull from with their own credentials and TLS settings (the password is never shown: password_set)", Access: AdminRead, Query: []string{"limit", "cursor"}, Out: api.List[api.Registry]{}, Handle: a.listRegistries},
		{Method: post, Path: "/v1/registries", Summary: "Add a registry: image references whose host is its url's host are pulled with its username, password (write-only, stored sealed with the managers' -secrets-key-file; without one a password is refused, 409) and TLS settings (ca_pem, or insecure_http for an http:// url); the registry must answer at its url (else 422)", Access: Superadmin, In: api.RegistryRequest{}, Out: api.Registry{}, Status: http.StatusCreated, Handle: a.createRegistry},
		{Method: get, Path: "/v1/registries/{name}", Summary: "One registry", Access: AdminRead, Out: api.Registry{}, Handle: a.getRegistry},
		{Method: patch, Path: "/v1/registries/{name}", Summary: "Change the fields sent (an empty password removes the stored one); the name cannot change", Access: Superadmin, In: api.RegistryRequest{}, Out: api.Registry{}, Handle: a.updateRegistry},
		{Method: del, Path: "/v1/registries/{name}", Summary: "Remove a registry: its host's images are pulled anonymously from then on", Access: Superadmin, Status: http.StatusNoContent, Handle: a.deleteRegistry},
		{Method: post, Path: "/v1/agents/tokens", Summary: "Issue an agent join token (uses: how many agents, 0 = any; ttl: seconds it admits agents, 0 = until revoked; auto_approve: its agents take sessions at once, else each waits for approval); the token is shown only here", Access: Superadmin, In: api.AgentTokenCreate{}, Out: api.AgentToken{}, Status: http.StatusCreated, Handle: a.createAgentToken},
		{Method: get, Path: "/v1/agents/tokens", Summary: "List agent join tokens with their status and uses (never the tokens)", Access: AdminRead, Query: []string{"limit", "cursor"}, Out: api.List[api.AgentToken]{}, Handle: a.listAgentTokens},
		{Method: del, Path: "/v1/agents/tokens/{id}", Summary: "Revoke an agent join token: no agent registers with it afterwards (agents that joined with it stay)", Access: Superadmin, Status: http.StatusNoContent, Handle: a.revokeAgentToken},
		{Method: post, Path: "/v1/agents/{id}/approve", Summary: "Approve an agent that joined with a token without auto_approve: sessions may be placed on it from now on", Access: Superadmin, Out: api.Agent{}, Handle: a.approveAgent},

		{Method: post, Path: "/v1/operator/raft/join", Summary: "A new manager asks to join (cluster join token)", Access: Public, In: api.JoinRequest{}, Status: http.StatusNoContent, Handle: a.join},
		{Method: get, Path: "/v1/operator/raft", Summary: "Raft configuration and indexes", Access: Superadmin, Local: true, Out: api.RaftConfiguration{}, Handle: a.raftConfiguration},
		{Method: del, Path: "/v1/operator/raft/peers/{id}", Summary: "Remove a manager from the Raft cluster", Access: Superadmin, Status: http.StatusNoContent, Handle: a.removePeer},
		{Method: post, Path: "/v1/operator/snapshot", Summary: "Take a Raft snapshot of the leader's state and download it (the cluster backup); headers X-Berth-Snapshot-Index and -Term say what it holds", Long: true, Access: Superadmin, Produces: SnapshotContentType, Handle: a.saveSnapshot},
		{Method: post, Path: "/v1/operator/snapshot/restore", Summary: "Replace the whole cluster state with a snapshot from POST /v1/operator/snapshot, sent as the body (disaster recovery: every change since the snapshot is lost); a keypair-signed restore signs X-Berth-Content-SHA256", Access: Superadmin, Stream: true, Status: http.StatusNoContent, Handle: a.restoreSnapshot},
	}
}
