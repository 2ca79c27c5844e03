// Package chaos holds the reliability suite (issue 11): three berth-manager
// processes, each in a network namespace of its own made by the test and
// running as in production (mutual-TLS Raft, HTTPS API, certificates from
// shared/tlsgen), under concurrent clients while a nemesis kills and restarts the leader,
// pauses a manager (SIGSTOP) and cuts one off the network. Every operation's
// call and return is recorded; the policy register must be linearizable
// (checked with porcupine), no acknowledged write may be lost and no keypair
// may hold more sessions than its policy allows. A second test runs real
// berth-agent processes on a private containerd and stops them (SIGSTOP)
// past the heartbeat timeout, within the disconnect grace, sometimes
// killing the leader meanwhile: no session whose container kept running is
// ever anything but RUNNING, and no slot is held twice.
//
// `make test` runs a short version (CHAOS_DURATION, default 20s); `make
// chaos` a long one. It needs root and `ip netns`; without them it skips,
// unless CI is set, where it fails.
package chaos
