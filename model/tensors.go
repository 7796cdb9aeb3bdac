package model

import "gorgonia.org/tensor"

// NamedTensor is one state_dict entry as a gorgonia float32 Dense that shares the network's
// buffer (writes through it change the network). num_batches_tracked is a 1-element vector.
type NamedTensor struct {
	Name  string
	Dense *tensor.Dense
	State bool // a BatchNorm running statistic rather than a trainable parameter
}

// Tensors returns every state_dict entry, in rotnet.py's order, as Dense views of Params() and
// State(). The views stay valid until ReplaceHead.
func (n *Net) Tensors() []NamedTensor {
	out := make([]NamedTensor, len(n.specs))
	for i, t := range n.specs {
		shp := t.Shape
		if len(shp) == 0 {
			shp = []int{1}
		}
		back := n.bufferOf(t)[t.Off : t.Off+t.Size : t.Off+t.Size]
		out[i] = NamedTensor{Name: t.Name, State: t.State,
			Dense: tensor.New(tensor.WithShape(shp...), tensor.WithBacking(back))}
	}
	return out
}

// GradTensors returns the gradients of the trainable parameters as Dense views of Grads(),
// named like their parameters.
func (n *Net) GradTensors() []NamedTensor {
	var out []NamedTensor
	for _, t := range n.specs {
		if t.State {
			continue
		}
		back := n.grads[t.Off : t.Off+t.Size : t.Off+t.Size]
		out = append(out, NamedTensor{Name: t.Name, Dense: tensor.New(tensor.WithShape(t.Shape...), tensor.WithBacking(back))})
	}
	return out
}
