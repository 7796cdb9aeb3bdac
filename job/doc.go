// Package job is what every role of whorl reads about a job, and nothing
// else: the coordinator, the workers, `whorl run --local`, `whorl submit`
// and the test fakes all import it, and it imports only shard (data) and internal/..., never
// the training engine or networking, so reading a job links neither.
//
// It owns:
//   - Config, the job configuration (JSON-encoded into the coordinator's
//     raft state), with DefaultConfig, the presets, Validate (every problem,
//     each naming the JSON path and the bound), Parse, Overlay (a document
//     of keys laid over a preset, as `whorl submit --job` takes) and Digest;
//   - the learning-rate schedules (ScheduleConfig.Rate);
//   - the single epoch plan (Epoch, PlanEpoch: the order of the training
//     images, the steps, the global batches and each rank's part, with
//     exactly-once coverage across membership changes);
//   - the single seeded batch function (Batcher: which images, which
//     augmentation draw, which rotation order; BuildJoint adds the joint
//     mode's labeled images);
//   - the training modes (ModePretrainFinetune, ModeJoint with JointConfig)
//     and the joint mode's labeled draw per global step (LabeledBatch),
//     which the coordinator assigns and the single-process loop follows;
//   - the self-training stage's settings (SelfTrainConfig), which both
//     arms follow alike;
//   - the job's data (Data): LoadData decodes it whole; OpenData gives the
//     same split, manifest and normaliser without holding the pixels (the
//     coordinator's phases read them through Data.Images and a bounded
//     cache); OpenCatalogue numbers a packed set's images from its index
//     alone (a streaming worker);
//   - the pretraining checkpoint's metadata keys and EpochStat, and
//     Prepared, the job's data as the coordinator hands it to workers.
//
// The engine's side of a job (its network, optimisers and checkpoints) is
// package model/recipe.
package job
