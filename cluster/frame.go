package cluster

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	ringv1 "github.com/whorl-ml/whorl/proto/whorl/ring/v1"
)

// Frames of a direct connection: an 8-byte prefix (header size, data size,
// little-endian uint32s), the TransferRequest header without data, the data.
const (
	framePrefix    = 8
	maxFrameHeader = 4 << 10
	// frameReadBuf buffers a frame's prefix and header; a large data field
	// is read past it straight into its pooled buffer.
	frameReadBuf = 4 << 10
)

// frameWriter writes a lane's chunks as frames on a direct connection.
type frameWriter struct {
	c   net.Conn
	hdr []byte
}

// write sends m as one frame. The float32 payload of a little-endian
// machine is written from m.src itself (one writev with the header); it is
// no longer read when write returns.
func (w *frameWriter) write(m *outChunk) error {
	enc := m.hdr.GetEncoding()
	payload := f32Bytes(m.src)
	if !littleEndian || enc == ringv1.Encoding_ENCODING_BFLOAT16 {
		buf := bufPool.Get(len(m.src) * bytesPerValue(enc))
		defer bufPool.Put(buf)
		encodeValues(*buf, m.src, enc)
		payload = *buf
	}
	h, err := proto.MarshalOptions{}.MarshalAppend(append(w.hdr[:0], make([]byte, framePrefix)...), m.hdr)
	if err != nil {
		return fmt.Errorf("marshal chunk header: %w", err)
	}
	binary.LittleEndian.PutUint32(h[0:], uint32(len(h)-framePrefix))
	binary.LittleEndian.PutUint32(h[4:], uint32(len(payload)))
	w.hdr = h
	bufs := net.Buffers{h, payload}
	_, err = bufs.WriteTo(w.c)
	return err
}

// frameReader reads a lane's chunks from a direct connection.
type frameReader struct {
	br      *bufio.Reader
	maxData int
	hdr     []byte
}

func newFrameReader(r io.Reader, maxData int) *frameReader {
	return &frameReader{br: bufio.NewReaderSize(r, frameReadBuf), maxData: maxData}
}

// read reads the next frame into m, its data into a pooled buffer that
// m.release returns. A connection closed between frames gives io.EOF;
// anything else malformed or cut short is an error.
func (f *frameReader) read(m *inChunk) error {
	var pre [framePrefix]byte
	if _, err := io.ReadFull(f.br, pre[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("read frame prefix: %w", err)
		}
		return err
	}
	hl, dl := binary.LittleEndian.Uint32(pre[0:]), binary.LittleEndian.Uint32(pre[4:])
	if hl > maxFrameHeader || int64(dl) > int64(f.maxData) {
		return fmt.Errorf("%w: frame of %d header and %d data bytes, at most %d and %d",
			errBadChunk, hl, dl, maxFrameHeader, f.maxData)
	}
	f.hdr = append(f.hdr[:0], make([]byte, hl)...)
	if _, err := io.ReadFull(f.br, f.hdr); err != nil {
		return fmt.Errorf("read frame header: %w", noEOF(err))
	}
	if err := proto.Unmarshal(f.hdr, &m.hdr); err != nil {
		return fmt.Errorf("%w: %w", errBadChunk, err)
	}
	if m.hdr.Data != nil || m.hdr.Padding != nil {
		return fmt.Errorf("%w: data or padding in a frame header", errBadChunk)
	}
	buf := bufPool.Get(int(dl))
	if _, err := io.ReadFull(f.br, *buf); err != nil {
		bufPool.Put(buf)
		return fmt.Errorf("read frame data: %w", noEOF(err))
	}
	m.bufs, m.off, m.size = mem.BufferSlice{mem.NewBuffer(buf, bufPool)}, 0, int(dl)
	return nil
}

// noEOF turns the end of a connection inside a frame into an error.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
