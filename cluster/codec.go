package cluster

import (
	"errors"
	"fmt"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	ringv1 "github.com/whorl-ml/whorl/proto/whorl/ring/v1"
)

// codecName is the gRPC content subtype of the ring's streams.
const codecName = "whorlring"

// dataField is the field number of TransferRequest.data.
const dataField protowire.Number = 15

func init() { encoding.RegisterCodecV2(chunkCodec{}) }

// chunkCodec encodes chunks (outChunk, inChunk) as TransferRequest wire bytes
// without an intermediate protobuf message: values go straight from the
// float32 buffer into gRPC's pooled buffer and are read straight out of the
// received one. Every other message is handled by the protobuf codec.
type chunkCodec struct{}

// outChunk is a TransferRequest whose data field is src encoded with enc.
type outChunk struct {
	hdr *ringv1.TransferRequest // data unset
	src []float32
}

// inChunk is a received TransferRequest; data aliases buf until release.
type inChunk struct {
	hdr  ringv1.TransferRequest // data unset
	data []byte
	buf  mem.Buffer
}

// release returns the received bytes to gRPC's pool.
func (m *inChunk) release() {
	if m.buf != nil {
		m.buf.Free()
		m.buf, m.data = nil, nil
	}
}

// Name is the content subtype.
func (chunkCodec) Name() string { return codecName }

func protoCodec() encoding.CodecV2 { return encoding.GetCodecV2("proto") }

// Marshal encodes an outChunk into one pooled buffer.
func (chunkCodec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(*outChunk)
	if !ok {
		return protoCodec().Marshal(v)
	}
	opts := proto.MarshalOptions{}
	plen := len(m.src) * bytesPerValue(m.hdr.GetEncoding())
	total := opts.Size(m.hdr)
	if plen > 0 {
		total += protowire.SizeTag(dataField) + protowire.SizeBytes(plen)
	}
	pool := mem.DefaultBufferPool()
	buf := pool.Get(total)
	b, err := opts.MarshalAppend((*buf)[:0], m.hdr)
	if err != nil {
		pool.Put(buf)
		return nil, fmt.Errorf("marshal chunk header: %w", err)
	}
	if plen > 0 {
		b = protowire.AppendTag(b, dataField, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(plen))
		encodeValues(b[len(b):len(b)+plen], m.src, m.hdr.GetEncoding())
	}
	*buf = (*buf)[:total]
	return mem.BufferSlice{mem.NewBuffer(buf, pool)}, nil
}

// Unmarshal decodes into an inChunk, keeping a reference to the bytes.
func (chunkCodec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(*inChunk)
	if !ok {
		return protoCodec().Unmarshal(data, v)
	}
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	if err := m.parse(buf.ReadOnlyData()); err != nil {
		buf.Free()
		return err
	}
	m.buf = buf
	return nil
}

var errBadChunk = errors.New("malformed TransferRequest")

// parse reads the TransferRequest fields of b; data aliases b.
func (m *inChunk) parse(b []byte) error {
	var hdr []byte
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("%w: %w", errBadChunk, protowire.ParseError(n))
		}
		if num == dataField && typ == protowire.BytesType {
			v, k := protowire.ConsumeBytes(b[n:])
			if k < 0 {
				return fmt.Errorf("%w: data: %w", errBadChunk, protowire.ParseError(k))
			}
			m.data = v
			b = b[n+k:]
			continue
		}
		k := protowire.ConsumeFieldValue(num, typ, b[n:])
		if k < 0 {
			return fmt.Errorf("%w: field %d: %w", errBadChunk, num, protowire.ParseError(k))
		}
		hdr = append(hdr, b[:n+k]...)
		b = b[n+k:]
	}
	if err := proto.Unmarshal(hdr, &m.hdr); err != nil {
		return fmt.Errorf("%w: %w", errBadChunk, err)
	}
	return nil
}

// bytesPerValue is the wire size of one value in encoding e.
func bytesPerValue(e ringv1.Encoding) int {
	if e == ringv1.Encoding_ENCODING_BFLOAT16 {
		return 2
	}
	return 4
}

// encodeValues writes src into dst in encoding e.
func encodeValues(dst []byte, src []float32, e ringv1.Encoding) {
	if e == ringv1.Encoding_ENCODING_BFLOAT16 {
		encodeBF16(dst, src)
		return
	}
	encodeF32(dst, src)
}
