// Package recipe is the one place that turns a job (package job) into the
// training engine's objects: the network of a job.Config, the pretraining and
// supervised optimisers, and the pretraining checkpoint with the job's
// metadata keys. The workers and the single-process loops (package
// experiment) both build through it, so they train the same network with the
// same optimiser and read each other's checkpoints.
//
// It sits on the engine's side: it imports model and job; job imports
// neither, so every role can read a job without linking the engine.
package recipe
