package session

import (
	"path/filepath"
	"sort"

	"github.com/whorl-ml/whorl/coordinator"
	"github.com/whorl-ml/whorl/experiment"
	"github.com/whorl-ml/whorl/internal/filecheck"
)

// CheckRun reads every file of a run's folder out that a rerun would read
// (`whorl doctor --out`): the run's own (experiment.CheckOut) and the data
// dir of each member of its local cluster (coordinator.CheckDataDir), and
// says what a rerun with this folder will do. It changes nothing.
func CheckRun(out string) (rs []filecheck.Result, verdict string) {
	rs = experiment.CheckOut(out)
	// The members' folders c0, c1, ... (cluster/certs holds the run's
	// certificates, not a member).
	coords, _ := filepath.Glob(filepath.Join(out, "cluster", "c[0-9]*"))
	sort.Strings(coords)
	for _, d := range coords {
		rs = append(rs, coordinator.CheckDataDir(d)...)
	}
	return rs, runVerdict(rs, len(coords) > 0)
}

// runVerdict says what `whorl run` with this --out will do.
func runVerdict(rs []filecheck.Result, hasCluster bool) string {
	status := map[string]filecheck.Status{}
	for _, r := range rs {
		status[filepath.Base(r.Path)] = r.Status
	}
	switch {
	case status[experiment.FileConfig] == filecheck.Damaged || status[experiment.FileManifest] == filecheck.Damaged:
		return "a rerun refuses this folder (its configuration or manifest is damaged): restore the file or use a new --out"
	case status["raft.db"] == filecheck.Damaged:
		return "a rerun cannot start the coordinator (its raft log is damaged): the job state is lost; use a new --out"
	case filecheck.Count(rs, filecheck.Damaged) > 0:
		return "a rerun sets damaged checkpoint blobs aside and fails the job if its committed checkpoint is among them; damaged outputs of finished phases are rewritten only by a new run"
	case status[experiment.FileReport] == filecheck.Intact:
		return "the run is complete: a rerun prints its report"
	case hasCluster || status[experiment.FileResume] == filecheck.Intact:
		return "a rerun resumes the run from its last checkpoint"
	case status[experiment.FileConfig] == filecheck.Missing:
		return "no run here yet: a rerun starts one"
	}
	return "a rerun resumes the run"
}
