package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/whorl-ml/whorl/coordinator"
	"github.com/whorl-ml/whorl/internal/filecheck"
	"github.com/whorl-ml/whorl/session"
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
		rs, verdict = session.CheckRun(o.out)
	} else {
		if _, err := os.Stat(o.dataDir); err != nil {
			return fmt.Errorf("--data-dir: %w", err)
		}
		rs = coordinator.CheckDataDir(o.dataDir)
		verdict = coordinator.DataDirVerdict(rs)
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
