// Package experiment runs the seven steps of the RotNet experiment that are
// not distributed, and defines the job configuration every other part reads.
//
// It owns:
//   - Config, the job configuration (JSON-encoded into the coordinator's raft
//     state), with DefaultConfig, Preset ("quick", "paper") and Validate;
//   - supervised training on the labeled subset (the baseline from scratch
//     and the fine-tuning of the pretrained network with a new head), with
//     the same budget and augmentation for both;
//   - evaluation: accuracy, per-class accuracy, confusion matrix and the
//     rotation accuracy of the pretrained network on the test split;
//   - a single-process rotation pretraining loop, used to tune recipes and as
//     the reference the distributed run is compared with;
//   - Runner, which implements the coordinator's Phases interface, and the
//     report (report.json, report.md, curves.png, confusion.png).
//
// experiment imports model and shard only; it never imports the coordinator,
// the worker, the cluster or gRPC, so the coordinator can import it.
package experiment
