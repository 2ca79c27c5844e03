package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-cluster/berth/agent/gpu"
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
			spec, err := specOf(api.DesiredContainer{ID: "s-1-0", SessionID: "s-1", Mounts: []api.Mount{tc.mount}}, gpu.Grant{}, hosts)
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
