package cluster

// plan is the layout of one collective on one member: the buffer of length
// values is cut into n segments (balanced, possibly empty) and each segment
// into pieces of at most pieceElems values. At ring step t (0..2(n-1)-1)
// member rank sends segment rank-t and receives segment rank-1-t (mod n);
// steps below n-1 reduce-scatter (the receiver adds), later ones all-gather
// (it copies). Piece k of a segment always travels on lane k mod lanes.
type plan struct {
	n, rank, length, pieceElems, lanes int
}

// Pipelining: a segment is cut into at least minPieces pieces (so the next
// member can forward the first while the rest arrive), but no piece is
// smaller than minPieceValues or larger than the configured chunk. Each
// piece costs a few goroutine hand-offs and system calls on every member,
// so below 256 KiB the pipelining is not worth it: at N=4 and 1 MiB, 256
// KiB pieces give busbw 1.25-1.38 GiB/s against 0.87-1.04 with 16 KiB
// pieces (direct lanes; in-stream 0.87-1.04 against 0.76-0.83), and from
// 4 MiB up nothing changes (DESIGN.md).
const (
	minPieces      = 4
	minPieceValues = 64 << 10
)

// newPlan lays out a collective of length values; every member computes
// the same layout from the same arguments.
func newPlan(n, rank, length, chunkElems, lanes int) plan {
	seg := (length + n - 1) / n
	piece := min(chunkElems, max(minPieceValues, (seg+minPieces-1)/minPieces))
	return plan{n: n, rank: rank, length: length, pieceElems: piece, lanes: lanes}
}

// steps is the number of ring steps.
func (p plan) steps() int { return 2 * (p.n - 1) }

// mod is the non-negative remainder of a/n.
func (p plan) mod(a int) int { return ((a % p.n) + p.n) % p.n }

// sendSeg is the segment sent at step t.
func (p plan) sendSeg(t int) int { return p.mod(p.rank - t) }

// recvSeg is the segment received at step t.
func (p plan) recvSeg(t int) int { return p.mod(p.rank - 1 - t) }

// segment is the value range [lo, hi) of segment c.
func (p plan) segment(c int) (lo, hi int) {
	return int(int64(c) * int64(p.length) / int64(p.n)),
		int(int64(c+1) * int64(p.length) / int64(p.n))
}

// pieces is the number of pieces of segment c.
func (p plan) pieces(c int) int {
	lo, hi := p.segment(c)
	return (hi - lo + p.pieceElems - 1) / p.pieceElems
}

// maxPieces is the largest number of pieces of any segment.
func (p plan) maxPieces() int {
	return (p.length/p.n + 1 + p.pieceElems - 1) / p.pieceElems
}

// piece is the value range [lo, hi) of piece k of segment c.
func (p plan) piece(c, k int) (lo, hi int) {
	slo, shi := p.segment(c)
	lo = slo + k*p.pieceElems
	return lo, min(lo+p.pieceElems, shi)
}

// lane is the lane of piece k.
func (p plan) lane(k int) int { return k % p.lanes }

// laneCount is the number of pieces among the first total that use lane l.
func (p plan) laneCount(total, l int) int {
	if total <= l {
		return 0
	}
	return (total-l-1)/p.lanes + 1
}

// recvPerLane is how many messages this member receives on each lane.
func (p plan) recvPerLane() []int {
	out := make([]int, p.lanes)
	for t := range p.steps() {
		k := p.pieces(p.recvSeg(t))
		for l := range out {
			out[l] += p.laneCount(k, l)
		}
	}
	return out
}

// sendPerLane is how many messages this member sends on each lane.
func (p plan) sendPerLane() []int {
	out := make([]int, p.lanes)
	for t := range p.steps() {
		k := p.pieces(p.sendSeg(t))
		for l := range out {
			out[l] += p.laneCount(k, l)
		}
	}
	return out
}
