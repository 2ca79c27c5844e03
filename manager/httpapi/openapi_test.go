package httpapi_test

import (
	"context"
	"net/http"
	"regexp"
	"strconv"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/berth-cluster/berth/manager/httpapi"
	"github.com/berth-cluster/berth/manager/testcluster"
	"github.com/berth-cluster/berth/shared/api"
)

var pathParams = regexp.MustCompile(`\{([A-Za-z_]+)\}`)

// TestOpenAPIDocumentDescribesEveryRoute loads GET /v1/openapi.json as a
// client would, validates it, and checks that every route of the running
// manager's route table is in it with its method, parameters, body,
// success status and security, and that it lists nothing else.
func TestOpenAPIDocumentDescribesEveryRoute(t *testing.T) {
	t.Parallel()
	c := testcluster.StartFake(t)
	s := c.Servers[0]

	r := testcluster.Do(t, http.MethodGet, testcluster.URL(s)+"/v1/openapi.json", "", nil)
	wantStatus(t, r, http.StatusOK)
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(r.Body)
	if err != nil {
		t.Fatalf("load the document: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("the document is not valid OpenAPI: %v", err)
	}
	if doc.OpenAPI == "" || doc.Info == nil || doc.Info.Title == "" || doc.Info.Version == "" {
		t.Errorf("document header openapi=%q info=%+v is incomplete", doc.OpenAPI, doc.Info)
	}

	routes := s.API().Routes()
	if len(routes) == 0 {
		t.Fatal("the route table is empty")
	}
	operations := 0
	for _, p := range doc.Paths.Keys() {
		operations += len(doc.Paths.Value(p).Operations())
	}
	if operations != len(routes) {
		t.Errorf("the document has %d operations, the route table %d routes", operations, len(routes))
	}

	for _, rt := range routes {
		t.Run(rt.Method+" "+rt.Path, func(t *testing.T) {
			item := doc.Paths.Value(httpapi.DocPath(rt.Path))
			if item == nil {
				t.Fatalf("path %s is not in the document", rt.Path)
			}
			op := item.GetOperation(rt.Method)
			if op == nil {
				t.Fatalf("%s %s is not in the document (it has %v)", rt.Method, rt.Path, operationMethods(item.Operations()))
			}
			if op.Summary == "" || op.OperationID == "" {
				t.Errorf("summary %q, operationId %q: want both", op.Summary, op.OperationID)
			}
			for _, m := range pathParams.FindAllStringSubmatch(httpapi.DocPath(rt.Path), -1) {
				if p := op.Parameters.GetByInAndName(openapi3.ParameterInPath, m[1]); p == nil || !p.Required {
					t.Errorf("path parameter %s is not documented as required", m[1])
				}
			}
			for _, q := range rt.Query {
				if op.Parameters.GetByInAndName(openapi3.ParameterInQuery, q) == nil {
					t.Errorf("query parameter %s is not documented", q)
				}
			}
			if (rt.In != nil) != (op.RequestBody != nil) {
				t.Errorf("route takes a body: %v; document has one: %v", rt.In != nil, op.RequestBody != nil)
			}
			status := rt.Status
			if status == 0 {
				status = http.StatusOK
			}
			ok := op.Responses.Value(strconv.Itoa(status))
			if ok == nil || ok.Value == nil {
				t.Fatalf("no %d response (has %v)", status, op.Responses.Keys())
			}
			switch {
			case rt.Out != nil:
				if ok.Value.Content.Get("application/json") == nil {
					t.Errorf("%d response has no application/json content", status)
				}
			case rt.Produces != "":
				if ok.Value.Content.Get(rt.Produces) == nil {
					t.Errorf("%d response has no %s content", status, rt.Produces)
				}
			}
			def := op.Responses.Default()
			if def == nil || def.Value == nil || def.Value.Content.Get(api.ProblemContentType) == nil {
				t.Errorf("default response is not %s", api.ProblemContentType)
			}
			secured := op.Security != nil && len(*op.Security) > 0
			if public := rt.Access == httpapi.Public; secured == public {
				t.Errorf("route is public: %v; document requires credentials: %v", public, secured)
			}
		})
	}
}

func operationMethods[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
