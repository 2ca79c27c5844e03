package api

import "time"

// A terminal (GET /v1/sessions/{id}/terminal) is a WebSocket: binary
// messages carry the terminal's input (client → server) and output (server
// → client); text messages carry one TerminalMessage each.

// TerminalMessage types.
const (
	// TerminalResize, from the client: the terminal is Cols × Rows.
	TerminalResize = "resize"
	// TerminalExit, from the server before it closes: the process ended
	// with Code.
	TerminalExit = "exit"
)

// TerminalMessage is a control message of a terminal.
type TerminalMessage struct {
	Type string `json:"type"`
	Cols int    `json:"cols,omitempty"`
	Rows int    `json:"rows,omitempty"`
	Code *int   `json:"code,omitempty"`
}

// The largest terminal there is: a larger size is taken as this one.
const (
	TerminalMaxCols = 1000
	TerminalMaxRows = 1000
)

// TerminalSize is what a resize to cols × rows means: the size clamped to
// TerminalMax*, or ok false for a size that is not one (below 1), which is
// ignored.
func TerminalSize(cols, rows int) (c, r uint16, ok bool) {
	if cols < 1 || rows < 1 {
		return 0, 0, false
	}
	return uint16(min(cols, TerminalMaxCols)), uint16(min(rows, TerminalMaxRows)), true
}

// ExecEvent is one line of a streamed exec's answer (POST
// /v1/sessions/{id}/exec with stream true, application/x-ndjson): output as
// it comes (Stream "stdout" or "stderr", Data its bytes, base64 in JSON),
// then a last line with ExitCode, or with Error when the command did not
// end on its own (its timeout).
type ExecEvent struct {
	Stream   string `json:"stream,omitempty"`
	Data     []byte `json:"data,omitempty"`
	ExitCode *int   `json:"exit_code,omitempty"`
	Error    string `json:"error,omitempty"`
}

// ExecStreamContentType is the media type of a streamed exec's answer.
const ExecStreamContentType = "application/x-ndjson"

// AppToken is the answer of POST /v1/sessions/{id}/apps/{name}/token: URL,
// on the apps origin, carries a token accepted once before ExpiresAt;
// opening it sets a cookie for that app alone there and redirects to the
// app.
type AppToken struct {
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expires_at"`
}
