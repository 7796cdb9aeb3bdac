package cluster

import (
	"encoding/binary"
	"math"
	"unsafe"

	ringv1 "github.com/whorl-ml/whorl/proto/whorl/ring/v1"
)

// wireEncoding is the only encoding of chunk values this package sends or
// accepts; a chunk in any other encoding is rejected.
const wireEncoding = ringv1.Encoding_ENCODING_FLOAT32

// valueBytes is the wire size of one value in wireEncoding.
const valueBytes = 4

// littleEndian is true on little-endian machines, where float32 values are
// moved with memmove and summed without byte swapping.
var littleEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()

// f32Bytes is the memory of s as bytes.
func f32Bytes(s []float32) []byte {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), 4*len(s))
}

// alignedF32 returns b as float32 values when b is 4-byte aligned and the
// machine is little endian.
func alignedF32(b []byte) ([]float32, bool) {
	if !littleEndian || len(b) < 4 || uintptr(unsafe.Pointer(unsafe.SliceData(b)))%4 != 0 {
		return nil, false
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(b))), len(b)/4), true
}

// encodeF32 writes src as little-endian binary32.
func encodeF32(dst []byte, src []float32) {
	if littleEndian {
		copy(dst, f32Bytes(src))
		return
	}
	for i, v := range src {
		binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(v))
	}
}

// applyValues adds (add) or copies the little-endian float32 values of b
// into dst; len(b) must be valueBytes*len(dst).
func applyValues(dst []float32, b []byte, add bool) {
	switch {
	case !add && littleEndian:
		copy(f32Bytes(dst), b)
	case add:
		addF32(dst, b)
	default:
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
	}
}

// addF32 adds the little-endian binary32 values of b to dst.
func addF32(dst []float32, b []byte) {
	if src, ok := alignedF32(b); ok {
		addAligned(dst, src[:len(dst)])
		return
	}
	b = b[:4*len(dst)]
	for i := range dst {
		dst[i] += math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
}

// applyRuns adds (add) or copies the values of m's data field into dst; the
// field may be split across buffers anywhere, even inside a value.
func applyRuns(dst []float32, m *inChunk, add bool) {
	const vb = valueBytes
	var carry [vb]byte
	nc, i := 0, 0
	m.runs(func(b []byte) {
		if nc > 0 {
			take := min(vb-nc, len(b))
			copy(carry[nc:], b[:take])
			nc += take
			b = b[take:]
			if nc < vb {
				return
			}
			applyValues(dst[i:i+1], carry[:vb], add)
			i, nc = i+1, 0
		}
		whole := len(b) / vb
		applyValues(dst[i:i+whole], b[:whole*vb], add)
		i += whole
		nc = copy(carry[:], b[whole*vb:])
	})
}

// addAligned adds src to dst (equal lengths), eight values a round.
func addAligned(dst, src []float32) {
	i := 0
	for ; i+8 <= len(dst); i += 8 {
		d, s := dst[i:i+8:i+8], src[i:i+8:i+8]
		d[0] += s[0]
		d[1] += s[1]
		d[2] += s[2]
		d[3] += s[3]
		d[4] += s[4]
		d[5] += s[5]
		d[6] += s[6]
		d[7] += s[7]
	}
	for ; i < len(dst); i++ {
		dst[i] += src[i]
	}
}
