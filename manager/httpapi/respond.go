package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/berth-cluster/berth/manager/apierr"
	"github.com/berth-cluster/berth/shared/api"
)

// MaxBody is the largest request body accepted (file uploads aside).
const MaxBody = 1 << 20

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if v == nil {
		return
	}
	enc := json.NewEncoder(w)
	_ = enc.Encode(v) // the client went away; nothing useful to do
}

func writeProblem(w http.ResponseWriter, p *api.Problem) {
	w.Header().Set("Content-Type", api.ProblemContentType)
	if p.Status == http.StatusTooManyRequests || p.Status == http.StatusServiceUnavailable {
		if w.Header().Get("Retry-After") == "" {
			w.Header().Set("Retry-After", "1")
		}
	}
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

func retryAfter(w http.ResponseWriter, d time.Duration) {
	secs := int((d + time.Second - 1) / time.Second)
	w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
}

// readBody reads at most MaxBody bytes; more is a TooLarge error.
func readBody(r *http.Request) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	if r.ContentLength > MaxBody {
		return nil, apierr.New(apierr.TooLarge, "request body of %d bytes is over the 1 MiB limit", r.ContentLength)
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
	if err != nil {
		if berr := bodyErr(err, "the request body"); berr != nil {
			return nil, berr
		}
		return nil, apierr.New(apierr.Invalid, "could not read the request body: %v", err)
	}
	if len(b) > MaxBody {
		return nil, apierr.New(apierr.TooLarge, "request body is over the 1 MiB limit")
	}
	return b, nil
}

// DecodeJSON decodes exactly one JSON object into v, refusing unknown
// fields, trailing data and type mismatches with a reason naming the field.
func DecodeJSON(body []byte, v any) error {
	if len(strings.TrimSpace(string(body))) == 0 {
		return apierr.New(apierr.Invalid, "the request body is empty; send a JSON object")
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if dec.More() {
		return apierr.New(apierr.Invalid, "the request body has data after the JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return apierr.New(apierr.Invalid, "the request body has data after the JSON object")
	}
	if hasNUL(reflect.ValueOf(v)) {
		// No name, path, command argument or environment value can hold
		// one: C strings end there, so it would mean one thing here and
		// another in containerd, a file system or a CSV reader.
		return apierr.New(apierr.Invalid, `the request body holds a NUL character (\u0000) in a string; no field takes one`)
	}
	return nil
}

// hasNUL reports whether any string reachable from v holds U+0000.
func hasNUL(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.String:
		return strings.IndexByte(v.String(), 0) >= 0
	case reflect.Pointer, reflect.Interface:
		return !v.IsNil() && hasNUL(v.Elem())
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() && hasNUL(v.Field(i)) {
				return true
			}
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			if hasNUL(v.Index(i)) {
				return true
			}
		}
	case reflect.Map:
		it := v.MapRange()
		for it.Next() {
			if hasNUL(it.Key()) || hasNUL(it.Value()) {
				return true
			}
		}
	}
	return false
}

func decodeError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return apierr.New(apierr.Invalid, "the request body is not valid JSON (at byte %d): %v", syn.Offset, syn)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return apierr.New(apierr.Invalid, "the request body must be a JSON object, not %s", typ.Value)
		}
		return apierr.Field(apierr.Invalid, field, fmt.Sprintf("%s must be %s, not %s", field, jsonKind(typ.Type.Kind().String()), typ.Value))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return apierr.New(apierr.Invalid, "the request body is truncated JSON")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return apierr.Field(apierr.Invalid, name, fmt.Sprintf("unknown field %q", name))
	}
	// Custom unmarshalers (resource slots) explain themselves.
	return apierr.New(apierr.Invalid, "%s", strings.TrimPrefix(err.Error(), "json: "))
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "slice", "array":
		return "a list"
	case "map", "struct", "ptr":
		return "an object"
	}
	return "a number"
}
