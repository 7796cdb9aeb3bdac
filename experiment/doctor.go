package experiment

import (
	"encoding/json"
	"errors"
	"fmt"
	"image/png"
	"os"
	"path/filepath"

	"github.com/whorl-ml/whorl/internal/filecheck"
	"github.com/whorl-ml/whorl/job"
	"github.com/whorl-ml/whorl/model"
	"github.com/whorl-ml/whorl/shard"
)

// outFiles are the files of an output folder, each with what it is and how
// to read it the way a rerun (or a reader of the report) does.
var outFiles = []struct {
	name, what string
	check      func(path string) error
}{
	{FileConfig, "the run's job configuration (a rerun must match it)", checkConfigFile},
	{FileManifest, "the run's images and split", func(p string) error { _, err := shard.ReadManifest(p); return err }},
	{FileBaseline, "the cached baseline result", checkJSONFile},
	{FileReport, "the report", checkReportFile},
	{FileReportMD, "the report as Markdown", nil},
	{FileCurves, "the training curves", checkPNGFile},
	{FileConfusion, "the confusion matrices", checkPNGFile},
	{FileBaselineCk, "the baseline network", checkCheckpointFile},
	{FilePretrained, "the pretrained network", checkCheckpointFile},
	{FileFinetuned, "the fine-tuned network", checkCheckpointFile},
	{FileResume, "the single-process pretraining checkpoint (--local)", checkCheckpointFile},
}

// CheckOut reads every file an output folder of `whorl run` may hold and
// says which are intact, damaged or missing (a run in progress misses the
// later ones). It changes nothing; the coordinator state under cluster/ is
// coordinator.CheckDataDir's.
func CheckOut(dir string) []filecheck.Result {
	var out []filecheck.Result
	for _, f := range outFiles {
		path := filepath.Join(dir, f.name)
		r := filecheck.Result{Path: path, Status: filecheck.Intact, Detail: f.what}
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			r.Status = filecheck.Missing
		} else if err != nil {
			r.Status, r.Detail = filecheck.Damaged, err.Error()
		} else if f.check != nil {
			if err := f.check(path); err != nil {
				r.Status, r.Detail = filecheck.Damaged, f.what+": "+err.Error()
			}
		}
		out = append(out, r)
	}
	return out
}

func checkConfigFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	_, err = job.Parse(b)
	return err
}

func checkJSONFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if !json.Valid(b) {
		return errors.New("not valid JSON")
	}
	return nil
}

func checkReportFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("not valid JSON: %w", err)
	}
	return CheckReportKeys(m)
}

func checkPNGFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = png.Decode(f)
	return err
}

func checkCheckpointFile(path string) error {
	_, err := model.ReadCheckpoint(path)
	return err
}
