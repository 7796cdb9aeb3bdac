// Package s3test starts a real S3-compatible server for tests: SeaweedFS's
// weed (Apache-2.0), built from the Go module proxy by
// build-seaweedfs.sh, as a child process on loopback ports with its data
// in the test's temporary folder and one identity with keys of its own.
//
// Without the binary a test skips, naming the script that builds it;
// with WHORL_S3=require (set by .ci/run) the skip is a failure.
package s3test
