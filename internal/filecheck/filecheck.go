// Package filecheck is the vocabulary of `whorl doctor`: the state of one
// file of a run's output folder or a coordinator's data dir, as the package
// that owns the file judged it (experiment for the output folder,
// coordinator for raft's log, snapshots and checkpoint blobs).
package filecheck

// Status is what a check found.
type Status string

// The statuses of a file.
const (
	Intact  Status = "intact"
	Damaged Status = "damaged"
	Missing Status = "missing"
)

// Result is the check of one file.
type Result struct {
	// Path is the file checked.
	Path string
	// Status is what the check found.
	Status Status
	// Detail says what the file is, or what is wrong with it.
	Detail string
}

// Count is how many results have status st.
func Count(rs []Result, st Status) int {
	n := 0
	for _, r := range rs {
		if r.Status == st {
			n++
		}
	}
	return n
}
