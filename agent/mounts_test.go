package agent

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/berth-cluster/berth/agent/gpu"
	"github.com/berth-cluster/berth/agent/runtime"
	"github.com/berth-cluster/berth/shared/api"
)

// TestFolderMountsResolveThroughTheAgentsFolderHosts: a folder mount names
// a host and a folder id; the agent binds PATH/ID for its own -folder-host
// and refuses, with the reason, a host it lacks, a missing folder and an id
// that is not a plain name.
func TestFolderMountsResolveThroughTheAgentsFolderHosts(t *testing.T) {
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "f-abc"), 0o755); err != nil {
		t.Fatal(err)
	}
	hosts := map[string]string{"local": root}
	tests := []struct {
		name    string
		mount   api.Mount
		source  string
		wantErr string
	}{
		{"folder on a known host", api.Mount{Host: "local", Folder: "f-abc", Target: "/home/work/data", ReadOnly: true}, filepath.Join(root, "f-abc"), ""},
		{"plain bind", api.Mount{Source: "/srv/x", Target: "/x"}, "/srv/x", ""},
		{"host this agent lacks", api.Mount{Host: "nfs1", Folder: "f-abc", Target: "/home/work/data"}, "",
			"folder host nfs1 is not configured on this agent (start it with -folder-host nfs1=PATH)"},
		{"folder missing on the host", api.Mount{Host: "local", Folder: "f-gone", Target: "/home/work/gone"}, "", "f-gone"},
		{"id that climbs out", api.Mount{Host: "local", Folder: "..", Target: "/home/work/x"}, "", "is not a plain name"},
		{"id with a slash", api.Mount{Host: "local", Folder: "a/b", Target: "/home/work/x"}, "", "is not a plain name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec, err := specOf(api.DesiredContainer{ID: "s-1-0", SessionID: "s-1", Mounts: []api.Mount{tc.mount}}, gpu.Grant{}, hosts, users{})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(spec.Mounts) != 1 || spec.Mounts[0].Source != tc.source || spec.Mounts[0].Target != tc.mount.Target || spec.Mounts[0].ReadOnly != tc.mount.ReadOnly {
				t.Errorf("mounts %+v, want source %s", spec.Mounts, tc.source)
			}
		})
	}
}

// Sessions run as the agent's container user, with the folders' group, in
// a home of their own; as root only when the managers say the session's
// policy allowed it. The session's environment may rename USER, never
// become another uid.
func TestSessionsRunAsTheContainerUserUnlessRootWasAllowed(t *testing.T) {
	us := sessionUsers(Config{ContainerUID: 1000, ContainerGID: 1000, FolderGID: 2000})
	tests := []struct {
		name    string
		d       api.DesiredContainer
		user    runtime.User
		userEnv string
		workDir string
	}{
		{"default", api.DesiredContainer{ID: "s-1-0"}, runtime.User{UID: 1000, GID: 1000, AdditionalGIDs: []uint32{2000}}, "work", ContainerHome},
		{"root allowed", api.DesiredContainer{ID: "s-1-0", RunAsRoot: true}, runtime.User{AdditionalGIDs: []uint32{2000}}, "root", ContainerHome},
		{"env cannot change the uid", api.DesiredContainer{ID: "s-1-0", Env: map[string]string{"USER": "root", "UID": "0"}}, runtime.User{UID: 1000, GID: 1000, AdditionalGIDs: []uint32{2000}}, "root", ContainerHome},
		{"working dir given", api.DesiredContainer{ID: "s-1-0", WorkingDir: "/srv"}, runtime.User{UID: 1000, GID: 1000, AdditionalGIDs: []uint32{2000}}, "work", "/srv"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec, err := specOf(tc.d, gpu.Grant{}, nil, us)
			if err != nil {
				t.Fatal(err)
			}
			if spec.User.UID != tc.user.UID || spec.User.GID != tc.user.GID || !slices.Equal(spec.User.AdditionalGIDs, tc.user.AdditionalGIDs) {
				t.Errorf("user %+v, want %+v", spec.User, tc.user)
			}
			if spec.Home != ContainerHome || spec.WorkingDir != tc.workDir || spec.Env["USER"] != tc.userEnv {
				t.Errorf("home %q, working dir %q, USER %q; want %s, %s, %s", spec.Home, spec.WorkingDir, spec.Env["USER"], ContainerHome, tc.workDir, tc.userEnv)
			}
		})
	}
	// The folders' group is not repeated when it is the user's own.
	if u := sessionUsers(Config{ContainerUID: 1000, ContainerGID: 1000, FolderGID: 1000}); len(u.normal.AdditionalGIDs) != 0 {
		t.Errorf("supplementary groups %v, want none (1000 is the user's group)", u.normal.AdditionalGIDs)
	}
}
