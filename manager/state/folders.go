package state

import (
	"slices"
	"time"

	"github.com/hashicorp/go-memdb"
)

// Folder types and permissions (docs/API.md "Storage folders").
const (
	FolderUser  = "user"
	FolderGroup = "group"

	PermRO = "ro" // read
	PermRW = "rw" // read, write
	PermWD = "wd" // read, write, delete the folder (the owner)
)

// Folder is a storage folder's metadata; its bytes live in the directory
// named by ID under its host's path on every manager and agent.
type Folder struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Host string `json:"host"`
	Type string `json:"type"`
	// Owner made the folder (for a group folder: the admin who made it).
	Owner string `json:"owner"`
	// AccessKey is the keypair it was made with: its policy's
	// max_vfolder_size bounds the folder.
	AccessKey string `json:"access_key"`
	Domain    string `json:"domain"`
	// Group and Permission are set on group folders: every member of the
	// group sees the folder with Permission.
	Group      string `json:"group,omitempty"`
	Permission string `json:"permission,omitempty"`
	UsageBytes int64  `json:"usage_bytes"`
	// OverQuota is set when the last measured usage passed the policy's
	// max_vfolder_size: writes through the API and rw mounts are refused.
	OverQuota bool      `json:"over_quota"`
	CreatedAt time.Time `json:"created_at"`
	// GroupKey is derived (domain and group of a group folder) for the index.
	GroupKey string `json:"group_key,omitempty"`
	Meta
}

func (f *Folder) id() string { return f.ID }

// groupKey indexes group folders by domain and group; user folders have none.
func (f *Folder) groupKey() string {
	if f.Type != FolderGroup {
		return ""
	}
	return f.Domain + "\x00" + f.Group
}

const tableFolders = "folders"

// Table ids 50 and 51 follow the folders' FSM numbers so that tables added
// in parallel elsewhere cannot collide with them.
func foldersTable() Table {
	return Table{Name: tableFolders, ID: 50, New: func() any { return new(Folder) },
		schema: &memdb.TableSchema{Indexes: map[string]*memdb.IndexSchema{
			"id":    stringIndex("id", "ID", true, false),
			"owner": stringIndex("owner", "Owner", false, false),
			"group": {Name: "group", AllowMissing: true, Indexer: &memdb.StringFieldIndex{Field: "GroupKey"}},
		}}}
}

// Folder returns the folder with the id or nil.
func (t *Txn) Folder(id string) (*Folder, error) { return first[Folder](t, tableFolders, "id", id) }

// FoldersOfOwner lists the folders a user made, by id.
func (t *Txn) FoldersOfOwner(email string) ([]*Folder, error) {
	return list[Folder](t, tableFolders, "owner", email)
}

// FoldersOfGroup lists the group folders of a group, by id.
func (t *Txn) FoldersOfGroup(domain, group string) ([]*Folder, error) {
	return list[Folder](t, tableFolders, "group", domain+"\x00"+group)
}

// Folders lists every folder by id.
func (t *Txn) Folders() ([]*Folder, error) { return list[Folder](t, tableFolders, "id") }

// PutFolder inserts or replaces a folder at the Raft index.
func (t *Txn) PutFolder(index uint64, f *Folder) error {
	f.GroupKey = f.groupKey()
	return t.put(tableFolders, index, f)
}

// DeleteFolder removes a folder.
func (t *Txn) DeleteFolder(f *Folder) error { return t.remove(tableFolders, f) }

// Invitation states.
const (
	InvitationPending  = "pending"
	InvitationAccepted = "accepted"
	InvitationRejected = "rejected"
)

// Invitation shares a user folder with another user at a permission.
type Invitation struct {
	ID         string    `json:"id"`
	Folder     string    `json:"folder"`
	Inviter    string    `json:"inviter"`
	Invitee    string    `json:"invitee"`
	Permission string    `json:"permission"`
	State      string    `json:"state"`
	CreatedAt  time.Time `json:"created_at"`
	Meta
}

func (i *Invitation) id() string { return i.ID }

