package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"sync"
	"testing"

	"github.com/berth-cluster/berth/shared/api"
)

// seenRequest is what a fake manager received.
type seenRequest struct {
	method, path, query, body string
}

// recordingServer answers every request with status and answer, and
// records each request it receives.
func recordingServer(t *testing.T, status int, answer any) (*Client, func() []seenRequest) {
	t.Helper()
	var (
		mu   sync.Mutex
		seen []seenRequest
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Error(err)
		}
		mu.Lock()
		seen = append(seen, seenRequest{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, string(body)})
		mu.Unlock()
		if status == http.StatusNoContent {
			w.WriteHeader(status)
			return
		}
		writeJSON(w, status, answer)
	}))
	t.Cleanup(srv.Close)
	requests := func() []seenRequest {
		mu.Lock()
		defer mu.Unlock()
		return append([]seenRequest(nil), seen...)
	}
	return newClient(t, Config{Addrs: []string{srv.URL}, Token: "tok"}), requests
}

func TestAdminCallsSendTheDocumentedRequests(t *testing.T) {
	yes, policy, limit := true, "gpu", 30
	desc := "ML team"
	group := api.Group{Name: "ml", Domain: "default", Description: "ML team", IsActive: true}
	detail := api.GroupDetail{Group: group, Members: []string{"a@b.c"}}
	kp := api.Keypair{AccessKey: "AKAAAAAAAAAAAAAAAAAA", SecretKey: "s", User: "a@b.c", IsActive: true, ResourcePolicy: "gpu"}
	tests := []struct {
		name   string
		status int
		answer any
		call   func(context.Context, *Client) (any, error)
		want   seenRequest
	}{
		{
			name: "create user", status: http.StatusCreated,
			answer: api.UserCreated{User: api.User{Email: "a@b.c"}, Keypair: kp},
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.CreateUser(ctx, api.UserCreate{Email: "a@b.c", Username: "a", Password: "Passw0rd!", Groups: []string{"ml"}})
			},
			want: seenRequest{"POST", "/v1/users", "", `{"email":"a@b.c","username":"a","password":"Passw0rd!","groups":["ml"]}`},
		},
		{
			name: "update user sends only the set fields", status: http.StatusOK, answer: api.User{Email: "a@b.c"},
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.UpdateUser(ctx, "a@b.c", api.UserPatch{Groups: &[]string{}, NeedPasswordChange: new(false)})
			},
			want: seenRequest{"PATCH", "/v1/users/a@b.c", "", `{"need_password_change":false,"groups":[]}`},
		},
		{
			name: "create keypair", status: http.StatusCreated, answer: kp,
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.CreateKeypair(ctx, api.KeypairCreate{User: "a@b.c", ResourcePolicy: "gpu", IsAdmin: &yes, RateLimit: 5})
			},
			want: seenRequest{"POST", "/v1/keypairs", "", `{"user":"a@b.c","resource_policy":"gpu","is_admin":true,"rate_limit":5}`},
		},
		{
			name: "get keypair", status: http.StatusOK, answer: kp,
			call: func(ctx context.Context, c *Client) (any, error) { return c.GetKeypair(ctx, kp.AccessKey) },
			want: seenRequest{"GET", "/v1/keypairs/" + kp.AccessKey, "", ""},
		},
		{
			name: "update keypair", status: http.StatusOK, answer: kp,
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.UpdateKeypair(ctx, kp.AccessKey, api.KeypairPatch{ResourcePolicy: &policy, RateLimit: &limit})
			},
			want: seenRequest{"PATCH", "/v1/keypairs/" + kp.AccessKey, "", `{"resource_policy":"gpu","rate_limit":30}`},
		},
		{
			name: "delete keypair", status: http.StatusNoContent,
			call: func(ctx context.Context, c *Client) (any, error) { return nil, c.DeleteKeypair(ctx, kp.AccessKey) },
			want: seenRequest{"DELETE", "/v1/keypairs/" + kp.AccessKey, "", ""},
		},
		{
			name: "create domain", status: http.StatusCreated, answer: api.Domain{Name: "lab"},
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.CreateDomain(ctx, api.DomainCreate{Name: "lab", Description: "x"})
			},
			want: seenRequest{"POST", "/v1/domains", "", `{"name":"lab","description":"x"}`},
		},
		{
			name: "list groups", status: http.StatusOK, answer: api.List[api.Group]{Items: []api.Group{group}},
			call: func(ctx context.Context, c *Client) (any, error) { return c.ListGroups(ctx, "default") },
			want: seenRequest{"GET", "/v1/domains/default/groups", "", ""},
		},
		{
			name: "create group", status: http.StatusCreated, answer: group,
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.CreateGroup(ctx, "default", api.GroupCreate{Name: "ml"})
			},
			want: seenRequest{"POST", "/v1/domains/default/groups", "", `{"name":"ml"}`},
		},
		{
			name: "get group escapes the path", status: http.StatusOK, answer: detail,
			call: func(ctx context.Context, c *Client) (any, error) { return c.GetGroup(ctx, "a/b", "m l") },
			want: seenRequest{"GET", "/v1/domains/a%2Fb/groups/m%20l", "", ""},
		},
		{
			name: "update group", status: http.StatusOK, answer: group,
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.UpdateGroup(ctx, "default", "ml", api.GroupPatch{Description: &desc})
			},
			want: seenRequest{"PATCH", "/v1/domains/default/groups/ml", "", `{"description":"ML team"}`},
		},
		{
			name: "change group members", status: http.StatusOK, answer: detail,
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.ChangeGroupMembers(ctx, "default", "ml", []string{"a@b.c"}, []string{"d@e.f"})
			},
			want: seenRequest{"POST", "/v1/domains/default/groups/ml/members", "", `{"add":["a@b.c"],"remove":["d@e.f"]}`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, requests := recordingServer(t, tt.status, tt.answer)
			got, err := tt.call(context.Background(), c)
			if err != nil {
				t.Fatal(err)
			}
			seen := requests()
			if len(seen) != 1 {
				t.Fatalf("%d requests, want 1", len(seen))
			}
			if r := seen[0]; r != tt.want {
				t.Fatalf("request\n%+v\nwant\n%+v", r, tt.want)
			}
			if tt.answer == nil {
				return
			}
			// The answer decodes into the typed result unchanged.
			want, _ := json.Marshal(tt.answer)
			have, _ := json.Marshal(got)
			if !bytes.Equal(want, have) {
				t.Fatalf("decoded %s\nwant %s", have, want)
			}
		})
	}
}

