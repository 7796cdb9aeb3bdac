package cluster

import (
	"encoding/binary"
	"math"
	"unsafe"

	ringv1 "github.com/whorl-ml/whorl/proto/whorl/ring/v1"
)

// valueBytes is the wire size of one float32 value.
const valueBytes = 4

// bytesPerValue is the wire size of one value in encoding e.
func bytesPerValue(e ringv1.Encoding) int {
	if e == ringv1.Encoding_ENCODING_BFLOAT16 {
		return 2
	}
	return valueBytes
}

// encodeValues writes src into dst in encoding e.
func encodeValues(dst []byte, src []float32, e ringv1.Encoding) {
	if e == ringv1.Encoding_ENCODING_BFLOAT16 {
		encodeBF16(dst, src)
		return
	}
	encodeF32(dst, src)
}

// f32ToBF16 rounds v to the nearest bfloat16 (ties to even), keeping NaN a NaN.
func f32ToBF16(v float32) uint16 {
	u := math.Float32bits(v)
	if u&0x7fffffff > 0x7f800000 {
		return uint16(u>>16) | 0x40
	}
	return uint16((u + 0x7fff + (u>>16)&1) >> 16)
}

// bf16ToF32 widens a bfloat16 exactly.
func bf16ToF32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// encodeBF16 writes src as little-endian bfloat16.
func encodeBF16(dst []byte, src []float32) {
	for i, v := range src {
		binary.LittleEndian.PutUint16(dst[2*i:], f32ToBF16(v))
	}
}

// roundBF16 rounds every value of s to bfloat16 precision in place.
func roundBF16(s []float32) {
	for i, v := range s {
		s[i] = bf16ToF32(f32ToBF16(v))
	}
}

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

// applyValues adds (add) or copies the little-endian values of b, in
// encoding e, into dst; len(b) must be len(dst) values.
func applyValues(dst []float32, b []byte, e ringv1.Encoding, add bool) {
	switch {
	case e == ringv1.Encoding_ENCODING_BFLOAT16 && add:
		for i := range dst {
			dst[i] += bf16ToF32(binary.LittleEndian.Uint16(b[2*i:]))
		}
	case e == ringv1.Encoding_ENCODING_BFLOAT16:
		for i := range dst {
			dst[i] = bf16ToF32(binary.LittleEndian.Uint16(b[2*i:]))
		}
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

// applyRuns adds (add) or copies the values of m's data field, in encoding
// e, into dst; the field may be split across buffers anywhere, even inside
// a value.
func applyRuns(dst []float32, m *inChunk, e ringv1.Encoding, add bool) {
	vb := bytesPerValue(e)
	valueRuns(m, vb, func(i int, b []byte) { applyValues(dst[i:i+len(b)/vb], b, e, add) })
}

// valueRuns calls fn with the whole values of m's data field (vb bytes
// each), run by run, and i the index of a run's first value; a value split
// across buffers comes alone, from a carry.
func valueRuns(m *inChunk, vb int, fn func(i int, b []byte)) {
	var carry [valueBytes]byte
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
			fn(i, carry[:vb])
			i, nc = i+1, 0
		}
		whole := len(b) / vb
		if whole > 0 {
			fn(i, b[:whole*vb])
		}
		i += whole
		nc = copy(carry[:], b[whole*vb:])
	})
}

// firstNonFinite is the index of the first NaN or infinity among the values
// of m's data field in encoding e, or -1 when all are finite.
func firstNonFinite(m *inChunk, e ringv1.Encoding) int {
	at := -1
	vb := bytesPerValue(e)
	valueRuns(m, vb, func(i int, b []byte) {
		if at < 0 {
			if j := nonFinite(b, e); j >= 0 {
				at = i + j
			}
		}
	})
	return at
}

// nonFinite is the index of the first NaN or infinity among the
// little-endian values of b in encoding e, or -1: a value whose exponent
// bits are all ones. Binary32 values are tested 16 at a time, two to a
// 64-bit word, without branches (adding one to an all-ones exponent
// carries into its value's top bit).
func nonFinite(b []byte, e ringv1.Encoding) int {
	if e == ringv1.Encoding_ENCODING_BFLOAT16 {
		for i := 0; i+2 <= len(b); i += 2 {
			if binary.LittleEndian.Uint16(b[i:])&0x7f80 == 0x7f80 {
				return i / 2
			}
		}
		return -1
	}
	// two values per 64-bit word: a lane's sum stays within its 32 bits
	const exp2, one2, top2 = 0x7f8000007f800000, 0x0080000000800000, 0x8000000080000000
	const exp = 0x7f800000
	n, i := len(b)/4, 0
	for ; i+16 <= n; i += 16 {
		w := b[4*i : 4*i+64 : 4*i+64]
		acc := (binary.LittleEndian.Uint64(w[0:])&exp2 + one2) |
			(binary.LittleEndian.Uint64(w[8:])&exp2 + one2) |
			(binary.LittleEndian.Uint64(w[16:])&exp2 + one2) |
			(binary.LittleEndian.Uint64(w[24:])&exp2 + one2) |
			(binary.LittleEndian.Uint64(w[32:])&exp2 + one2) |
			(binary.LittleEndian.Uint64(w[40:])&exp2 + one2) |
			(binary.LittleEndian.Uint64(w[48:])&exp2 + one2) |
			(binary.LittleEndian.Uint64(w[56:])&exp2 + one2)
		if acc&top2 != 0 {
			break
		}
	}
	for ; i < n; i++ {
		if binary.LittleEndian.Uint32(b[4*i:])&exp == exp {
			return i
		}
	}
	return -1
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
