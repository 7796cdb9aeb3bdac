package worker

import (
	"crypto/tls"
	"fmt"
	"sync"

	"github.com/whorl-ml/whorl/internal/identity"
)

// laneIdentities remembers which worker holds each rank of the recent ring
// generations (from the coordinator's assignments), so that with mutual
// TLS a lane is accepted only from the identity of the rank it claims: a
// worker's certificate does not let it stand in for another rank.
type laneIdentities struct {
	mu   sync.Mutex
	gens map[uint64][]string
}

// keepGenerations bounds the generations remembered (a lane of an older one
// is refused by the ring anyway).
const keepGenerations = 4

// set records the member ids of generation gen.
func (l *laneIdentities) set(gen uint64, ids []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.gens == nil {
		l.gens = map[uint64][]string{}
	}
	l.gens[gen] = append([]string(nil), ids...)
	for g := range l.gens {
		if g+keepGenerations <= gen {
			delete(l.gens, g)
		}
	}
}

// authorize admits a lane of generation gen from rank from only when the
// peer's identity is worker/<the id the coordinator placed at that rank>.
func (l *laneIdentities) authorize(cs tls.ConnectionState, gen uint64, from int) error {
	id, err := identity.FromConnState(cs)
	if err != nil {
		return err
	}
	l.mu.Lock()
	ids, ok := l.gens[gen]
	l.mu.Unlock()
	switch {
	case !ok:
		return fmt.Errorf("%w: lane of generation %d from %s: this worker has no members of that generation", identity.ErrPermissionDenied, gen, id)
	case from < 0 || from >= len(ids):
		return fmt.Errorf("%w: lane from rank %d of %d (%s)", identity.ErrPermissionDenied, from, len(ids), id)
	case id.Role != identity.Worker || id.Name != ids[from]:
		return fmt.Errorf("%w: %s may not send as rank %d of generation %d (that is worker %q)", identity.ErrPermissionDenied, id, from, gen, ids[from])
	}
	return nil
}