const tableInvitations = "folder_invitations"

func invitationsTable() Table {
	return Table{Name: tableInvitations, ID: 51, New: func() any { return new(Invitation) },
		schema: &memdb.TableSchema{Indexes: map[string]*memdb.IndexSchema{
			"id":      stringIndex("id", "ID", true, false),
			"folder":  stringIndex("folder", "Folder", false, false),
			"invitee": stringIndex("invitee", "Invitee", false, false),
			"inviter": stringIndex("inviter", "Inviter", false, false),
		}}}
}

// Invitation returns the invitation with the id or nil.
func (t *Txn) Invitation(id string) (*Invitation, error) {
	return first[Invitation](t, tableInvitations, "id", id)
}

// InvitationsOfFolder lists a folder's invitations, any state.
func (t *Txn) InvitationsOfFolder(folder string) ([]*Invitation, error) {
	return list[Invitation](t, tableInvitations, "folder", folder)
}

// InvitationsTo lists the invitations a user received, any state.
func (t *Txn) InvitationsTo(email string) ([]*Invitation, error) {
	return list[Invitation](t, tableInvitations, "invitee", email)
}

// InvitationsFrom lists the invitations a user sent, any state.
func (t *Txn) InvitationsFrom(email string) ([]*Invitation, error) {
	return list[Invitation](t, tableInvitations, "inviter", email)
}

// PutInvitation inserts or replaces an invitation at the Raft index.
func (t *Txn) PutInvitation(index uint64, i *Invitation) error {
	return t.put(tableInvitations, index, i)
}

// DeleteInvitation removes an invitation.
func (t *Txn) DeleteInvitation(i *Invitation) error { return t.remove(tableInvitations, i) }

// FolderPermission is what the user may do with the folder: wd for its
// owner, the member permission for members of a group folder's group, the
// invited permission after an accepted invitation; "" when the user may not
// see it at all.
func (t *Txn) FolderPermission(u *User, f *Folder) (string, error) {
	if f.Owner == u.Email {
		return PermWD, nil
	}
	if f.Type == FolderGroup {
		if u.Domain == f.Domain && slices.Contains(u.Groups, f.Group) {
			return f.Permission, nil
		}
		return "", nil
	}
	invs, err := t.InvitationsTo(u.Email)
	if err != nil {
		return "", err
	}
	for _, inv := range invs {
		if inv.Folder == f.ID && inv.State == InvitationAccepted {
			return inv.Permission, nil
		}
	}
	return "", nil
}

// FolderSizeLimit is the max_vfolder_size bounding the folder: that of the
// policy of the keypair it was made with, or, when that keypair is gone, of
// the owner's oldest active keypair; nil is unlimited.
func (t *Txn) FolderSizeLimit(f *Folder) (*int64, error) {
	kp, err := t.Keypair(f.AccessKey)
	if err != nil {
		return nil, err
	}
	if kp == nil {
		kps, err := t.KeypairsOfUser(f.Owner)
		if err != nil {
			return nil, err
		}
		for _, k := range kps {
			if k.IsActive && (kp == nil || k.CreatedAt.Before(kp.CreatedAt)) {
				kp = k
			}
		}
	}
	if kp == nil {
		return nil, nil
	}
	p, err := t.ResourcePolicy(kp.ResourcePolicy)
	if err != nil || p == nil {
		return nil, err
	}
	return p.MaxVfolderSize, nil
}

// FoldersCounted is how many folders count against the user's
// max_vfolder_count: user folders they made plus folders they accepted an
// invitation to ("created/invited" in the manual). Group folders belong to
// their group and count against no one.
func (t *Txn) FoldersCounted(email string) (int, error) {
	own, err := t.FoldersOfOwner(email)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, f := range own {
		if f.Type == FolderUser {
			n++
		}
	}
	invs, err := t.InvitationsTo(email)
	if err != nil {
		return 0, err
	}
	for _, inv := range invs {
		if inv.State == InvitationAccepted {
			n++
		}
	}
	return n, nil
}
