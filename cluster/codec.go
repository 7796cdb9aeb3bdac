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

// Field numbers of TransferRequest written by hand, and the size of gRPC's
// message prefix (compression flag and length).
const (
	paddingField protowire.Number = 14
	dataField    protowire.Number = 15
	grpcPrefix                    = 5
)

func init() { encoding.RegisterCodecV2(chunkCodec{}) }

// chunkCodec encodes chunks (outChunk, inChunk) as TransferRequest wire bytes
// without an intermediate protobuf message: values go straight from the
// float32 buffer into gRPC's pooled buffer and are read straight out of the
// received one. Every other message is handled by the protobuf codec.
type chunkCodec struct{}

// outChunk is a TransferRequest whose data field is src as little-endian
// float32 (wireEncoding, whatever the header says). When release is set, Marshal may send src without
// copying it (and then sets zeroCopy): gRPC calls release.Put once it no
// longer reads src.
type outChunk struct {
	hdr      *ringv1.TransferRequest // data unset
	src      []float32
	release  mem.BufferPool
	zeroCopy bool
}

// inChunk is a received TransferRequest. Its data field stays in the
// received buffers (bufs from byte off on, size bytes) until release.
type inChunk struct {
	hdr  ringv1.TransferRequest // data unset
	bufs mem.BufferSlice
	off  int
	size int
}

// release returns the received bytes to the pool.
func (m *inChunk) release() {
	if m.bufs != nil {
		m.bufs.Free()
		m.bufs = nil
	}
}

// runs calls fn with the consecutive byte runs of the data field.
func (m *inChunk) runs(fn func([]byte)) {
	skip, left := m.off, m.size
	for _, b := range m.bufs {
		d := b.ReadOnlyData()
		if skip >= len(d) {
			skip -= len(d)
			continue
		}
		d = d[skip:min(len(d), skip+left)]
		skip = 0
		left -= len(d)
		if len(d) > 0 {
			fn(d)
		}
		if left == 0 {
			return
		}
	}
}

// Name is the content subtype.
func (chunkCodec) Name() string { return codecName }

func protoCodec() encoding.CodecV2 { return encoding.GetCodecV2("proto") }

// Marshal encodes an outChunk. Large float32 payloads on little-endian
// machines are not copied: the second buffer of the result is the memory of
// src, and gRPC tells m.release (through Put) when it no longer reads it.
// Anything else is copied into one pooled buffer.
func (chunkCodec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(*outChunk)
	if !ok {
		return protoCodec().Marshal(v)
	}
	opts := proto.MarshalOptions{}
	enc := m.hdr.GetEncoding()
	plen := len(m.src) * bytesPerValue(enc)
	hlen := opts.Size(m.hdr)
	pad := 0
	if plen > 0 {
		// gRPC's 5-byte message prefix, the header, the padding field (tag,
		// length, pad zeros), then data's tag and length: align data to 4.
		pre := grpcPrefix + hlen + 2 + protowire.SizeTag(dataField) + protowire.SizeVarint(uint64(plen))
		pad = (4 - pre%4) % 4
		hlen = pre - grpcPrefix + pad
	}
	m.zeroCopy = m.release != nil && littleEndian && enc != ringv1.Encoding_ENCODING_BFLOAT16 &&
		!mem.IsBelowBufferPoolingThreshold(plen)
	total := hlen
	if !m.zeroCopy {
		total += plen
	}
	buf := bufPool.Get(total)
	b, err := opts.MarshalAppend((*buf)[:0], m.hdr)
	if err != nil {
		bufPool.Put(buf)
		return nil, fmt.Errorf("marshal chunk header: %w", err)
	}
	if plen > 0 {
		b = protowire.AppendTag(b, paddingField, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(pad))
		b = append(b, make([]byte, pad)...)
		b = protowire.AppendTag(b, dataField, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(plen))
	}
	*buf = (*buf)[:total]
	if !m.zeroCopy {
		encodeValues((*buf)[len(b):], m.src, enc)
		return mem.BufferSlice{mem.NewBuffer(buf, bufPool)}, nil
	}
	payload := f32Bytes(m.src)
	return mem.BufferSlice{mem.NewBuffer(buf, bufPool), mem.NewBuffer(&payload, m.release)}, nil
}

// Unmarshal decodes into an inChunk, keeping a reference to the bytes of
// the data field where gRPC received them (no copy) when the header is in
// the first buffer and data is the last field, as this package sends them.
func (chunkCodec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(*inChunk)
	if !ok {
		return protoCodec().Unmarshal(data, v)
	}
	if len(data) > 0 && m.parseInPlace(data) {
		data.Ref()
		m.bufs = data
		return nil
	}
	buf := data.MaterializeToBuffer(bufPool)
	b := buf.ReadOnlyData()
	data0, err := m.parse(b)
	if err != nil {
		buf.Free()
		return err
	}
	m.bufs, m.size = mem.BufferSlice{buf}, len(data0)
	if len(data0) > 0 {
		m.off = cap(b) - cap(data0) // data0 is a subslice of b
	}
	return nil
}

// parseInPlace parses the header from the first buffer of data when the
// data field is the last field and its tag and length are in that buffer.
func (m *inChunk) parseInPlace(data mem.BufferSlice) bool {
	first := data[0].ReadOnlyData()
	total := data.Len()
	for b := first; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false
		}
		if num == dataField && typ == protowire.BytesType {
			size, k := protowire.ConsumeVarint(b[n:])
			off := len(first) - len(b) + n + k
			if k < 0 || uint64(total-off) != size {
				return false
			}
			if err := proto.Unmarshal(first[:len(first)-len(b)], &m.hdr); err != nil {
				return false
			}
			m.off, m.size = off, int(size)
			return true
		}
		k := protowire.ConsumeFieldValue(num, typ, b[n:])
		if k < 0 {
			return false
		}
		b = b[n+k:]
	}
	return false
}

var errBadChunk = errors.New("malformed TransferRequest")

// parse reads the TransferRequest fields of b and returns the data field,
// which aliases b.
func (m *inChunk) parse(b []byte) ([]byte, error) {
	var hdr, data []byte
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, fmt.Errorf("%w: %w", errBadChunk, protowire.ParseError(n))
		}
		if num == dataField && typ == protowire.BytesType {
			v, k := protowire.ConsumeBytes(b[n:])
			if k < 0 {
				return nil, fmt.Errorf("%w: data: %w", errBadChunk, protowire.ParseError(k))
			}
			data = v
			b = b[n+k:]
			continue
		}
		k := protowire.ConsumeFieldValue(num, typ, b[n:])
		if k < 0 {
			return nil, fmt.Errorf("%w: field %d: %w", errBadChunk, num, protowire.ParseError(k))
		}
		hdr = append(hdr, b[:n+k]...)
		b = b[n+k:]
	}
	if err := proto.Unmarshal(hdr, &m.hdr); err != nil {
		return nil, fmt.Errorf("%w: %w", errBadChunk, err)
	}
	return data, nil
}
