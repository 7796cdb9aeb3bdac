package coordinator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/whorl-ml/whorl/coordinator/blobstore"
	"github.com/whorl-ml/whorl/coordinator/client"
	pb "github.com/whorl-ml/whorl/proto/whorl/coordinator/v1"
)

// PretrainedArtifact names, among a job's artifacts, the workers' final
// pretraining checkpoint as committed (its blob is the committed
// checkpoint's, stored once). The result files keep their own names, so
// the runner's pretrained.safetensors (the pretrained network re-saved
// with the input normaliser and labels `whorl predict` reads) is another
// file.
const PretrainedArtifact = "pretrained-checkpoint.safetensors"

// storeResults stores the result files the Phases list for the job (see
// ResultLister) as blobs, each replicated to a quorum, and returns them as
// the job's artifacts with the committed pretrained checkpoint; none when
// Phases lists no files. A failure of a disk to take a blob or of the
// quorum is retried with backoff until ctx ends (the phase's result is kept
// meanwhile, as a worker retries its final checkpoint); any other failure
// (a file that cannot be read, a name that is not a plain file name) is
// returned and fails the phase.
func (n *Node) storeResults(ctx context.Context, v jobView, reportJSON []byte) ([]Artifact, error) {
	rl, ok := n.cfg.Phases.(ResultLister)
	if !ok {
		return nil, nil
	}
	files, err := rl.ResultFiles(v.config, reportJSON)
	if err != nil {
		return nil, fmt.Errorf("list result files: %w", err)
	}
	if len(files) == 0 {
		return nil, nil
	}
	if err := n.checkResultFiles(files); err != nil {
		return nil, err
	}
	var arts []Artifact
	var permanent error
	err = n.retry(ctx, "store result files", func() error {
		var err error
		arts, err = n.storeFiles(ctx, files)
		n.noteStore(err)
		if err != nil && !errors.Is(err, blobstore.ErrStore) && !errors.Is(err, client.ErrNoQuorum) {
			permanent = err
			return nil
		}
		return err
	})
	if err = errors.Join(err, permanent); err != nil {
		return nil, err
	}
	if v.digest != "" {
		arts = append(arts, Artifact{Name: PretrainedArtifact, Digest: v.digest, Size: v.ckptSize})
	}
	slices.SortFunc(arts, func(a, b Artifact) int { return strings.Compare(a.Name, b.Name) })
	return arts, checkArtifacts(arts)
}

// checkResultFiles refuses a list whose names are not plain file names (or
// PretrainedArtifact), or whose files are missing or larger than a
// coordinator takes from a peer (MaxCheckpointBytes).
func (n *Node) checkResultFiles(files map[string]string) error {
	for name, path := range files {
		if err := client.CheckArtifactName(name); err != nil {
			return fmt.Errorf("result file %s: %w", path, err)
		}
		if name == PretrainedArtifact {
			return fmt.Errorf("result file %s: the name %q is the committed checkpoint's", path, name)
		}
		st, err := os.Stat(path)
		if err != nil {
			return fmt.Errorf("result file: %w", err)
		}
		if st.Size() > n.cfg.MaxCheckpointBytes {
			return fmt.Errorf("result file %s: %d bytes, more than the %d a coordinator takes (MaxCheckpointBytes)", path, st.Size(), n.cfg.MaxCheckpointBytes)
		}
	}
	return nil
}

// storeFiles stores and replicates each file and returns the artifacts.
func (n *Node) storeFiles(ctx context.Context, files map[string]string) ([]Artifact, error) {
	arts := make([]Artifact, 0, len(files)+1)
	for name, path := range files {
		digest, size, err := n.storeFile(path)
		if err != nil {
			return nil, err
		}
		if err := n.replicate(ctx, digest); err != nil {
			return nil, fmt.Errorf("result file %s: %w", path, err)
		}
		arts = append(arts, Artifact{Name: name, Digest: digest, Size: size})
	}
	return arts, nil
}

// storeFile streams a file into the blob store and returns its digest and
// size.
func (n *Node) storeFile(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, fmt.Errorf("store result file: %w", err)
	}
	defer f.Close()
	w, err := n.blobs.Create()
	if err != nil {
		return "", 0, fmt.Errorf("store result file %s: %w", path, err)
	}
	size, err := io.Copy(w, f)
	if err != nil {
		w.Abort()
		return "", 0, fmt.Errorf("store result file %s: %w", path, err)
	}
	digest, err := w.Commit("", size)
	if err != nil {
		return "", 0, fmt.Errorf("store result file %s: %w", path, err)
	}
	return digest, size, nil
}

// artifactsPB converts a job's artifacts.
func artifactsPB(as []Artifact) []*pb.Artifact {
	out := make([]*pb.Artifact, 0, len(as))
	for _, a := range as {
		out = append(out, &pb.Artifact{Name: a.Name, Digest: a.Digest, Size: uint64(a.Size)})
	}
	return out
}
