package httpapi

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/berth-cluster/berth/manager/apierr"
	"github.com/berth-cluster/berth/manager/folderfs"
	"github.com/berth-cluster/berth/manager/fsm"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/ids"
)

func folderView(f *state.Folder, perm string) api.Folder {
	return api.Folder{ID: f.ID, Name: f.Name, Host: f.Host, Type: f.Type, Owner: f.Owner, Group: f.Group,
		Permission: perm, UsageBytes: f.UsageBytes, OverQuota: f.OverQuota, CreatedAt: f.CreatedAt}
}

func invitationView(tx *state.Txn, i *state.Invitation) api.Invitation {
	name := ""
	if f, err := tx.Folder(i.Folder); err == nil && f != nil {
		name = f.Name
	}
	return api.Invitation{ID: i.ID, Folder: i.Folder, FolderName: name, Inviter: i.Inviter, Invitee: i.Invitee,
		Permission: i.Permission, State: i.State, CreatedAt: i.CreatedAt}
}

// callerPolicy is the policy of the caller's keypair (token callers: their
// oldest active keypair), with that keypair.
func callerPolicy(tx *state.Txn, who *Identity) (*state.Keypair, *state.ResourcePolicy, error) {
	kp := who.Keypair
	if kp == nil {
		var err error
		if kp, err = loginKeypair(tx, who.User.Email); err != nil {
			return nil, nil, err
		}
	}
	p, err := tx.ResourcePolicy(kp.ResourcePolicy)
	if err != nil {
		return nil, nil, err
	}
	if p == nil {
		return nil, nil, fmt.Errorf("keypair %s refers to resource policy %s, which does not exist", kp.AccessKey, kp.ResourcePolicy)
	}
	return kp, p, nil
}

// visibleFolders are the folders the user sees, each with the user's
// permission: their own, group folders of their groups, accepted shares.
func visibleFolders(tx *state.Txn, u *state.User) ([]api.Folder, map[string]*state.Folder, error) {
	byID := map[string]*state.Folder{}
	own, err := tx.FoldersOfOwner(u.Email)
	if err != nil {
		return nil, nil, err
	}
	for _, f := range own {
		byID[f.ID] = f
	}
	for _, g := range u.Groups {
		gs, err := tx.FoldersOfGroup(u.Domain, g)
		if err != nil {
			return nil, nil, err
		}
		for _, f := range gs {
			byID[f.ID] = f
		}
	}
	invs, err := tx.InvitationsTo(u.Email)
	if err != nil {
		return nil, nil, err
	}
	for _, inv := range invs {
		if inv.State != state.InvitationAccepted {
			continue
		}
		f, err := tx.Folder(inv.Folder)
		if err != nil {
			return nil, nil, err
		}
		if f != nil {
			byID[f.ID] = f
		}
	}
	// Newest first, as every list a person reads.
	order := slices.SortedFunc(maps.Values(byID), func(x, y *state.Folder) int {
		return strings.Compare(state.NewestKey(x), state.NewestKey(y))
	})
	out := make([]api.Folder, 0, len(byID))
	for _, f := range order {
		perm, err := tx.FolderPermission(u, f)
		if err != nil {
			return nil, nil, err
		}
		if perm != "" {
			out = append(out, folderView(f, perm))
		}
	}
	return out, byID, nil
}

// resolveFolder finds a folder the user sees by id or by name. Admins and
// monitors reach the folders within their reach (scope.go) by id, with no
// permission of their own (""); any other folder is answered as missing.
func resolveFolder(tx *state.Txn, who *Identity, ref string) (*state.Folder, string, error) {
	views, byID, err := visibleFolders(tx, who.User)
	if err != nil {
		return nil, "", err
	}
	var hits []api.Folder
	for _, v := range views {
		if v.ID == ref {
			return byID[v.ID], v.Permission, nil
		}
		if v.Name == ref {
			hits = append(hits, v)
		}
	}
	switch len(hits) {
	case 1:
		return byID[hits[0].ID], hits[0].Permission, nil
	case 0:
		if watches(who) {
			f, err := tx.Folder(ref)
			if err != nil {
				return nil, "", err
			}
			if f != nil && canSeeFolder(who, tx, f) {
				return f, "", nil
			}
		}
		return nil, "", apierr.New(apierr.NotFound, "no folder %s that you can see; list yours with GET /v1/folders", ref)
	}
	ids := make([]string, len(hits))
	for i, h := range hits {
		ids[i] = h.ID
	}
	return nil, "", apierr.New(apierr.Conflict, "%d folders you can see are named %s (%s); use the id", len(hits), ref, strings.Join(ids, ", "))
}

