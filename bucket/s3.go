package bucket

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	gcaws "gocloud.dev/aws"
	"gocloud.dev/blob"
	"gocloud.dev/blob/s3blob"
)

// openS3 opens s3://bucket?params with the AWS SDK's configuration
// (gocloud's URL parameters, then the SDK's environment and files). With
// an endpoint of one's own (the endpoint parameter, AWS_ENDPOINT_URL_S3 or
// AWS_ENDPOINT_URL) requests are path-style unless use_path_style=false,
// as S3-compatible servers on an address rather than a domain need. The
// SDK's log of skipped response checksums (most S3-compatible servers send
// none) is off. mk creates the bucket (in the configured region).
func openS3(ctx context.Context, u *url.URL) (b *blob.Bucket, mk func(context.Context) error, err error) {
	q := u.Query()
	pathStyle, err := pathStyleParam(q)
	if err != nil {
		return nil, nil, err
	}
	cfg, err := gcaws.V2ConfigFromURLParams(ctx, q)
	if err != nil {
		return nil, nil, err
	}
	if pathStyle == nil {
		own := cfg.BaseEndpoint != nil || os.Getenv("AWS_ENDPOINT_URL_S3") != ""
		pathStyle = &own
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.UsePathStyle = *pathStyle
		o.DisableLogOutputChecksumValidationSkipped = true
	})
	b, err = s3blob.OpenBucket(ctx, client, u.Host, &s3blob.Options{RequestChecksumCalculation: cfg.RequestChecksumCalculation})
	return b, func(ctx context.Context) error { return createS3Bucket(ctx, client, u.Host, cfg.Region) }, err
}

// createS3Bucket creates bucket in region (us-east-1, S3's default, takes
// no location constraint); one that exists and is ours already is no
// error (a concurrent packer made it).
func createS3Bucket(ctx context.Context, client *s3.Client, bucket, region string) error {
	in := &s3.CreateBucketInput{Bucket: aws.String(bucket)}
	if region != "" && region != "us-east-1" {
		in.CreateBucketConfiguration = &types.CreateBucketConfiguration{LocationConstraint: types.BucketLocationConstraint(region)}
	}
	_, err := client.CreateBucket(ctx, in)
	var owned *types.BucketAlreadyOwnedByYou
	if errors.As(err, &owned) {
		return nil
	}
	return err
}

// pathStyleParam takes use_path_style (or its older name) out of q.
func pathStyleParam(q url.Values) (*bool, error) {
	var out *bool
	for _, k := range []string{"use_path_style", "s3ForcePathStyle"} {
		if v := q.Get(k); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return nil, fmt.Errorf("%w: %s=%q: %v", ErrConfig, k, v, err)
			}
			out = &b
		}
		q.Del(k)
	}
	return out, nil
}
