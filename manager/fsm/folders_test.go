package fsm

import (
	"strings"
	"testing"
	"time"

	"github.com/berth-cluster/berth/manager/apierr"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
)

// folderStep is one folder entry with what the FSM must answer.
type folderStep struct {
	cmd     Command
	refusal string // "" when the entry must apply
}

// folderSteps write both folder tables, with refusals of every rule.
func folderSteps(base time.Time) []folderStep {
	size := int64(100)
	user := func(email, ak string) UserCreate {
		return UserCreate{User: state.User{Email: email, Username: strings.Split(email, "@")[0], Role: api.RoleUser, Status: api.StatusActive,
			Domain: "default", Groups: []string{"default"}, CreatedAt: base},
			Keypair: state.Keypair{AccessKey: ak, User: email, IsActive: true, ResourcePolicy: "folders", CreatedAt: base}}
	}
	folder := func(id, name, typ, owner, ak string) FolderCreate {
		f := state.Folder{ID: id, Name: name, Host: "local", Type: typ, Owner: owner, AccessKey: ak, Domain: "default", CreatedAt: base}
		if typ == state.FolderGroup {
			f.Group, f.Permission = "default", state.PermRO
		}
		return FolderCreate{Folder: f}
	}
	invite := func(id, folder, from, to string) InvitationCreate {
		return InvitationCreate{Invitation: state.Invitation{ID: id, Folder: folder, Inviter: from, Invitee: to, Permission: state.PermRW, CreatedAt: base}}
	}
	return []folderStep{
		{PolicyCreate{Policy: state.ResourcePolicy{ResourcePolicy: api.ResourcePolicy{Name: "folders", MaxContainersPerSession: 1,
			AllowedVfolderHosts: []string{"local"}, MaxVfolderCount: 1, MaxVfolderSize: &size, CreatedAt: base}}}, ""},
		{user("fo@x.io", "AKFO000000000000000"), ""},
		{user("fi@x.io", "AKFI000000000000000"), ""},
		{folder("f-1", "data", state.FolderUser, "fo@x.io", "AKFO000000000000000"), ""},
		{folder("f-2", "more", state.FolderUser, "fo@x.io", "AKFO000000000000000"), "max_vfolder_count of resource policy folders is 1"},
		{folder("f-3", "shared", state.FolderGroup, "admin@x.io", "AKADMIN000000000000"), ""},
		{folder("f-4", "shared", state.FolderGroup, "admin@x.io", "AKADMIN000000000000"), "group default already has a folder named shared"},
		{invite("i-1", "f-1", "fo@x.io", "fi@x.io"), ""},
		{invite("i-2", "f-1", "fo@x.io", "fi@x.io"), "fi@x.io is already invited to folder data (pending)"},
		{invite("i-3", "f-1", "fi@x.io", "fo@x.io"), "only the owner of folder data may invite"},
		{invite("i-4", "f-3", "admin@x.io", "fi@x.io"), "is a group folder"},
		{InvitationAnswer{ID: "i-1", Invitee: "fo@x.io", Accept: true, AccessKey: "AKFO000000000000000"}, "no invitation i-1 to you"},
		{InvitationAnswer{ID: "i-1", Invitee: "fi@x.io", Accept: true, AccessKey: "AKFI000000000000000"}, ""},
		{InvitationAnswer{ID: "i-1", Invitee: "fi@x.io", Accept: false, AccessKey: "AKFI000000000000000"}, "invitation i-1 was already accepted"},
		// An accepted invitation counts against max_vfolder_count.
		{folder("f-5", "own", state.FolderUser, "fi@x.io", "AKFI000000000000000"), "fi@x.io has 1 storage folders (created and invited)"},
		{FoldersUsage{Usage: []FolderUsage{{ID: "f-1", Bytes: 150}, {ID: "f-3", Bytes: 10}, {ID: "f-gone", Bytes: 5}}}, ""},
		{folder("f-7", "tmp", state.FolderGroup, "admin@x.io", "AKADMIN000000000000"), ""},
		{invite("i-5", "f-1", "fo@x.io", "ghost@x.io"), "no active user with email ghost@x.io"},
		// Someone of another domain is answered as if unknown.
		{DomainCreate{Domain: state.Domain{Name: "other", IsActive: true, CreatedAt: base}}, ""},
		{UserCreate{User: state.User{Email: "fx@x.io", Username: "fx", Role: api.RoleUser, Status: api.StatusActive,
			Domain: "other", Groups: []string{}, CreatedAt: base},
			Keypair: state.Keypair{AccessKey: "AKFX000000000000000", User: "fx@x.io", IsActive: true, ResourcePolicy: "folders", CreatedAt: base}}, ""},
		{invite("i-6", "f-1", "fo@x.io", "fx@x.io"), "no active user with email fx@x.io"},
		{FolderDelete{ID: "f-7"}, ""},
		{FolderDelete{ID: "f-7"}, "no folder f-7"},
		{InvitationDelete{ID: "i-9"}, "no invitation i-9"},
	}
}

