package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3gen"

	"github.com/berth-cluster/berth/shared/api"
	"github.com/berth-cluster/berth/shared/version"
)

var pathParam = regexp.MustCompile(`\{([a-z_]+)\}`)

// DocPath is a route's path as OpenAPI writes it: a trailing wildcard
// {name...} (the rest of the path) is a plain {name} parameter there.
func DocPath(p string) string { return strings.ReplaceAll(p, "...}", "}") }

// OpenAPI builds the OpenAPI 3 document of the route table.
func (a *API) OpenAPI() (*openapi3.T, error) {
	doc := &openapi3.T{
		OpenAPI: "3.0.3",
		Info: &openapi3.Info{Title: "Berth manager API", Version: version.Version,
			License: &openapi3.License{Name: version.License}},
		Paths: openapi3.NewPaths(),
		Components: &openapi3.Components{
			Schemas: openapi3.Schemas{},
			SecuritySchemes: openapi3.SecuritySchemes{
				"bearer": &openapi3.SecuritySchemeRef{Value: openapi3.NewJWTSecurityScheme().WithBearerFormat("opaque")},
				"keypair": &openapi3.SecuritySchemeRef{Value: openapi3.NewSecurityScheme().WithType("apiKey").WithIn("header").
					WithName("Authorization").WithDescription("BERTH-HMAC-SHA256 Credential=ACCESS_KEY, Signature=HEX over METHOD, PATH, sorted query, X-Berth-Date (RFC 3339, fractions allowed, within 5 minutes) and X-Berth-Content-SHA256 (the body's lowercase hex SHA-256); each signature is accepted once")},
			},
		},
	}
	problem, err := a.schema(doc, &api.Problem{})
	if err != nil {
		return nil, err
	}
	problemResp := openapi3.NewResponse().WithDescription("problem+json").
		WithContent(openapi3.Content{api.ProblemContentType: openapi3.NewMediaType().WithSchemaRef(problem)})
	for _, rt := range a.routes {
		op := openapi3.NewOperation()
		op.Summary = rt.Summary
		op.OperationID = operationID(rt)
		for _, m := range pathParam.FindAllStringSubmatch(DocPath(rt.Path), -1) {
			op.AddParameter(openapi3.NewPathParameter(m[1]).WithSchema(openapi3.NewStringSchema()))
		}
		for _, q := range rt.Query {
			op.AddParameter(openapi3.NewQueryParameter(q).WithSchema(openapi3.NewStringSchema()))
		}
		if !rt.Local && rt.Method == http.MethodGet {
			op.AddParameter(openapi3.NewQueryParameter("stale").WithSchema(openapi3.NewBoolSchema()).
				WithDescription("answer from this manager's copy of the state, without asking the leader"))
		}
		if rt.In != nil {
			ref, err := a.schema(doc, rt.In)
			if err != nil {
				return nil, fmt.Errorf("request schema of %s %s: %w", rt.Method, rt.Path, err)
			}
			op.RequestBody = &openapi3.RequestBodyRef{Value: openapi3.NewRequestBody().WithRequired(true).WithJSONSchemaRef(ref)}
		}
		status := rt.Status
		if status == 0 {
			status = http.StatusOK
		}
		ok := openapi3.NewResponse().WithDescription(http.StatusText(status))
		switch {
		case rt.Out != nil:
			ref, err := a.schema(doc, rt.Out)
			if err != nil {
				return nil, fmt.Errorf("response schema of %s %s: %w", rt.Method, rt.Path, err)
			}
			ok.WithContent(openapi3.NewContentWithJSONSchemaRef(ref))
		case rt.Produces != "":
			ok.WithContent(openapi3.Content{rt.Produces: openapi3.NewMediaType().WithSchema(openapi3.NewStringSchema())})
		}
		op.AddResponse(status, ok)
		op.Responses.Set("default", &openapi3.ResponseRef{Value: problemResp})
		if rt.Access != Public {
			op.Security = &openapi3.SecurityRequirements{{"bearer": {}}, {"keypair": {}}}
		}
		doc.AddOperation(DocPath(rt.Path), rt.Method, op)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("openapi document is invalid: %w", err)
	}
	return doc, nil
}

func (a *API) schema(doc *openapi3.T, v any) (*openapi3.SchemaRef, error) {
	return openapi3gen.NewSchemaRefForValue(v, doc.Components.Schemas)
}

func operationID(rt Route) string {
	p := strings.NewReplacer("/v1/", "", "/", "_", "{", "", "}", "", "-", "_", ".", "_").Replace(DocPath(rt.Path))
	return strings.ToLower(rt.Method) + "_" + strings.Trim(p, "_")
}

func (a *API) openapi(c *Call) error {
	doc, err := a.OpenAPI()
	if err != nil {
		return err
	}
	b, err := doc.MarshalJSON()
	if err != nil {
		return fmt.Errorf("encode openapi: %w", err)
	}
	c.W.Header().Set("Content-Type", "application/json")
	c.W.Header().Set("Content-Length", strconv.Itoa(len(b)))
	_, err = c.W.Write(b)
	return err
}
