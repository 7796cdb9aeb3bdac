package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/spf13/cobra"

	"github.com/whorl-ml/whorl/coordinator"
	"github.com/whorl-ml/whorl/experiment"
	"github.com/whorl-ml/whorl/internal/filecheck"
)

func init() { register(newDoctorCmd) }

// doctorOptions are the flags of `whorl doctor`.
type doctorOptions struct{ out, dataDir string }

func newDoctorCmd() *cobra.Command {
	var o doctorOptions
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check every file of a run's --out or a coordinator's --data-dir: intact, damaged or missing",
		Long: `doctor reads every file a rerun would read, the way it reads them (the job
configuration, the manifest, the report, the checkpoints; a coordinator's raft
log, snapshots and checkpoint blobs, verified against their checksums), says
which are intact, damaged or missing, and what a rerun will do. It changes
nothing. The exit status is 1 when a file is damaged.`,
		Example: `  whorl doctor --out whorl-out
  whorl doctor --data-dir /var/lib/whorl/c0`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runDoctor(cmd.OutOrStdout(), o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.out, "out", "", "output folder of a whorl run (its cluster/ state included)")
	f.StringVar(&o.dataDir, "data-dir", "", "data dir of one whorl coordinator")
	return cmd
}

func runDoctor(w io.Writer, o doctorOptions) error {
	if (o.out == "") == (o.dataDir == "") {
		return errors.New("give one of --out and --data-dir")
	}
	var rs []filecheck.Result
	var verdict string
	if o.out != "" {
		if _, err := os.Stat(o.out); err != nil {
			return fmt.Errorf("--out: %w", err)
		}
		rs = experiment.CheckOut(o.out)
		// The members' folders c0, c1, ... (cluster/certs holds the run's
		// certificates, not a member).
		coords, _ := filepath.Glob(filepath.Join(o.out, "cluster", "c[0-9]*"))
		sort.Strings(coords)
		for _, d := range coords {
			rs = append(rs, coordinator.CheckDataDir(d)...)
		}
		verdict = outVerdict(rs, len(coords) > 0)
	} else {
		if _, err := os.Stat(o.dataDir); err != nil {
			return fmt.Errorf("--data-dir: %w", err)
		}
		rs = coordinator.CheckDataDir(o.dataDir)
		verdict = dataDirVerdict(rs)
	}
	for _, r := range rs {
		fmt.Fprintf(w, "%-8s %s  (%s)\n", r.Status, r.Path, r.Detail)
	}
	fmt.Fprintln(w, verdict)
	if n := filecheck.Count(rs, filecheck.Damaged); n > 0 {
		return fmt.Errorf("%d damaged file(s)", n)
	}
	return nil
}

// outVerdict says what `whorl run` with this --out will do.
func outVerdict(rs []filecheck.Result, hasCluster bool) string {
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

// dataDirVerdict says what restarting the coordinator on this dir does.
func dataDirVerdict(rs []filecheck.Result) string {
	for _, r := range rs {
		if filepath.Base(r.Path) == "raft.db" && r.Status == filecheck.Damaged {
			return "the node refuses to start: move this dir aside and restart it empty; the leader's snapshot catches it up (a single node has no peer to recover from)"
		}
	}
	if filecheck.Count(rs, filecheck.Damaged) > 0 {
		return "the node starts; damaged blobs are set aside and fetched again from a peer when needed"
	}
	return "the node restarts from this state"
}