func folderEntries(base time.Time) []Command {
	var out []Command
	for _, s := range folderSteps(base) {
		out = append(out, s.cmd)
	}
	return out
}

func TestFolderRulesDecidedByTheFSM(t *testing.T) {
	f := newTestFSM()
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	applyAll(t, f, testLog(t, 1, 5)[:1]) // bootstrap only
	for i, s := range folderSteps(base) {
		b, err := Encode(s.cmd)
		if err != nil {
			t.Fatal(err)
		}
		r := f.ApplyEntry(uint64(100+i), b)
		switch {
		case s.refusal == "" && r.Err != nil:
			t.Errorf("step %d (%T) refused: %v", i, s.cmd, r.Err)
		case s.refusal != "" && r.Err == nil:
			t.Errorf("step %d (%T) applied, want refused with %q", i, s.cmd, s.refusal)
		case s.refusal != "":
			var ae *apierr.Error
			if !asAPIErr(r.Err, &ae) || !strings.Contains(ae.Error(), s.refusal) {
				t.Errorf("step %d (%T) refused with %v, want %q", i, s.cmd, r.Err, s.refusal)
			}
		}
	}
	tx := f.State().Read()
	f1, _ := tx.Folder("f-1")
	f3, _ := tx.Folder("f-3")
	if f1 == nil || f1.UsageBytes != 150 || !f1.OverQuota {
		t.Errorf("f-1 %+v, want 150 bytes and over its 100-byte limit", f1)
	}
	if f3 == nil || f3.UsageBytes != 10 || f3.OverQuota {
		t.Errorf("f-3 %+v, want 10 bytes and not over quota (the admin's policy has no limit)", f3)
	}
	fi, _ := tx.User("fi@x.io")
	if perm, _ := tx.FolderPermission(fi, f1); perm != state.PermRW {
		t.Errorf("fi's permission on f-1 is %q, want rw by the accepted invitation", perm)
	}
	if perm, _ := tx.FolderPermission(fi, f3); perm != state.PermRO {
		t.Errorf("fi's permission on the group folder is %q, want ro as a member", perm)
	}
	if g, _ := tx.FoldersOfGroup("default", "default"); len(g) != 1 {
		t.Errorf("group folders of default: %d, want 1 (f-7 deleted)", len(g))
	}
}

// TestFolderDeleteRefusedWhileASessionMountsIt: a session that has not
// ended holds its folders; a session cannot be created on a folder that is
// gone.
func TestFolderDeleteRefusedWhileASessionMountsIt(t *testing.T) {
	f := newTestFSM()
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	applyAll(t, f, testLog(t, 1, 5)[:1])
	s := newSession("s1", "AKADMIN000000000000", api.SessionBatch, 1000, 1, base)
	s.Session.Mounts = []api.Mount{{Host: "local", Folder: "f-3", Target: "/home/work/shared", ReadOnly: true}}
	steps := []folderStep{
		{s, "folder f-3 no longer exists"},
		{folderSteps(base)[5].cmd, ""},
		{s, ""},
		{FolderDelete{ID: "f-3"}, "folder shared is mounted by session s1 (PENDING)"},
		{SessionTerminate{SessionID: "s1", At: base}, ""},
		{FolderDelete{ID: "f-3"}, ""},
	}
	for i, st := range steps {
		b, err := Encode(st.cmd)
		if err != nil {
			t.Fatal(err)
		}
		r := f.ApplyEntry(uint64(100+i), b)
		if (r.Err == nil) != (st.refusal == "") || (r.Err != nil && !strings.Contains(r.Err.Error(), st.refusal)) {
			t.Errorf("step %d (%T): %v, want refusal %q", i, st.cmd, r.Err, st.refusal)
		}
	}
}
