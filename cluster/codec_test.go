package cluster

import (
	"fmt"
	"testing"

	"google.golang.org/grpc/mem"

	ringv1 "github.com/whorl-ml/whorl/proto/whorl/ring/v1"
)

// marshalChunk encodes a chunk with the codec into one byte slice.
func marshalChunk(t testing.TB, hdr *ringv1.TransferRequest, src []float32) []byte {
	bs, err := chunkCodec{}.Marshal(&outChunk{hdr: hdr, src: src})
	if err != nil {
		t.Fatal(err)
	}
	defer bs.Free()
	return bs.Materialize()
}

// TestCodecSplitsAnywhere: the receiver sums a chunk correctly however the
// transport splits its bytes into buffers, even inside a value, in both
// encodings (the values are exact in bfloat16).
func TestCodecSplitsAnywhere(t *testing.T) {
	src := []float32{1.5, -2.25, 0.375, 4 << 20, 5, -6, 7.125}
	for _, enc := range []ringv1.Encoding{ringv1.Encoding_ENCODING_FLOAT32, ringv1.Encoding_ENCODING_BFLOAT16} {
		hdr := &ringv1.TransferRequest{Job: "j", Generation: 3, Sequence: 2, Encoding: enc}
		wire := marshalChunk(t, hdr, src)
		for cut1 := 1; cut1 < len(wire); cut1++ {
			for _, cut2 := range []int{cut1, min(cut1+3, len(wire)), len(wire)} {
				parts := mem.BufferSlice{mem.SliceBuffer(wire[:cut1]), mem.SliceBuffer(wire[cut1:cut2]), mem.SliceBuffer(wire[cut2:])}
				checkSplitChunk(t, parts, src, enc, fmt.Sprintf("%v cut %d/%d", enc, cut1, cut2))
			}
		}
	}
}

func checkSplitChunk(t *testing.T, parts mem.BufferSlice, src []float32, enc ringv1.Encoding, what string) {
	t.Helper()
	var m inChunk
	if err := (chunkCodec{}).Unmarshal(parts, &m); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if m.hdr.GetGeneration() != 3 || m.hdr.GetSequence() != 2 || m.hdr.GetJob() != "j" {
		t.Fatalf("%s: header %v", what, &m.hdr)
	}
	dst := make([]float32, len(src))
	for i := range dst {
		dst[i] = 1
	}
	applyRuns(dst, &m, enc, true)
	m.release()
	for i, v := range src {
		if dst[i] != v+1 {
			t.Fatalf("%s: value %d = %v, want %v", what, i, dst[i], v+1)
		}
	}
}

// FuzzChunkParse: arbitrary bytes from the network never panic the decoder,
// and whatever it accepts has a data field inside the message.
func FuzzChunkParse(f *testing.F) {
	f.Add(marshalChunk(f, &ringv1.TransferRequest{Job: "j", Sequence: 1, Encoding: ringv1.Encoding_ENCODING_FLOAT32}, []float32{1, 2}))
	f.Add([]byte{0x7a, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		var m inChunk
		if err := (chunkCodec{}).Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, &m); err != nil {
			return
		}
		defer m.release()
		if m.off < 0 || m.size < 0 || m.off+m.size > len(b) {
			t.Fatalf("data field [%d, +%d) outside %d bytes", m.off, m.size, len(b))
		}
	})
}

// TestPlanCoversEveryValue: for every member, the pieces of each segment
// tile the buffer exactly, and what each member sends on each lane is what
// its successor expects.
func TestPlanCoversEveryValue(t *testing.T) {
	for _, n := range []int{1, 2, 3, 5, 8} {
		for _, length := range []int{0, 1, 4, 7, 100, 1001} {
			for _, lanes := range []int{1, 3} {
				checkPlan(t, n, length, lanes)
			}
		}
	}
}

func checkPlan(t *testing.T, n, length, lanes int) {
	t.Helper()
	for rank := range n {
		p := plan{n: n, rank: rank, length: length, pieceElems: 3, lanes: lanes}
		covered := make([]int, length)
		for c := range n {
			for k := range p.pieces(c) {
				lo, hi := p.piece(c, k)
				for i := lo; i < hi; i++ {
					covered[i]++
				}
			}
		}
		for i, c := range covered {
			if c != 1 {
				t.Fatalf("n=%d length=%d: value %d covered %d times", n, length, i, c)
			}
		}
		next := plan{n: n, rank: (rank + 1) % n, length: length, pieceElems: 3, lanes: lanes}
		send, recv := p.sendPerLane(), next.recvPerLane()
		for l := range send {
			if n > 1 && send[l] != recv[l] {
				t.Fatalf("n=%d length=%d lanes=%d: rank %d sends %d on lane %d, successor expects %d",
					n, length, lanes, rank, send[l], l, recv[l])
			}
		}
	}
}
