package experiment

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// baselineArm are the report's file keys written by Baseline, not FineTune.
var baselineArm = map[string]bool{"baseline": true, "baseline_selftrained": true}

// ResultFiles lists the result files of the job of configJSON in OutDir,
// as artifact name to path (the coordinator's ResultLister): the files the
// report names (reportJSON is what FineTune returned, and it wrote them in
// this call), and the baseline arm's (baseline.json, the baseline network
// and its self-trained student) only when baseline.json there holds this
// configuration's result: the baseline may have run on another leader,
// which leaves none here, or an earlier job's. Without OutDir it lists
// nothing.
func (r *Runner) ResultFiles(configJSON, reportJSON []byte) (map[string]string, error) {
	if r.OutDir == "" {
		return nil, nil
	}
	c, err := r.config(configJSON)
	if err != nil {
		return nil, fmt.Errorf("result files: %w", err)
	}
	var rep struct {
		Files map[string]string `json:"files"`
	}
	if err := json.Unmarshal(reportJSON, &rep); err != nil {
		return nil, fmt.Errorf("result files: decode the report: %w", err)
	}
	_, ownBaseline := r.cachedBaseline(c)
	out := map[string]string{}
	for key, name := range rep.Files {
		path := filepath.Join(r.OutDir, name)
		if baselineArm[key] && (!ownBaseline || !exists(path)) {
			continue
		}
		out[name] = path
	}
	if ownBaseline {
		out[FileBaseline] = filepath.Join(r.OutDir, FileBaseline)
	}
	return out, nil
}

// exists reports whether path names a file that can be stat'ed.
func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
