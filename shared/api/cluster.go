package api

// Member states in Info and the operator view.
const (
	MemberLeader      = "leader"
	MemberFollower    = "follower"
	MemberCandidate   = "candidate"
	MemberUnreachable = "unreachable"
)

// Member is one manager of the Raft cluster.
type Member struct {
	ID       string `json:"id"`
	Address  string `json:"address"`
	RaftAddr string `json:"raft_address"`
	State    string `json:"state"`
	Voter    bool   `json:"voter"`
}

// ClusterInfo is the Raft view of GET /v1/info.
type ClusterInfo struct {
	Leader    string   `json:"leader"`
	Members   []Member `json:"members"`
	RaftIndex uint64   `json:"raft_index"`
}

// Info is GET /v1/info.
type Info struct {
	Version    string      `json:"version"`
	Commit     string      `json:"commit"`
	APIVersion string      `json:"api_version"`
	License    string      `json:"license"`
	Cluster    ClusterInfo `json:"cluster"`
	Agents     struct {
		Alive        int `json:"alive"`
		Disconnected int `json:"disconnected"`
		Lost         int `json:"lost"`
	} `json:"agents"`
	Sessions struct {
		Pending int `json:"pending"`
		Running int `json:"running"`
	} `json:"sessions"`
}

// RaftConfiguration is GET /v1/operator/raft.
type RaftConfiguration struct {
	Leader       string   `json:"leader"`
	Servers      []Member `json:"servers"`
	AppliedIndex uint64   `json:"applied_index"`
	LastIndex    uint64   `json:"last_index"`
	Term         uint64   `json:"term"`
}

// JoinRequest is what a manager started with -join sends to the cluster.
type JoinRequest struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_address"`
	HTTPAddr string `json:"http_address"`
}
