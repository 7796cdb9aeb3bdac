package model

import "fmt"

// Footprint is what a network occupies in training, counted without building its buffers.
type Footprint struct {
	// Params and State are the parameter and BatchNorm-state floats (NumParams, len(State)).
	Params, State int
	// Workspace is WorkspaceBytes at the batch asked for.
	Workspace int64
	// FeatureDims is FeatureDims: each block's pooled features.
	FeatureDims []int
}

// MeasureFootprint validates cfg and counts its network's memory at batch images per step
// without allocating the parameters, the workspace or the reordered weights (a ResNet-50's
// count costs microseconds, its allocation a few hundred megabytes).
func MeasureFootprint(cfg Config, batch int) (Footprint, error) {
	if err := cfg.Validate(); err != nil {
		return Footprint{}, fmt.Errorf("measure network: %w", err)
	}
	if batch < 1 {
		return Footprint{}, fmt.Errorf("measure network: batch %d, want >= 1", batch)
	}
	specs := buildSpecs(cfg)
	n := &Net{cfg: cfg}
	for _, s := range specs {
		l := newLayer(s)
		n.body = append(n.body, l)
		n.units = append(n.units, l.unitList()...)
	}
	_, np, ns := layoutSpecs(unitsOf(specs), headName(cfg), cfg.Width, cfg.Classes)
	return Footprint{Params: np, State: ns, Workspace: n.WorkspaceBytes(batch), FeatureDims: n.FeatureDims()}, nil
}
