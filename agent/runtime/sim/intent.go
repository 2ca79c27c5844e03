package sim

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// kind is what a simulated process does with its life.
type kind int

const (
	// forever runs until it is stopped: a server, a notebook, anything the
	// simulation cannot read.
	forever kind = iota
	// finite runs for a while, then exits with a code.
	finite
)

// intent is what a command means to do, read from its words: `sleep N`
// sleeps N seconds and exits 0, `exit N` exits with N at once, a shell
// script of those (`sh -c 'sleep 2; exit 3'`) does them in turn, anything
// else runs until stopped.
type intent struct {
	kind kind
	// runs is how long a finite process lives after it starts.
	runs time.Duration
	code int
	// idle: the process only waits (sleep), so it uses almost no CPU.
	idle bool
}

// shells are the programs whose -c script is read.
var shells = map[string]bool{"sh": true, "bash": true, "ash": true, "dash": true}

// parseIntent reads a container's command (or an exec's).
func parseIntent(cmd []string) intent {
	if len(cmd) == 0 {
		return intent{kind: forever}
	}
	prog := cmd[0][strings.LastIndexByte(cmd[0], '/')+1:] // without its directory
	if shells[prog] && len(cmd) == 3 && cmd[1] == "-c" {
		return parseScript(cmd[2])
	}
	if prog == "busybox" && len(cmd) > 1 { // busybox sleep 5, busybox sh -c …
		return parseIntent(cmd[1:])
	}
	if in, ok := parseStatement(append([]string{prog}, cmd[1:]...)); ok {
		return in
	}
	return intent{kind: forever}
}

// parseScript reads a shell script of `sleep N` and `exit N` statements
// separated by `;`, `&&` or new lines. A script ending without exit exits
// 0, like sh; a statement of any other kind makes it one the simulation
// cannot follow, which runs until stopped.
func parseScript(script string) intent {
	script = strings.ReplaceAll(script, "&&", ";")
	script = strings.ReplaceAll(script, "\n", ";")
	out := intent{kind: finite, idle: true}
	any := false
	for _, stmt := range strings.Split(script, ";") {
		words := strings.Fields(stmt)
		if len(words) == 0 {
			continue
		}
		if words[0] == "exec" { // exec sleep 10
			words = words[1:]
		}
		in, ok := parseStatement(words)
		if !ok || in.kind == forever {
			return intent{kind: forever, idle: ok && in.idle}
		}
		any = true
		out.runs = addCapped(out.runs, in.runs)
		if words[0] == "exit" {
			out.code = in.code
			return out
		}
	}
	if !any {
		return intent{kind: forever}
	}
	return out
}

// parseStatement reads one `sleep N` or `exit [N]`.
func parseStatement(words []string) (intent, bool) {
	if len(words) == 0 {
		return intent{}, false
	}
	switch words[0] {
	case "exit":
		switch len(words) {
		case 1:
			return intent{kind: finite}, true
		case 2:
			n, err := strconv.Atoi(words[1])
			if err != nil {
				return intent{}, false
			}
			// A shell exits with the code modulo 256.
			return intent{kind: finite, code: ((n % 256) + 256) % 256}, true
		}
	case "sleep":
		if len(words) < 2 {
			return intent{}, false
		}
		// GNU and busybox sleep add up several durations.
		var total time.Duration
		for _, w := range words[1:] {
			if w == "infinity" {
				return intent{kind: forever, idle: true}, true
			}
			d, err := parseSleep(w)
			if err != nil {
				return intent{}, false
			}
			total = addCapped(total, d)
		}
		return intent{kind: finite, runs: total, idle: true}, true
	}
	return intent{}, false
}

// parseSleep reads sleep's operand: a decimal number of seconds with an
// optional s, m, h or d suffix.
func parseSleep(w string) (time.Duration, error) {
	unit := time.Second
	switch {
	case strings.HasSuffix(w, "s"):
		w = strings.TrimSuffix(w, "s")
	case strings.HasSuffix(w, "m"):
		w, unit = strings.TrimSuffix(w, "m"), time.Minute
	case strings.HasSuffix(w, "h"):
		w, unit = strings.TrimSuffix(w, "h"), time.Hour
	case strings.HasSuffix(w, "d"):
		w, unit = strings.TrimSuffix(w, "d"), 24*time.Hour
	}
	f, err := strconv.ParseFloat(w, 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, fmt.Errorf("sleep %q: not a duration", w)
	}
	// Beyond what a Duration holds is as good as forever.
	if f*float64(unit) >= math.MaxInt64 {
		return time.Duration(math.MaxInt64), nil
	}
	return time.Duration(f * float64(unit)), nil
}

// addCapped adds two durations, stopping at the largest one.
func addCapped(a, b time.Duration) time.Duration {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// String says in words what the simulation will do, for the log.
func (in intent) String() string {
	if in.kind == forever {
		return "runs until stopped"
	}
	if in.runs == 0 {
		return fmt.Sprintf("exits with %d at once", in.code)
	}
	return fmt.Sprintf("runs %s, then exits with %d", in.runs, in.code)
}
