package fsm

import (
	"fmt"

	"github.com/berth-cluster/berth/manager/apierr"
	"github.com/berth-cluster/berth/manager/state"
	"github.com/berth-cluster/berth/shared/api"
)

// FolderCreate records a new storage folder. The handler decided the id,
// the time and the host; the rules that depend on other records (names,
// max_vfolder_count) are checked here so concurrent creates cannot pass
// them together.
type FolderCreate struct {
	Folder state.Folder `json:"folder"`
}

// MsgType implements Command.
func (FolderCreate) MsgType() MsgType { return MsgFolderCreate }

func applyFolderCreate(tx *state.Txn, index uint64, c *FolderCreate) (any, error) {
	f := c.Folder
	f.Meta = state.Meta{}
	if old, err := tx.Folder(f.ID); err != nil {
		return nil, err
	} else if old != nil {
		return nil, apierr.New(apierr.Conflict, "folder %s already exists", f.ID)
	}
	var siblings []*state.Folder
	var err error
	if f.Type == state.FolderGroup {
		siblings, err = tx.FoldersOfGroup(f.Domain, f.Group)
	} else {
		siblings, err = tx.FoldersOfOwner(f.Owner)
	}
	if err != nil {
		return nil, err
	}
	for _, s := range siblings {
		if s.Name == f.Name && s.Type == f.Type {
			where := "you already have a folder named " + f.Name
			if f.Type == state.FolderGroup {
				where = fmt.Sprintf("group %s already has a folder named %s", f.Group, f.Name)
			}
			return nil, apierr.Field(apierr.Conflict, "name", where)
		}
	}
	if f.Type == state.FolderUser {
		if err := checkFolderCount(tx, f.Owner, f.AccessKey); err != nil {
			return nil, err
		}
	}
	if err := tx.PutFolder(index, &f); err != nil {
		return nil, err
	}
	return &f, nil
}

// checkFolderCount refuses one more folder for the user past the
// max_vfolder_count of the keypair's policy.
func checkFolderCount(tx *state.Txn, email, accessKey string) error {
	kp, err := tx.Keypair(accessKey)
	if err != nil {
		return err
	}
	if kp == nil {
		return apierr.Field(apierr.Invalid, "access_key", "no keypair with access key "+accessKey)
	}
	p, err := tx.ResourcePolicy(kp.ResourcePolicy)
	if err != nil {
		return err
	}
	if p == nil {
		return fmt.Errorf("keypair %s refers to resource policy %s, which does not exist", kp.AccessKey, kp.ResourcePolicy)
	}
	n, err := tx.FoldersCounted(email)
	if err != nil {
		return err
	}
	if n >= p.MaxVfolderCount {
		return apierr.New(apierr.Conflict, "%s has %d storage folders (created and invited); max_vfolder_count of resource policy %s is %d",
			email, n, p.Name, p.MaxVfolderCount)
	}
	return nil
}

// FolderDelete removes a folder and its invitations. The handler checked
// who may; here it is refused while a session that has not ended mounts it.
type FolderDelete struct {
	ID string `json:"id"`
}

// MsgType implements Command.
func (FolderDelete) MsgType() MsgType { return MsgFolderDelete }

func applyFolderDelete(tx *state.Txn, _ uint64, c *FolderDelete) (any, error) {
	f, err := tx.Folder(c.ID)
	if err != nil {
		return nil, err
	}
	if f == nil {
		return nil, apierr.New(apierr.NotFound, "no folder %s", c.ID)
	}
	// Sessions that have not ended mount, or will mount, their folders.
	for _, st := range api.SessionStatuses() {
		if st.Ended() {
			continue
		}
		ss, err := tx.SessionsInStatus(st)
		if err != nil {
			return nil, err
		}
		for _, s := range ss {
			for _, m := range s.Mounts {
				if m.Folder == f.ID {
					return nil, apierr.New(apierr.Conflict, "folder %s is mounted by session %s (%s); terminate the session first", f.Name, s.ID, s.Status)
				}
			}
		}
	}
	invs, err := tx.InvitationsOfFolder(f.ID)
	if err != nil {
		return nil, err
	}
	for _, inv := range invs {
		if err := tx.DeleteInvitation(inv); err != nil {
			return nil, err
		}
	}
	if err := tx.DeleteFolder(f); err != nil {
		return nil, err
	}
	return f, nil
}

// InvitationCreate invites a user to a user folder.
type InvitationCreate struct {
	Invitation state.Invitation `json:"invitation"`
}

// MsgType implements Command.
func (InvitationCreate) MsgType() MsgType { return MsgInvitationCreate }

