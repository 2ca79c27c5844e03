package api

import "time"

// Folder types and permissions.
const (
	FolderUser  = "user"
	FolderGroup = "group"
	PermRO      = "ro"
	PermRW      = "rw"
	PermWD      = "wd"
)

// FolderHost is a storage folder host the caller may use.
type FolderHost struct {
	Name string `json:"name"`
	// Available is whether the manager that answered has the host
	// configured (-folder-host), so its files can be served.
	Available bool `json:"available"`
}

// Folder is a storage folder as the caller sees it; Permission is the
// caller's effective one.
type Folder struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	Host       string    `json:"host"`
	Type       string    `json:"type"`
	Owner      string    `json:"owner"`
	Group      string    `json:"group,omitempty"`
	Permission string    `json:"permission"`
	UsageBytes int64     `json:"usage_bytes"`
	OverQuota  bool      `json:"over_quota"`
	CreatedAt  time.Time `json:"created_at"`
}

// FolderCreate is POST /v1/folders. Group folders (admins) name the group
// and the members' permission (ro or rw, default ro); the group is of
// Domain, default the caller's (only a superadmin names another domain).
type FolderCreate struct {
	Name       string `json:"name"`
	Host       string `json:"host"`
	Type       string `json:"type,omitempty"`
	Group      string `json:"group,omitempty"`
	Domain     string `json:"domain,omitempty"`
	Permission string `json:"permission,omitempty"`
}

// InvitationCreate is POST /v1/folders/{id}/invitations.
type InvitationCreate struct {
	Invitee    string `json:"invitee"`
	Permission string `json:"permission"`
}

// Invitation shares a user folder; State is pending, accepted or rejected.
type Invitation struct {
	ID         string    `json:"id"`
	Folder     string    `json:"folder"`
	FolderName string    `json:"folder_name"`
	Inviter    string    `json:"inviter"`
	Invitee    string    `json:"invitee"`
	Permission string    `json:"permission"`
	State      string    `json:"state"`
	CreatedAt  time.Time `json:"created_at"`
}

// DirectoryCreate is POST /v1/folders/{id}/directories.
type DirectoryCreate struct {
	Path string `json:"path"`
}

// FileEntry is one entry of a folder listing; Type is file or dir.
type FileEntry struct {
	Name       string    `json:"name"`
	Path       string    `json:"path"`
	Type       string    `json:"type"`
	Size       int64     `json:"size"`
	ModifiedAt time.Time `json:"modified_at"`
}
