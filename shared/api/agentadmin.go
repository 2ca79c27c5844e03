package api

// AgentTokenHeader carries an agent's join token on POST
// /v1/agents/register: the managers' shared -agent-token or one from POST
// /v1/agents/tokens.
const AgentTokenHeader = "X-Berth-Agent-Token"

// AgentPatch is PATCH /v1/agents/{id}: an unschedulable agent keeps what it
// runs but gets no new sessions.
type AgentPatch struct {
	Schedulable *bool `json:"schedulable"`
}

// ClusterImage is one item of GET /v1/images: an image and the ALIVE agents
// that have it.
type ClusterImage struct {
	Image
	Agents []string `json:"agents"`
	// Pulling are the pulls of this image under way (admins; the leader's
	// view of its agents' last reports).
	Pulling []ImagePullProgress `json:"pulling,omitempty"`
}
