// Package chaos holds the reliability suite (issue 11): three berth-manager
// processes, each in a network namespace of its own made by the test and
// running as in production (mutual-TLS Raft, HTTPS API, certificates from
// shared/tlsgen), under concurrent clients while a nemesis kills and restarts the leader,
// pauses a manager (SIGSTOP) and cuts one off the network. Every operation's
// call and return is recorded; the policy register must be linearizable
// (checked with porcupine), no acknowledged write may be lost and no keypair
// may hold more sessions than its policy allows.
//
// `make test` runs a short version (CHAOS_DURATION, default 20s); `make
// chaos` a long one. It needs root and `ip netns`; without them it skips,
// unless CI is set, where it fails.
package chaos
