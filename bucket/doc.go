// Package bucket opens the object stores a packed dataset lives in
// (shard.Store) by URL, through gocloud.dev/blob, and registers them with
// shard for their schemes:
//
//   - file:///abs/folder: a local folder (no metadata side files);
//   - s3://bucket/prefix: Amazon S3 or any S3-compatible server. The
//     endpoint, region and credentials come the way the AWS SDK takes them
//     (AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL, AWS_REGION,
//     AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AWS_PROFILE and the shared
//     files) or as gocloud's URL parameters (?endpoint=...&region=...&use_path_style=true);
//   - gs://bucket/prefix: Google Cloud Storage, with Application Default
//     Credentials.
//
// Options.Create makes a missing folder or S3 bucket (`whorl data pack`
// opens its --out so); otherwise a missing bucket is refused.
//
// PutFile and PutBytes write whole objects with their Content-MD5 (the
// operator copies a WhorlJob's results so, into spec.results).
//
// Reads are retried with a bounded exponential backoff (Options) when the
// store may recover (unreachable, timed out, throttled, internal errors),
// never when it will not (missing object, denied access, bad request); the
// final error names the URL, the object and the byte range, and how many
// attempts were made. Programs that read packed datasets by URL import
// this package (cmd/whorl does); shard itself links no networking.
package bucket
