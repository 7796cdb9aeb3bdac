// Package experiment runs the steps of the RotNet experiment that are not
// distributed, above the job (package job) and the engine (model, through
// model/recipe).
//
// It owns:
//   - supervised training on the labeled subset (the baseline from scratch
//     and the fine-tuning of the pretrained network with a new head), with
//     the same budget and augmentation for both;
//   - the self-training stage (SelfTrain, job.SelfTrainConfig): each arm's
//     classifier pseudo-labels the unlabeled training photos and a student
//     starting where the arm started trains on them and the labeled images;
//     the report gives both arms with and without it;
//   - evaluation: accuracy, per-class accuracy, confusion matrix and the
//     rotation accuracy of the pretrained network on the test split;
//   - evaluation of frozen features (EvaluateFrozen): per feature block, a
//     linear probe (softmax regression by L-BFGS on standardised pooled
//     features, its penalty chosen on validation) and a weighted cosine kNN,
//     for the pretrained, baseline and random networks;
//   - the single-process rotation pretraining loop (Pretrain, `whorl run
//     --local`), which follows the job's plan and batches exactly and is
//     the reference every cluster size is compared with;
//   - Runner, which implements the coordinator's Phases interface as is,
//     and the report (report.json, report.md, curves.png, confusion.png,
//     probes.png).
//
// Every phase reads its images a batch at a time through job.Data.Images
// (eachBatch), naming the next batches for streamed data to read ahead:
// Runner opens a job's data with job.OpenData, so its memory holds a
// bounded cache of decoded photos, not the data set.
//
// The job configuration, its data and the epoch plan are package job's.
// experiment imports job, model and shard, and the coordinator's proto
// package for one type, pb.Phase (its progress events name the phase as
// `whorl status` does), which links gRPC's generated stubs; it never
// imports the coordinator, the worker or the cluster.
package experiment