func TestExportStreamsTheServedBytes(t *testing.T) {
	// Bytes a CSV decoder would rewrite: CRLF, quoted newline, BOM-less
	// unicode, a defused formula.
	csvBody := "email,username\r\n\"a@b.c\",\"x\ny\"\r\n'=1+1,é\r\n"
	requests := make(chan *http.Request, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests <- r.Clone(context.Background())
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		_, _ = io.WriteString(w, csvBody)
	}))
	defer srv.Close()
	c := newClient(t, Config{Addrs: []string{srv.URL}, Token: "tok"})
	body, err := c.Export(context.Background(), "resource-policies", url.Values{"filename": {"p"}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(body)
	if err != nil {
		t.Fatal(err)
	}
	if err := body.Close(); err != nil {
		t.Fatal(err)
	}
	if string(got) != csvBody {
		t.Fatalf("body %q, want %q", got, csvBody)
	}
	seen := <-requests
	if seen.Method != http.MethodGet || seen.URL.Path != "/v1/export/resource-policies.csv" || seen.URL.RawQuery != "filename=p" {
		t.Fatalf("request %s %s?%s", seen.Method, seen.URL.Path, seen.URL.RawQuery)
	}
}

func TestExportReturnsTheProblem(t *testing.T) {
	want := api.Problem{Type: api.ProblemValidation, Title: "Invalid request", Status: 400,
		Errors: []api.FieldError{{Field: "filename", Reason: "filename must not contain path separators (/ or \\)"}}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { writeProblem(w, want) }))
	defer srv.Close()
	c := newClient(t, Config{Addrs: []string{srv.URL}, Token: "tok"})
	body, err := c.Export(context.Background(), "users", url.Values{"filename": {"a/b"}})
	var p *api.Problem
	if !errors.As(err, &p) || !reflect.DeepEqual(*p, want) {
		t.Fatalf("body %v, error %v; want the problem %+v", body, err, want)
	}
	if _, err := c.Export(context.Background(), "", nil); err == nil {
		t.Fatal("an empty kind was accepted")
	}
}
