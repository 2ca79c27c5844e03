// Session statuses and the questions the console asks of them. The sets
// are the Go ones of shared/api (status.go): a test in manager/console
// (TestTheConsoleStatusSetsAreTheGoOnes) fails when the two differ.

// sessionStatuses: every status, in the order of a session's life.
export const sessionStatuses = ["PENDING", "SCHEDULED", "PREPARING", "RUNNING", "TERMINATING", "TERMINATED", "ERROR", "CANCELLED"];

// ended: final; nothing happens to the session any more.
export const ended = new Set(["TERMINATED", "ERROR", "CANCELLED"]);

// endingOrEnded: TERMINATING or ended; terminating it again changes nothing.
export const endingOrEnded = new Set(["TERMINATING", "TERMINATED", "ERROR", "CANCELLED"]);

// occupying: the session holds its slots on its agents.
export const occupying = new Set(["SCHEDULED", "PREPARING", "RUNNING", "TERMINATING"]);

// active: placed and not asked to end; its containers are to run.
export const active = new Set(["SCHEDULED", "PREPARING", "RUNNING"]);
