package coordinator

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"

	"github.com/hashicorp/raft"
)

// FSM is the raft state machine: a thin adapter that decodes each log entry
// into a Command and applies it to the plain State under a lock. Readers use
// View; Changed wakes long polls after every applied entry.
type FSM struct {
	mu      sync.RWMutex
	state   *State
	changed chan struct{}
}

// applyResponse is what FSM.Apply returns to the proposer through raft.
type applyResponse struct {
	Result Result
	Err    error
}

// NewFSM returns an FSM over the empty state.
func NewFSM() *FSM { return &FSM{state: NewState(), changed: make(chan struct{})} }

// Apply applies one committed log entry. A command that fails validation
// leaves the state unchanged and returns the error to the proposer; an
// undecodable entry is reported the same way (it cannot come from this
// version's proposers).
func (f *FSM) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return applyResponse{}
	}
	c, err := DecodeCommand(l.Data)
	if err != nil {
		return applyResponse{Err: fmt.Errorf("apply log entry %d: %w", l.Index, err)}
	}
	f.mu.Lock()
	res, err := c.apply(f.state)
	f.state.Index = l.Index
	ch := f.changed
	f.changed = make(chan struct{})
	f.mu.Unlock()
	close(ch)
	return applyResponse{Result: res, Err: err}
}

// View calls fn with the state under the read lock; fn must not keep or
// modify it.
func (f *FSM) View(fn func(s *State)) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	fn(f.state)
}

// Changed returns a channel closed at the next applied entry or restore.
func (f *FSM) Changed() <-chan struct{} {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.changed
}

// Snapshot captures the state as JSON (encoded under the read lock, so the
// copy is consistent; the state is small, no weights).
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	b, err := json.Marshal(f.state)
	if err != nil {
		return nil, fmt.Errorf("snapshot state: %w", err)
	}
	return fsmSnapshot(b), nil
}

// Restore replaces the state with a snapshot written by Persist.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	s := NewState()
	if err := json.NewDecoder(rc).Decode(s); err != nil {
		return fmt.Errorf("restore state snapshot: %w", err)
	}
	if s.Workers == nil {
		s.Workers = map[string]*WorkerInfo{}
	}
	if s.Coordinators == nil {
		s.Coordinators = map[string]string{}
	}
	if err := s.Check(); err != nil {
		return fmt.Errorf("restore state snapshot: %w", err)
	}
	f.mu.Lock()
	f.state = s
	ch := f.changed
	f.changed = make(chan struct{})
	f.mu.Unlock()
	close(ch)
	return nil
}

// fsmSnapshot is an encoded State.
type fsmSnapshot []byte

// Persist writes the snapshot to the sink.
func (s fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("persist state snapshot: %w", err)
	}
	return sink.Close()
}

// Release does nothing: the snapshot holds no resources.
func (fsmSnapshot) Release() {}
