// Package recipe is the one place that turns a job (package job) into the
// training engine's objects: the network of a job.Config, the pretraining and
// supervised optimisers, the pretraining step (Pretrainer: batch, forward and
// backward, the step's statistic and the optimiser step, written once), and
// the pretraining checkpoint with the job's metadata keys. The workers and
// the single-process loops (package experiment) both build and step through
// it, so they train the same network the same way and read each other's
// checkpoints.
//
// It sits on the engine's side: it imports model and job; job imports
// neither, so every role can read a job without linking the engine.
package recipe