func (a *API) listFolderHosts(c *Call) error {
	_, p, err := callerPolicy(a.cluster.Read(), c.Who)
	if err != nil {
		return err
	}
	out := api.List[api.FolderHost]{Items: []api.FolderHost{}}
	for _, h := range slices.Sorted(slices.Values(p.AllowedVfolderHosts)) {
		out.Items = append(out.Items, api.FolderHost{Name: h, Available: a.folders.Has(h)})
	}
	return c.JSON(http.StatusOK, out)
}

func (a *API) listFolders(c *Call) error {
	views, byID, err := visibleFolders(a.cluster.Read(), c.Who.User)
	if err != nil {
		return err
	}
	out, err := pageOf(c, views, func(f api.Folder) string { return state.NewestKey(byID[f.ID]) })
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

func (a *API) getFolder(c *Call) error {
	tx := a.cluster.Read()
	f, perm, err := resolveFolder(tx, c.Who, c.R.PathValue("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, folderView(f, perm))
}

func (a *API) createFolder(c *Call) error {
	var req api.FolderCreate
	if err := c.Decode(&req); err != nil {
		return err
	}
	tx := a.cluster.Read()
	kp, policy, err := callerPolicy(tx, c.Who)
	if err != nil {
		return err
	}
	var bad apierr.Fields
	if !validName.MatchString(req.Name) {
		bad.Add("name", "name %s", nameRule)
	}
	if req.Host == "" {
		bad.Add("host", "host is required: one of GET /v1/folder-hosts")
	}
	if req.Type == "" {
		req.Type = api.FolderUser
	}
	switch req.Type {
	case api.FolderUser:
		if req.Group != "" {
			bad.Add("group", "only group folders name a group")
		}
		if req.Domain != "" {
			bad.Add("domain", "only group folders name a domain")
		}
		if req.Permission != "" {
			bad.Add("permission", "a user folder is yours (wd); share it with invitations")
		}
	case api.FolderGroup:
		if req.Group == "" {
			bad.Add("group", "a group folder needs the group whose members see it")
		}
		if req.Permission == "" {
			req.Permission = api.PermRO
		}
		if req.Permission != api.PermRO && req.Permission != api.PermRW {
			bad.Add("permission", "permission must be ro or rw (what the group's members may do)")
		}
	default:
		bad.Add("type", "type must be user or group")
	}
	if err := bad.Err(); err != nil {
		return err
	}
	u := c.Who.User
	domain := u.Domain
	if req.Type == api.FolderGroup {
		if !c.Who.IsAdmin() {
			return apierr.New(apierr.Forbidden, "only admins create group folders; ask one, or create a user folder and invite people")
		}
		if a.cfg.NoGroupFolders {
			return apierr.New(apierr.Forbidden, "group folders are disabled on this cluster (berth-manager -allow-group-folders=false)")
		}
		if req.Domain != "" && req.Domain != domain {
			// A superadmin reaches every domain's groups; an admin only
			// their own domain's.
			if c.Who.Role() != api.RoleSuperadmin {
				return apierr.Field(apierr.Forbidden, "domain", fmt.Sprintf("only a superadmin creates group folders for another domain's groups; yours is %s", domain))
			}
			domain = req.Domain
		}
		g, err := tx.Group(domain, req.Group)
		if err != nil {
			return err
		}
		if g == nil {
			return apierr.Field(apierr.Invalid, "group", fmt.Sprintf("no group %s in domain %s", req.Group, domain))
		}
	}
	if !slices.Contains(policy.AllowedVfolderHosts, req.Host) {
		return apierr.New(apierr.Forbidden, "folder host %s is not in allowed_vfolder_hosts of resource policy %s (%s)",
			req.Host, policy.Name, strings.Join(policy.AllowedVfolderHosts, ", "))
	}
	if !a.folders.Has(req.Host) {
		return apierr.New(apierr.Conflict, "folder host %s is not configured on this manager (-folder-host %s=PATH)", req.Host, req.Host)
	}
	id, err := ids.New(a.rnd, ids.Folder)
	if err != nil {
		return err
	}
	f := state.Folder{ID: id, Name: req.Name, Host: req.Host, Type: req.Type, Owner: u.Email, AccessKey: kp.AccessKey,
		Domain: domain, CreatedAt: a.now().UTC()}
	if req.Type == api.FolderGroup {
		f.Group, f.Permission = req.Group, req.Permission
	}
	// The directory first: a folder recorded without one would fail every
	// file call and mount.
	if err := a.folders.Create(f.Host, f.ID); err != nil {
		return err
	}
	got, err := propose[*state.Folder](c, fsm.FolderCreate{Folder: f})
	if err != nil {
		if rerr := a.folders.Remove(f.Host, f.ID); rerr != nil {
			a.log.Error("remove directory of a folder not created", "folder", f.ID, "err", rerr)
		}
		return err
	}
	perm, err := a.cluster.Read().FolderPermission(u, got)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, folderView(got, perm))
}

func (a *API) deleteFolder(c *Call) error {
	tx := a.cluster.Read()
	f, perm, err := resolveFolder(tx, c.Who, c.R.PathValue("id"))
	if err != nil {
		return err
	}
	if perm != api.PermWD && !canManageFolder(c.Who, tx, f) {
		if perm == "" {
			perm = "no permission on it" // a monitor sees it and may not change it
		}
		return apierr.New(apierr.Forbidden, "only the owner of folder %s or an admin may delete it; you have %s", f.Name, perm)
	}
	if !a.folders.Has(f.Host) {
		return apierr.New(apierr.Conflict, "folder host %s is not configured on this manager, so its files cannot be removed (-folder-host %s=PATH)", f.Host, f.Host)
	}
	if err := c.Propose(fsm.FolderDelete{ID: f.ID}); err != nil {
		return err
	}
	if err := a.folders.Remove(f.Host, f.ID); err != nil {
		a.log.Error("remove directory of a deleted folder", "folder", f.ID, "err", err)
	}
	c.W.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) createInvitation(c *Call) error {
	var req api.InvitationCreate
	if err := c.Decode(&req); err != nil {
		return err
	}
	var bad apierr.Fields
	req.Invitee = normalizeEmail(req.Invitee)
	if req.Invitee == "" {
		bad.Add("invitee", "invitee is required: the email of the user to share with")
	}
	if req.Permission != api.PermRO && req.Permission != api.PermRW {
		bad.Add("permission", "permission must be ro or rw")
	}
	if err := bad.Err(); err != nil {
		return err
	}
	tx := a.cluster.Read()
	f, perm, err := resolveFolder(tx, c.Who, c.R.PathValue("id"))
	if err != nil {
		return err
	}
	if perm != api.PermWD {
		return apierr.New(apierr.Forbidden, "only the owner of folder %s may invite", f.Name)
	}
	id, err := ids.New(a.rnd, ids.Invitation)
	if err != nil {
		return err
	}
	v, err := propose[*state.Invitation](c, fsm.InvitationCreate{Invitation: state.Invitation{ID: id, Folder: f.ID, Inviter: c.Who.User.Email,
		Invitee: req.Invitee, Permission: req.Permission, CreatedAt: a.now().UTC()}})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, invitationView(a.cluster.Read(), v))
}

func (a *API) listInvitations(c *Call) error {
	tx := a.cluster.Read()
	to, err := tx.InvitationsTo(c.Who.User.Email)
	if err != nil {
		return err
	}
	from, err := tx.InvitationsFrom(c.Who.User.Email)
	if err != nil {
		return err
	}
	all := slices.Concat(to, from)
	slices.SortFunc(all, func(x, y *state.Invitation) int { return strings.Compare(x.ID, y.ID) })
	views := make([]api.Invitation, 0, len(all))
	for _, i := range all {
		views = append(views, invitationView(tx, i))
	}
	out, err := pageOf(c, views, func(i api.Invitation) string { return i.ID })
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

func (a *API) answerInvitation(accept bool) func(c *Call) error {
	return func(c *Call) error {
		kp, _, err := callerPolicy(a.cluster.Read(), c.Who)
		if err != nil {
			return err
		}
		v, err := propose[*state.Invitation](c, fsm.InvitationAnswer{ID: c.R.PathValue("id"), Invitee: c.Who.User.Email, Accept: accept, AccessKey: kp.AccessKey})
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, invitationView(a.cluster.Read(), v))
	}
}

func (a *API) deleteInvitation(c *Call) error {
	tx := a.cluster.Read()
	inv, err := tx.Invitation(c.R.PathValue("id"))
	if err != nil {
		return err
	}
	if inv == nil || !canManageInvitation(c.Who, tx, inv) {
		return apierr.New(apierr.NotFound, "no invitation %s from or to you", c.R.PathValue("id"))
	}
	if err := c.Propose(fsm.InvitationDelete{ID: inv.ID}); err != nil {
		return err
	}
	c.W.WriteHeader(http.StatusNoContent)
	return nil
}

// fileFolder resolves the folder of a files call and checks the caller may
// read it (write: and write to it).
func (a *API) fileFolder(c *Call, write bool) (*state.Folder, error) {
	tx := a.cluster.Read()
	f, perm, err := resolveFolder(tx, c.Who, c.R.PathValue("id"))
	if err != nil {
		return nil, err
	}
	if perm == "" {
		return nil, apierr.New(apierr.Forbidden, "you have no permission on folder %s", f.Name)
	}
	if write && perm == api.PermRO {
		return nil, apierr.New(apierr.Forbidden, "folder %s is read-only for you (permission ro)", f.Name)
	}
	if !a.folders.Has(f.Host) {
		return nil, apierr.New(apierr.Conflict, "folder host %s is not configured on this manager (-folder-host %s=PATH), so it cannot serve the folder's files", f.Host, f.Host)
	}
	return f, nil
}

// fileErr turns a folderfs error into the answer a person can act on.
func fileErr(err error) error {
	var k apierr.Kind
	switch {
	case err == nil:
		return nil
	case errors.Is(err, folderfs.ErrBadPath), errors.Is(err, folderfs.ErrNotRegular):
		k = apierr.Invalid
	case errors.Is(err, folderfs.ErrNotFound):
		k = apierr.NotFound
	case errors.Is(err, folderfs.ErrIsDir), errors.Is(err, folderfs.ErrExists):
		k = apierr.Conflict
	case errors.Is(err, folderfs.ErrNoHost):
		k = apierr.Conflict
	case errors.Is(err, folderfs.ErrTooLarge):
		k = apierr.TooLarge
	default:
		return err
	}
	return apierr.New(k, "%s", err.Error())
}

func (a *API) listFiles(c *Call) error {
	f, err := a.fileFolder(c, false)
	if err != nil {
		return err
	}
	items, err := a.folders.List(f.Host, f.ID, c.R.URL.Query().Get("path"))
	if err != nil {
		return fileErr(err)
	}
	return c.JSON(http.StatusOK, api.List[api.FileEntry]{Items: items})
}

func (a *API) downloadFile(c *Call) error {
	f, err := a.fileFolder(c, false)
	if err != nil {
		return err
	}
	file, err := a.folders.Open(f.Host, f.ID, c.R.PathValue("path"))
	if err != nil {
		return fileErr(err)
	}
	defer file.Close()
	c.W.Header().Set("Content-Type", "application/octet-stream")
	c.W.Header().Set("Content-Length", strconv.FormatInt(file.Info.Size(), 10))
	c.W.WriteHeader(http.StatusOK)
	if _, err := io.Copy(c.W, file); err != nil {
		a.log.Warn("download interrupted", "folder", f.ID, "path", c.R.PathValue("path"), "err", err)
	}
	return nil
}

// uploadFile streams the body to a temporary file in the folder, renamed
// into place only once all of it arrived, matching its content hash, within
// the folder's size limit; room under the limit is reserved first, so
// uploads running at once cannot together pass it.
func (a *API) uploadFile(c *Call) error {
	f, err := a.fileFolder(c, true)
	if err != nil {
		return err
	}
	limit, err := a.cluster.Read().FolderSizeLimit(f)
	if err != nil {
		return err
	}
	if limit != nil && f.OverQuota {
		return apierr.New(apierr.TooLarge, "folder %s is over its max_vfolder_size of %d bytes (it holds %d); delete files before uploading more", f.Name, *limit, f.UsageBytes)
	}
	n, err := a.folders.Write(f.Host, f.ID, c.R.PathValue("path"), c.R.Body, c.R.ContentLength, limit)
	if qe, ok := errors.AsType[*folderfs.QuotaError](err); ok {
		return apierr.New(apierr.TooLarge, "the upload does not fit in folder %s: %v; nothing was kept", f.Name, qe)
	}
	if berr := bodyErr(err, "the upload"); berr != nil {
		return berr
	}
	if err != nil {
		return fileErr(err)
	}
	a.recordUsage(c, f)
	p, _ := folderfs.Clean(c.R.PathValue("path"))
	return c.JSON(http.StatusCreated, api.FileEntry{Name: p[strings.LastIndexByte(p, '/')+1:], Path: p, Type: "file", Size: n, ModifiedAt: a.now().UTC()})
}

func (a *API) makeDirectory(c *Call) error {
	var req api.DirectoryCreate
	if err := c.Decode(&req); err != nil {
		return err
	}
	if req.Path == "" {
		return apierr.Field(apierr.Invalid, "path", "path is required: the directory to make, e.g. data/raw")
	}
	f, err := a.fileFolder(c, true)
	if err != nil {
		return err
	}
	e, err := a.folders.Mkdir(f.Host, f.ID, req.Path)
	if err != nil {
		return fileErr(err)
	}
	return c.JSON(http.StatusCreated, e)
}

func (a *API) deleteFile(c *Call) error {
	f, err := a.fileFolder(c, true)
	if err != nil {
		return err
	}
	if err := a.folders.Delete(f.Host, f.ID, c.R.PathValue("path")); err != nil {
		return fileErr(err)
	}
	a.recordUsage(c, f)
	c.W.WriteHeader(http.StatusNoContent)
	return nil
}

// recordUsage measures the folder after a change and records it, so
// listings show it at once; the leader's loop catches what sessions write.
func (a *API) recordUsage(c *Call, f *state.Folder) {
	used, err := a.folders.Usage(f.Host, f.ID)
	if err == nil {
		err = c.Propose(fsm.FoldersUsage{Usage: []fsm.FolderUsage{{ID: f.ID, Bytes: used}}})
	}
	if err != nil {
		a.log.Warn("record folder usage", "folder", f.ID, "err", err)
	}
}

// FolderMountRoot is where a session's folders appear: /home/work/NAME.
const FolderMountRoot = "/home/work"

// resolveMounts turns the folder names or ids of a session request into
// mounts at /home/work/NAME, read-only unless the caller may write and the
// folder is within its size limit. Problems go to bad.
func resolveMounts(tx *state.Txn, who *Identity, refs []string, bad *apierr.Fields) ([]api.Mount, error) {
	var out []api.Mount
	seen := map[string]bool{}
	targets := map[string]bool{}
	for _, ref := range refs {
		f, perm, err := resolveFolder(tx, who, ref)
		var ae *apierr.Error
		if errors.As(err, &ae) {
			bad.Add("mounts", "%s", ae.Detail)
			continue
		}
		if err != nil {
			return nil, err
		}
		if perm == "" {
			bad.Add("mounts", "you have no permission on folder %s", f.Name)
			continue
		}
		if seen[f.ID] {
			bad.Add("mounts", "folder %s is named twice", f.Name)
			continue
		}
		seen[f.ID] = true
		target := FolderMountRoot + "/" + f.Name
		if targets[target] {
			bad.Add("mounts", "two folders named %s would both mount at %s; mount one of them", f.Name, target)
			continue
		}
		targets[target] = true
		// An over-quota folder is mounted read-only: what a session writes
		// there could not be measured in time to stop it.
		ro := perm == api.PermRO || f.OverQuota
		out = append(out, api.Mount{Host: f.Host, Folder: f.ID, Target: target, ReadOnly: ro})
	}
	return out, nil
}

// sessionMounts are the storage folders of a session as the API shows them.
func sessionMounts(s *state.Session) []api.SessionMount {
	out := []api.SessionMount{}
	for _, m := range s.Mounts {
		if m.Folder != "" {
			out = append(out, api.SessionMount{Folder: m.Folder, Host: m.Host, Target: m.Target, ReadOnly: m.ReadOnly})
		}
	}
	return out
}
