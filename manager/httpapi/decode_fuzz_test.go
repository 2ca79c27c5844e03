package httpapi

import (
	"testing"

	"github.com/berth-cluster/berth/manager/apierr"
	"github.com/berth-cluster/berth/shared/api"
)

func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{`{"email":"a@b.c","password":"x"}`, `{"email":1}`, `{} {}`, `[`, `{"x":1}`, ``, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req api.LoginRequest
		err := DecodeJSON(body, &req)
		if err != nil && !apierr.Is(err, apierr.Invalid) {
			t.Fatalf("decode error is not a validation error: %v", err)
		}
	})
}
