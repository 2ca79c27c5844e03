package fsm

// MsgType is the first byte of every Raft log entry. Numbers are stable
// forever: never renumber, never reuse a retired one.
type MsgType uint8

// IgnoreUnknown marks an entry a node may skip when it does not know the type
// (a newer manager wrote it during a rolling upgrade). Without the bit an
// unknown type stops the node rather than let its state diverge.
//
// Entry types are versioned. A body whose meaning changes in a way an older
// manager would misread gets a new type number, so that older managers stop
// at it instead of applying it their way (the plan: 41 → 46). A body that may
// grow within its type carries a version (Plan.Version, see versioned): a
// manager that meets a version newer than it knows stops as it does for an
// unknown type.
const IgnoreUnknown MsgType = 0x80

// The log entry types.
const (
	MsgBootstrap    MsgType = 1
	MsgMemberPut    MsgType = 2
	MsgMemberDelete MsgType = 3
	MsgTokenCreate  MsgType = 4
	MsgTokenDelete  MsgType = 5
	MsgTokensExpire MsgType = 6
	MsgUserCreate   MsgType = 7
	MsgUserUpdate   MsgType = 8
	MsgKeypairPut   MsgType = 9
	// 10-19: users, keypairs, domains, groups administration.
	MsgKeypairUpdate MsgType = 10
	MsgKeypairDelete MsgType = 11
	MsgKeypairsTouch MsgType = 12
	MsgDomainCreate  MsgType = 13
	MsgGroupCreate   MsgType = 14
	MsgGroupUpdate   MsgType = 15
	MsgGroupMembers  MsgType = 16
	// 20-29: resource policies.
	MsgPolicyCreate MsgType = 20
	MsgPolicyUpdate MsgType = 21
	MsgPolicyDelete MsgType = 22
	// 30-39: agents.
	MsgAgentPut    MsgType = 30
	MsgAgentUpdate MsgType = 31
	MsgAgentsLost  MsgType = 32
	// Agent join tokens and approval (agenttokens.go).
	MsgAgentTokenCreate MsgType = 33
	MsgAgentTokenRevoke MsgType = 34
	MsgAgentApprove     MsgType = 35
	// Disconnected agents and the end of their grace (agents_disconnect.go).
	MsgAgentsDisconnected     MsgType = 36
	MsgAgentsDisconnectExpire MsgType = 37
	// 40-49: compute sessions.
	MsgSessionCreate MsgType = 40
	// MsgPlanV1 is the plan of managers before issue 17 (agents only; the
	// applier picked the GPU slices). No longer written; still applied, with
	// its old meaning, so an upgraded manager replays its old log.
	MsgPlanV1           MsgType = 41
	MsgSessionsReport   MsgType = 42
	MsgSessionTerminate MsgType = 43
	MsgSessionsTouch    MsgType = 44
	MsgSessionsCreate   MsgType = 45
	// MsgPlan is the plan that carries the leader's whole decision, GPU
	// slices included (Plan, version PlanVersion).
	MsgPlan MsgType = 46
	// 50-59: storage folders (folders.go).
	MsgFolderCreate     MsgType = 50
	MsgFolderDelete     MsgType = 51
	MsgInvitationCreate MsgType = 52
	MsgInvitationAnswer MsgType = 53
	MsgInvitationDelete MsgType = 54
	MsgFoldersUsage     MsgType = 55
	// 60-69: maintenance.
	MsgUsageRecalculate MsgType = 60
	// 70-79: GPUs.
	// 80-89: container registries (registries.go).
	MsgRegistryCreate MsgType = 80
	MsgRegistryUpdate MsgType = 81
	MsgRegistryDelete MsgType = 82
	// 90-99: usage accounting and the collection of finished sessions
	// (usage.go).
	MsgSessionsCollect  MsgType = 90
	MsgSessionsMeasured MsgType = 91
)

// appliers maps each type to its applier; every resource file contributes
// its own entries.
func appliers() map[MsgType]applier {
	return map[MsgType]applier{
		MsgBootstrap:     handle(applyBootstrap),
		MsgMemberPut:     handle(applyMemberPut),
		MsgMemberDelete:  handle(applyMemberDelete),
		MsgTokenCreate:   handle(applyTokenCreate),
		MsgTokenDelete:   handle(applyTokenDelete),
		MsgTokensExpire:  handle(applyTokensExpire),
		MsgUserCreate:    handle(applyUserCreate),
		MsgUserUpdate:    handle(applyUserUpdate),
		MsgKeypairPut:    handle(applyKeypairPut),
		MsgKeypairUpdate: handle(applyKeypairUpdate),
		MsgKeypairDelete: handle(applyKeypairDelete),
		MsgKeypairsTouch: handle(applyKeypairsTouch),
		MsgDomainCreate:  handle(applyDomainCreate),
		MsgGroupCreate:   handle(applyGroupCreate),
		MsgGroupUpdate:   handle(applyGroupUpdate),
		MsgGroupMembers:  handle(applyGroupMembers),
		MsgPolicyCreate:  handle(applyPolicyCreate),
		MsgPolicyUpdate:  handle(applyPolicyUpdate),
		MsgPolicyDelete:  handle(applyPolicyDelete),
		MsgAgentPut:      handle(applyAgentPut),
		MsgAgentUpdate:   handle(applyAgentUpdate),
		MsgAgentsLost:    handle(applyAgentsLost),
		// Agent tokens and approval: agenttokens.go.
		MsgAgentTokenCreate: handle(applyAgentTokenCreate),
		MsgAgentTokenRevoke: handle(applyAgentTokenRevoke),
		MsgAgentApprove:     handle(applyAgentApprove),
		// Disconnected agents: agents_disconnect.go.
		MsgAgentsDisconnected:     handle(applyAgentsDisconnected),
		MsgAgentsDisconnectExpire: handle(applyAgentsDisconnectExpire),
		// Sessions: sessions_apply.go, plan.go, plan_v1.go, sessions_report.go,
		// sessions_batch.go.
		MsgSessionCreate:    handle(applySessionCreate),
		MsgPlanV1:           handle(applyPlanV1),
		MsgPlan:             handle(applyPlan),
		MsgSessionsReport:   handle(applySessionsReport),
		MsgSessionTerminate: handle(applySessionTerminate),
		MsgSessionsTouch:    handle(applySessionsTouch),
		MsgSessionsCreate:   handle(applySessionsCreate),
		// Storage folders: folders.go.
		MsgFolderCreate:     handle(applyFolderCreate),
		MsgFolderDelete:     handle(applyFolderDelete),
		MsgInvitationCreate: handle(applyInvitationCreate),
		MsgInvitationAnswer: handle(applyInvitationAnswer),
		MsgInvitationDelete: handle(applyInvitationDelete),
		MsgFoldersUsage:     handle(applyFoldersUsage),
		// Maintenance: maintenance.go.
		MsgUsageRecalculate: handle(applyUsageRecalculate),
		// Registries: registries.go.
		MsgRegistryCreate: handle(applyRegistryCreate),
		MsgRegistryUpdate: handle(applyRegistryUpdate),
		MsgRegistryDelete: handle(applyRegistryDelete),
		// Usage and collection: usage.go.
		MsgSessionsCollect:  handle(applySessionsCollect),
		MsgSessionsMeasured: handle(applySessionsMeasured),
	}
}
