package client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"google.golang.org/protobuf/proto"

	pb "github.com/whorl-ml/whorl/proto/whorl/coordinator/v1"
)

// The streaming calls bound each attempt by progress: AttemptTimeout to
// open the stream and for each message sent or received (so a coordinator
// that is cut off costs one AttemptTimeout, however large the transfer),
// and CommitTimeout for the leader's answer once an upload is sent.

// CommitCheckpoint uploads data as a checkpoint (hdr's size and sha256 are
// filled in) and returns the committed checkpoint.
func (c *Client) CommitCheckpoint(ctx context.Context, hdr *pb.CheckpointHeader, data []byte) (*pb.Checkpoint, error) {
	sum := sha256.Sum256(data)
	h := proto.CloneOf(hdr)
	h.Size, h.Sha256 = uint64(len(data)), hex.EncodeToString(sum[:])
	var out *pb.Checkpoint
	err := c.do(ctx, "commit checkpoint", c.cfg.AttemptTimeout, func(a *attempt) error {
		resp, err := c.upload(a, h, data)
		out = resp.GetCheckpoint()
		return err
	})
	return out, err
}

// upload is one attempt of CommitCheckpoint.
func (c *Client) upload(a *attempt, h *pb.CheckpointHeader, data []byte) (*pb.CommitCheckpointResponse, error) {
	stream, err := svc(a.conn).CommitCheckpoint(a.ctx)
	if err != nil {
		return nil, err
	}
	if err := stream.Send(&pb.CommitCheckpointRequest{Msg: &pb.CommitCheckpointRequest_Header{Header: h}}); err != nil {
		_, rerr := stream.CloseAndRecv()
		return nil, errors.Join(err, rerr)
	}
	for off := 0; off < len(data); off += ChunkSize {
		a.expect(c.cfg.AttemptTimeout)
		chunk := data[off:min(off+ChunkSize, len(data))]
		if err := stream.Send(&pb.CommitCheckpointRequest{Msg: &pb.CommitCheckpointRequest_Chunk{Chunk: chunk}}); err != nil {
			break // the status comes with CloseAndRecv
		}
	}
	a.expect(c.cfg.CommitTimeout)
	return stream.CloseAndRecv()
}

// FetchCheckpoint downloads a checkpoint by digest ("" = latest committed).
// Any coordinator serves it; the client tries the others on failure.
func (c *Client) FetchCheckpoint(ctx context.Context, digest string) (*pb.Checkpoint, []byte, error) {
	var info *pb.Checkpoint
	var data []byte
	err := c.do(ctx, "fetch checkpoint", c.cfg.AttemptTimeout, func(a *attempt) error {
		stream, err := svc(a.conn).FetchCheckpoint(a.ctx, &pb.FetchCheckpointRequest{Digest: digest})
		if err != nil {
			return err
		}
		info, data = nil, nil
		for {
			msg, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return err
			}
			a.expect(c.cfg.AttemptTimeout)
			if i := msg.GetInfo(); i != nil {
				info, data = i, make([]byte, 0, i.GetSize())
			}
			data = append(data, msg.GetChunk()...)
		}
		return verifyBlob(info, data)
	})
	return info, data, err
}

// verifyBlob checks a downloaded checkpoint against its digest.
func verifyBlob(info *pb.Checkpoint, data []byte) error {
	if info == nil {
		return fmt.Errorf("fetch checkpoint: no info message: %w", ErrBadCheckpoint)
	}
	sum := sha256.Sum256(data)
	if got := hex.EncodeToString(sum[:]); got != info.GetDigest() {
		return fmt.Errorf("fetch checkpoint %s: received bytes hash to %s: %w", info.GetDigest(), got, ErrBadCheckpoint)
	}
	return nil
}

// FetchImages downloads the original bytes of images by id.
func (c *Client) FetchImages(ctx context.Context, ids []int32) ([]*pb.FetchImagesResponse, error) {
	var out []*pb.FetchImagesResponse
	err := c.do(ctx, "fetch images", c.cfg.AttemptTimeout, func(a *attempt) error {
		stream, err := svc(a.conn).FetchImages(a.ctx, &pb.FetchImagesRequest{Ids: ids})
		if err != nil {
			return err
		}
		out = out[:0]
		for {
			msg, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			a.expect(c.cfg.AttemptTimeout)
			out = append(out, msg)
		}
	})
	return out, err
}
