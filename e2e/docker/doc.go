// Package docker is whorl's container fault suite: it builds the image with
// `make image` (FROM scratch, nothing pulled), checks the image's own
// properties, starts the compose cluster of docker-compose.yaml and trains
// a small job through container faults (kill and restart of the raft
// leader and of a worker, SIGTERM of a worker, a frozen worker, a worker
// and a follower cut off the network, a coordinator recreated with an
// empty volume), checking that the job ends with its report and progress
// never goes back; and it runs the compose file's s3 profile, a job whose
// photos a SeaweedFS container (`make image-weed`) serves over S3, packed
// there by the profile's one-shot. Without a Docker engine it skips,
// naming what is missing, unless WHORL_E2E_DOCKER=require (set by .ci/run).
package docker
