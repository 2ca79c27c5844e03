package httpapi

import (
	"testing"

	"github.com/berth-cluster/berth/manager/apierr"
	"github.com/berth-cluster/berth/shared/api"
)

// FuzzUserCreateDecode feeds arbitrary bodies to the user-create decoder and
// validation: they may refuse, always as a validation error, never panic.
func FuzzUserCreateDecode(f *testing.F) {
	for _, s := range []string{
		`{"email":"a@b.co","username":"a","password":"Passw0rd!"}`,
		`{"email":"","username":"","password":"","role":"root","groups":[1]}`,
		`{"email":"a@b.co","username":"a","password":"Passw0rd!","extra":1}`,
		`{"email":"x@y","full_name":"` + string(make([]byte, 70)) + `"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req api.UserCreate
		if err := DecodeJSON(body, &req); err != nil {
			if !apierr.Is(err, apierr.Invalid) {
				t.Fatalf("decode error of the wrong kind: %v", err)
			}
			return
		}
		setDefault(&req.Role, "user")
		setDefault(&req.Status, "active")
		if err := validateUserCreate(&req); err != nil && !apierr.Is(err, apierr.Invalid) {
			t.Fatalf("validation error of the wrong kind: %v", err)
		}
	})
}
