package model

// ForwardFLOPs is rotnet.py's fwd_flops: 2 x the multiply-adds of the convolutions and the
// linear layer for one 3 x InputSize x InputSize image. A training step costs about 3x this.
func (n *Net) ForwardFLOPs() int64 {
	S := n.cfg.InputSize
	sh := shape{N: 1, H: S, W: S, C: 3}
	var total int64
	for _, l := range n.body {
		sh = l.visit(sh, func(u *unit, in shape) {
			total += 2 * int64(u.conv.outShape(in).size()) * int64(u.conv.kdim())
		})
	}
	return total + 2*int64(n.head.classes)*int64(n.head.cin)
}

// Rotate90 writes into dst the image src (C x H x W, square, NCHW order) rotated by r quarter
// turns counter-clockwise, like torch.rot90(img, r, (1, 2)).
func Rotate90(dst, src []float32, c, size, r int) {
	hw := size * size
	for ch := range c {
		s, d := src[ch*hw:(ch+1)*hw], dst[ch*hw:(ch+1)*hw]
		for i := range size {
			for j := range size {
				var v float32
				switch r & 3 {
				case 0:
					v = s[i*size+j]
				case 1:
					v = s[j*size+size-1-i]
				case 2:
					v = s[(size-1-i)*size+size-1-j]
				default:
					v = s[(size-1-j)*size+i]
				}
				d[i*size+j] = v
			}
		}
	}
}
