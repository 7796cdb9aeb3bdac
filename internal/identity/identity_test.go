package identity_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/whorl-ml/whorl/internal/identity"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in      string
		want    identity.ID
		wantErr string
	}{
		{in: "spiffe://whorl/worker/w0", want: identity.ID{TrustDomain: "whorl", Role: identity.Worker, Name: "w0"}},
		{in: "spiffe://prod.example/coordinator/whorl-coordinator-2", want: identity.ID{TrustDomain: "prod.example", Role: identity.Coordinator, Name: "whorl-coordinator-2"}},
		{in: "spiffe://whorl/client/alice", want: identity.ID{TrustDomain: "whorl", Role: identity.Client, Name: "alice"}},
		{in: "spiffe://whorl/admin/alice", wantErr: `role "admin"`},
		{in: "spiffe://whorl/worker", wantErr: "/<role>/<name>"},
		{in: "spiffe://whorl/worker/w0/extra", wantErr: "/<role>/<name>"},
		{in: "spiffe://whorl", wantErr: "/<role>/<name>"},
		{in: "https://whorl/worker/w0", wantErr: "scheme"},
		{in: "", wantErr: "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := identity.Parse(tt.in)
			if tt.wantErr != "" {
				if !errors.Is(err, identity.ErrBadID) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse = %v, %v; want ErrBadID naming %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Parse = %+v, %v; want %+v", got, err, tt.want)
			}
			if got.String() != tt.in {
				t.Errorf("String = %q, want %q", got.String(), tt.in)
			}
		})
	}
}

func TestNewRefusesBadNames(t *testing.T) {
	for _, name := range []string{"", "w/0", "w 0", "..", "w%0"} {
		if id, err := identity.New("whorl", identity.Worker, name); !errors.Is(err, identity.ErrBadID) {
			t.Errorf("New(worker, %q) = %v, %v; want ErrBadID", name, id, err)
		}
	}
}

func TestAuthorizer(t *testing.T) {
	td := spiffeid.RequireTrustDomainFromString("whorl")
	onlyC0 := func(id identity.ID) error {
		if id.Name != "c0" {
			return identity.ErrPermissionDenied
		}
		return nil
	}
	tests := []struct {
		id    string
		allow func(identity.ID) error
		roles []identity.Role
		want  error
	}{
		{"spiffe://whorl/worker/w0", nil, nil, nil},
		{"spiffe://whorl/worker/w0", nil, []identity.Role{identity.Coordinator}, identity.ErrPermissionDenied},
		{"spiffe://other/worker/w0", nil, nil, identity.ErrUnauthenticated},
		{"spiffe://whorl/robot/r0", nil, nil, identity.ErrUnauthenticated},
		{"spiffe://whorl/coordinator/c0", onlyC0, []identity.Role{identity.Coordinator}, nil},
		{"spiffe://whorl/coordinator/c9", onlyC0, []identity.Role{identity.Coordinator}, identity.ErrPermissionDenied},
	}
	for _, tt := range tests {
		err := identity.Authorizer(td, tt.allow, tt.roles...)(spiffeid.RequireFromString(tt.id), nil)
		if (tt.want == nil) != (err == nil) || (tt.want != nil && !errors.Is(err, tt.want)) {
			t.Errorf("%s roles %v: %v, want %v", tt.id, tt.roles, err, tt.want)
		}
	}
}

// FuzzParse: any text either parses to an identity whose String parses
// back to itself, or is refused with ErrBadID; nothing panics.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"spiffe://whorl/worker/w0", "spiffe://whorl/client/a.b-c_d", "spiffe://x/coordinator/", "spiffe://whorl/worker/%2F", "spiffe://WHORL/worker/w0", "spiffe://whorl//worker/w0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := identity.Parse(s)
		if err != nil {
			if !errors.Is(err, identity.ErrBadID) {
				t.Fatalf("Parse(%q) = %v, not ErrBadID", s, err)
			}
			return
		}
		back, err := identity.Parse(id.String())
		if err != nil || back != id {
			t.Fatalf("Parse(%q) = %+v; its String %q parses to %+v, %v", s, id, id.String(), back, err)
		}
	})
}