func applyInvitationCreate(tx *state.Txn, index uint64, c *InvitationCreate) (any, error) {
	inv := c.Invitation
	inv.Meta = state.Meta{}
	f, err := tx.Folder(inv.Folder)
	if err != nil {
		return nil, err
	}
	if f == nil {
		return nil, apierr.New(apierr.NotFound, "no folder %s", inv.Folder)
	}
	if f.Type != state.FolderUser {
		return nil, apierr.New(apierr.Invalid, "folder %s is a group folder: every member of group %s sees it without an invitation", f.Name, f.Group)
	}
	if f.Owner != inv.Inviter {
		return nil, apierr.New(apierr.Forbidden, "only the owner of folder %s may invite", f.Name)
	}
	u, err := tx.User(inv.Invitee)
	if err != nil {
		return nil, err
	}
	// Folders are shared within their domain. A user of another domain gets
	// the same answer as an unknown email, so an invitation cannot probe
	// which emails exist elsewhere.
	if u == nil || u.Status != api.StatusActive || u.Domain != f.Domain {
		return nil, apierr.Field(apierr.Invalid, "invitee", "no active user with email "+inv.Invitee)
	}
	if u.Email == f.Owner {
		return nil, apierr.Field(apierr.Invalid, "invitee", "you own the folder; invite someone else")
	}
	others, err := tx.InvitationsOfFolder(f.ID)
	if err != nil {
		return nil, err
	}
	for _, o := range others {
		if o.Invitee == inv.Invitee && o.State != state.InvitationRejected {
			return nil, apierr.Field(apierr.Conflict, "invitee", fmt.Sprintf("%s is already invited to folder %s (%s)", inv.Invitee, f.Name, o.State))
		}
	}
	if old, err := tx.Invitation(inv.ID); err != nil {
		return nil, err
	} else if old != nil {
		return nil, apierr.New(apierr.Conflict, "invitation %s already exists", inv.ID)
	}
	inv.State = state.InvitationPending
	if err := tx.PutInvitation(index, &inv); err != nil {
		return nil, err
	}
	return &inv, nil
}

// InvitationAnswer is the invitee accepting or rejecting. Accepting counts
// against the invitee's max_vfolder_count (of AccessKey's policy).
type InvitationAnswer struct {
	ID        string `json:"id"`
	Invitee   string `json:"invitee"`
	Accept    bool   `json:"accept"`
	AccessKey string `json:"access_key"`
}

// MsgType implements Command.
func (InvitationAnswer) MsgType() MsgType { return MsgInvitationAnswer }

func applyInvitationAnswer(tx *state.Txn, index uint64, c *InvitationAnswer) (any, error) {
	old, err := tx.Invitation(c.ID)
	if err != nil {
		return nil, err
	}
	if old == nil || old.Invitee != c.Invitee {
		return nil, apierr.New(apierr.NotFound, "no invitation %s to you", c.ID)
	}
	if old.State != state.InvitationPending {
		return nil, apierr.New(apierr.Conflict, "invitation %s was already %s", c.ID, old.State)
	}
	inv := *old
	inv.State = state.InvitationRejected
	if c.Accept {
		if err := checkFolderCount(tx, c.Invitee, c.AccessKey); err != nil {
			return nil, err
		}
		inv.State = state.InvitationAccepted
	}
	if err := tx.PutInvitation(index, &inv); err != nil {
		return nil, err
	}
	return &inv, nil
}

// InvitationDelete revokes an invitation (the folder's owner or an admin)
// or leaves a shared folder (the invitee); the handler checked who.
type InvitationDelete struct {
	ID string `json:"id"`
}

// MsgType implements Command.
func (InvitationDelete) MsgType() MsgType { return MsgInvitationDelete }

func applyInvitationDelete(tx *state.Txn, _ uint64, c *InvitationDelete) (any, error) {
	inv, err := tx.Invitation(c.ID)
	if err != nil {
		return nil, err
	}
	if inv == nil {
		return nil, apierr.New(apierr.NotFound, "no invitation %s", c.ID)
	}
	if err := tx.DeleteInvitation(inv); err != nil {
		return nil, err
	}
	return inv, nil
}

// FolderUsage is one folder's measured bytes.
type FolderUsage struct {
	ID    string `json:"id"`
	Bytes int64  `json:"bytes"`
}

// FoldersUsage records measured usage; each folder is marked over quota
// here, against its policy as it is now, so the mark follows the policy
// deterministically on every node.
type FoldersUsage struct {
	Usage []FolderUsage `json:"usage"`
}

// MsgType implements Command.
func (FoldersUsage) MsgType() MsgType { return MsgFoldersUsage }

func applyFoldersUsage(tx *state.Txn, index uint64, c *FoldersUsage) (any, error) {
	changed := 0
	for _, u := range c.Usage {
		old, err := tx.Folder(u.ID)
		if err != nil {
			return nil, err
		}
		if old == nil {
			continue // deleted since it was measured
		}
		limit, err := tx.FolderSizeLimit(old)
		if err != nil {
			return nil, err
		}
		over := limit != nil && u.Bytes > *limit
		if old.UsageBytes == u.Bytes && old.OverQuota == over {
			continue
		}
		f := *old
		f.UsageBytes, f.OverQuota = u.Bytes, over
		if err := tx.PutFolder(index, &f); err != nil {
			return nil, err
		}
		changed++
	}
	return changed, nil
}

// checkMounts refuses a session whose mounted folders are gone (deleted
// between the handler's look and this entry).
func checkMounts(tx *state.Txn, s *state.Session) error {
	for _, m := range s.Mounts {
		if m.Folder == "" {
			continue
		}
		f, err := tx.Folder(m.Folder)
		if err != nil {
			return err
		}
		if f == nil {
			return apierr.Field(apierr.Invalid, "mounts", "folder "+m.Folder+" no longer exists")
		}
	}
	return nil
}
