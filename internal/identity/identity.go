package identity

import (
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// Role is what a process is in the cluster.
type Role string

// The roles; a certificate's SPIFFE ID path starts with one of them.
const (
	// Coordinator is a raft member: it speaks raft and PeerService.
	Coordinator Role = "coordinator"
	// Worker trains: it registers, heartbeats, reports and opens ring lanes.
	Worker Role = "worker"
	// Client is a person or a tool: it submits, cancels and reads jobs.
	Client Role = "client"
)

// Roles lists every role, in the order errors name them.
var Roles = []Role{Coordinator, Worker, Client}

// DefaultTrustDomain is the trust domain when none is configured.
const DefaultTrustDomain = "whorl"

// Errors of this package (errors.Is):
var (
	// ErrBadID: a SPIFFE ID that is not spiffe://<trust-domain>/<role>/<name>.
	ErrBadID = errors.New("not a whorl identity")
	// ErrUnauthenticated: the caller presented no usable identity.
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrPermissionDenied: the caller's identity may not do this.
	ErrPermissionDenied = errors.New("permission denied")
)

// ID is one process's identity.
type ID struct {
	// TrustDomain is the SPIFFE trust domain ("whorl" by default).
	TrustDomain string
	// Role is the process's role.
	Role Role
	// Name is the coordinator's raft id, the worker's id or the client's name.
	Name string
}

// New returns the identity, validated as a SPIFFE ID.
func New(trustDomain string, role Role, name string) (ID, error) {
	td, err := spiffeid.TrustDomainFromString(trustDomain)
	if err != nil {
		return ID{}, fmt.Errorf("trust domain %q: %w: %w", trustDomain, ErrBadID, err)
	}
	sid, err := spiffeid.FromSegments(td, string(role), name)
	if err != nil {
		return ID{}, fmt.Errorf("identity %s/%s: %w: %w", role, name, ErrBadID, err)
	}
	return FromSPIFFE(sid)
}

// Parse parses "spiffe://<trust-domain>/<role>/<name>".
func Parse(s string) (ID, error) {
	sid, err := spiffeid.FromString(s)
	if err != nil {
		return ID{}, fmt.Errorf("%q: %w: %w", s, ErrBadID, err)
	}
	return FromSPIFFE(sid)
}

// FromSPIFFE reads a SPIFFE ID whose path is /<role>/<name>.
func FromSPIFFE(sid spiffeid.ID) (ID, error) {
	parts := strings.Split(strings.TrimPrefix(sid.Path(), "/"), "/")
	if len(parts) != 2 || parts[1] == "" {
		return ID{}, fmt.Errorf("%s: %w: want the path /<role>/<name>", sid, ErrBadID)
	}
	role := Role(parts[0])
	if !slices.Contains(Roles, role) {
		return ID{}, fmt.Errorf("%s: %w: role %q, want one of %s", sid, ErrBadID, role, roleList(Roles))
	}
	return ID{TrustDomain: sid.TrustDomain().Name(), Role: role, Name: parts[1]}, nil
}

// FromCert reads the identity of a certificate's one URI SAN.
func FromCert(c *x509.Certificate) (ID, error) {
	sid, err := x509svid.IDFromCert(c)
	if err != nil {
		return ID{}, fmt.Errorf("certificate %q: %w: %w", c.Subject.CommonName, ErrBadID, err)
	}
	return FromSPIFFE(sid)
}

// SPIFFE returns the SPIFFE ID (the zero ID when id is not valid).
func (id ID) SPIFFE() spiffeid.ID {
	td, err := spiffeid.TrustDomainFromString(id.TrustDomain)
	if err != nil {
		return spiffeid.ID{}
	}
	sid, err := spiffeid.FromSegments(td, string(id.Role), id.Name)
	if err != nil {
		return spiffeid.ID{}
	}
	return sid
}

// String returns the SPIFFE ID's text, or role/name for an invalid ID.
func (id ID) String() string {
	if sid := id.SPIFFE(); !sid.IsZero() {
		return sid.String()
	}
	return string(id.Role) + "/" + id.Name
}

// Is reports whether id has the role.
func (id ID) Is(role Role) bool { return id.Role == role }

// roleList is "a, b or c".
func roleList(roles []Role) string {
	s := make([]string, len(roles))
	for i, r := range roles {
		s[i] = string(r)
	}
	if len(s) <= 1 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}
