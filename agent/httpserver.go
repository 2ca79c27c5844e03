package agent

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/berth-cluster/berth/agent/runtime"
	"github.com/berth-cluster/berth/shared/api"
)

// The agent's API is for the managers: exec, logs, terminals and port
// tunnels of its containers, authenticated with the secret the managers
// gave this agent. /metrics and
// /healthz are open, for Prometheus and probes.

const (
	maxExecTimeout     = 10 * time.Minute
	defaultExecTimeout = 30 * time.Second
)

func (a *Agent) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "id": a.ID()})
	})
	if a.cfg.Gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(a.cfg.Gatherer, promhttp.HandlerOpts{}))
	}
	mux.HandleFunc("POST /v1/containers/{id}/exec", a.authed(a.exec))
	mux.HandleFunc("GET /v1/containers/{id}/logs", a.authed(a.logs))
	mux.HandleFunc("GET /v1/containers/{id}/terminal", a.authed(a.terminal))
	mux.HandleFunc("GET /v1/containers/{id}/ports/{port}/tunnel", a.authed(a.tunnel))
	mux.HandleFunc("POST /v1/images/pull", a.authed(a.pullImage))
	mux.HandleFunc("DELETE /v1/images/{ref...}", a.authed(a.removeImage))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		problem(w, http.StatusNotFound, fmt.Sprintf("no route %s %s", r.Method, r.URL.Path))
	})
	return mux
}

// authed admits only callers that present this agent's secret.
func (a *Agent) authed(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		secret := a.credentials().Secret
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || secret == "" || subtle.ConstantTimeCompare([]byte(got), []byte(secret)) != 1 {
			problem(w, http.StatusUnauthorized, "this endpoint is for the managers: send Authorization: Bearer with the agent's secret")
			return
		}
		h(w, r)
	}
}

func (a *Agent) exec(w http.ResponseWriter, r *http.Request) {
	var req api.ExecRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		problem(w, http.StatusBadRequest, "the body must be {\"command\":[...],\"timeout_s\":N}: "+err.Error())
		return
	}
	if len(req.Command) == 0 {
		problem(w, http.StatusBadRequest, "command must name a program to run")
		return
	}
	timeout := defaultExecTimeout
	if req.TimeoutS > 0 {
		timeout = min(time.Duration(req.TimeoutS)*time.Second, maxExecTimeout)
	}
	if req.Stream {
		a.execStream(w, r, req.Command, timeout)
		return
	}
	res, err := a.cfg.Runtime.Exec(r.Context(), r.PathValue("id"), req.Command, timeout)
	if err != nil {
		runtimeProblem(w, err)
		return
	}
	writeJSON(w, http.StatusOK, api.ExecResult{ExitCode: res.ExitCode, Stdout: string(res.Stdout), Stderr: string(res.Stderr)})
}

func runtimeProblem(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, runtime.ErrNotFound):
		problem(w, http.StatusNotFound, err.Error())
	case errors.Is(err, runtime.ErrNotRunning):
		problem(w, http.StatusConflict, err.Error())
	default:
		problem(w, http.StatusBadGateway, "the container runtime failed: "+err.Error())
	}
}

func problem(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", api.ProblemContentType)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(api.Problem{Type: "https://berth.dev/problems/agent", Title: http.StatusText(status), Status: status, Detail: detail})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
