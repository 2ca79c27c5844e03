package agent

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/berth-cluster/berth/agent/runtime"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/imageref"
)

// The managers' image calls: a pull ahead of the sessions that need it
// (its progress goes out with the heartbeats), and a removal.

func (a *Agent) pullImage(w http.ResponseWriter, r *http.Request) {
	var req api.AgentImagePull
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		problem(w, http.StatusBadRequest, "the body must be {\"image\":...,\"registries\":[...]}: "+err.Error())
		return
	}
	if _, err := imageref.Parse(req.Image); err != nil {
		problem(w, http.StatusBadRequest, err.Error())
		return
	}
	a.pulls.get(req.Image, req.Registries)
	writeJSON(w, http.StatusAccepted, api.ImagePullAccepted{Image: req.Image, Agents: []string{a.ID()}})
}

func (a *Agent) removeImage(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("ref")
	if _, err := imageref.Parse(name); err != nil {
		problem(w, http.StatusBadRequest, err.Error())
		return
	}
	// A container about to start from it counts as a user too.
	for _, want := range a.conv.imagesWanted() {
		if imageref.Same(want, name) {
			problem(w, http.StatusConflict, "image "+name+" is the image of a container the managers want here; it stays while they do")
			return
		}
	}
	if a.pulls.pulling(name) {
		problem(w, http.StatusConflict, "image "+name+" is being pulled; remove it once the pull ended")
		return
	}
	err := a.cfg.Runtime.RemoveImage(r.Context(), name)
	switch {
	case err == nil:
		a.log.Info("image removed at the managers' request", "image", name)
		w.WriteHeader(http.StatusNoContent)
	case errors.Is(err, runtime.ErrImageInUse):
		problem(w, http.StatusConflict, err.Error())
	case errors.Is(err, runtime.ErrImageNotFound):
		problem(w, http.StatusNotFound, "this agent has no image "+name)
	default:
		problem(w, http.StatusBadGateway, "the container runtime failed: "+err.Error())
	}
}
