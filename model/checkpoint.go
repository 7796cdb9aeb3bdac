package model

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"sort"
	"strings"

	"github.com/whorl-ml/whorl/internal/atomicfile"
)

// Metadata keys the engine writes into a checkpoint's safetensors __metadata__.
const (
	MetaFormat         = "whorl.format"
	MetaConfig         = "whorl.config"
	MetaOptimizer      = "whorl.optimizer"
	MetaOptimizerState = "whorl.optimizer_state"
	// The data keys (normaliser, class names) and the pretraining position
	// are package job's.
	formatVersion = "whorl-checkpoint-v1"
	// maxHeader is safetensors' own bound on the JSON header (the Rust
	// reader refuses more than 100 MB), so tensors never go in the header.
	maxHeader = 100 << 20
)

// TensorOptimizerState names the tensor (F32, one dimension) that holds the optimizer state of
// a checkpoint written with one: in the data, not the header, where ResNet-50's SGD state or
// ResNet-18's Adam state would pass safetensors' 100 MB header bound. Checkpoints without an
// optimizer (the ones meant for PyTorch) have only the state_dict's tensors. Older checkpoints
// kept the state base64-encoded under MetaOptimizerState; both are read.
const TensorOptimizerState = "whorl.optimizer_state"

// Checkpoint is a decoded checkpoint: the network, the metadata (without the optimizer state
// blob) and the optimizer kind ("sgd", "adam" or "") and state.
type Checkpoint struct {
	Net            *Net
	Meta           map[string]string
	Optimizer      string
	OptimizerState []float32
}

// stEntry is one tensor of a safetensors header.
type stEntry struct {
	Dtype       string   `json:"dtype"`
	Shape       []int    `json:"shape"`
	DataOffsets [2]int64 `json:"data_offsets"`
}

// EncodeCheckpoint serialises n (parameters and BatchNorm state under rotnet.py's state_dict
// names, F32, num_batches_tracked as I64 scalars) as safetensors. The metadata holds meta, the
// network Config and, when opt is not nil, the optimizer kind and state.
func EncodeCheckpoint(n *Net, opt Optimizer, meta map[string]string) ([]byte, error) {
	md := make(map[string]string, len(meta)+4)
	for k, v := range meta {
		md[k] = v
	}
	cfg, err := json.Marshal(n.cfg)
	if err != nil {
		return nil, fmt.Errorf("encode checkpoint config: %w", err)
	}
	md[MetaFormat], md[MetaConfig] = formatVersion, string(cfg)
	header := map[string]any{"__metadata__": md}
	var data bytes.Buffer
	for _, t := range n.specs {
		lo := int64(data.Len())
		e := stEntry{Dtype: "F32", Shape: t.Shape}
		if t.Count {
			e.Dtype = "I64"
			_ = binary.Write(&data, binary.LittleEndian, int64(n.state[t.Off]))
		} else {
			data.Write(f32Bytes(n.bufferOf(t)[t.Off : t.Off+t.Size]))
		}
		e.DataOffsets = [2]int64{lo, int64(data.Len())}
		header[t.Name] = e
	}
	if opt != nil {
		md[MetaOptimizer] = optimizerKind(opt)
		st, lo := opt.State(), int64(data.Len())
		data.Write(f32Bytes(st))
		header[TensorOptimizerState] = stEntry{Dtype: "F32", Shape: []int{len(st)}, DataOffsets: [2]int64{lo, int64(data.Len())}}
	}
	h, err := json.Marshal(header)
	if err != nil {
		return nil, fmt.Errorf("encode checkpoint header: %w", err)
	}
	for len(h)%8 != 0 {
		h = append(h, ' ')
	}
	out := make([]byte, 8, 8+len(h)+data.Len())
	binary.LittleEndian.PutUint64(out, uint64(len(h)))
	return append(append(out, h...), data.Bytes()...), nil
}

// bufferOf returns the buffer a spec lives in.
func (n *Net) bufferOf(t tensorSpec) []float32 {
	if t.State {
		return n.state
	}
	return n.params
}

// optimizerKind names an optimizer for the checkpoint metadata.
func optimizerKind(o Optimizer) string {
	switch o.(type) {
	case *SGD:
		return "sgd"
	case *Adam:
		return "adam"
	}
	return fmt.Sprintf("%T", o)
}

// f32Bytes is the little-endian encoding of s.
func f32Bytes(s []float32) []byte {
	b := make([]byte, 4*len(s))
	for i, v := range s {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return b
}

// SaveCheckpoint writes EncodeCheckpoint's bytes to path atomically (internal/atomicfile: a
// synced temporary file renamed over path, then the directory synced).
func SaveCheckpoint(path string, n *Net, opt Optimizer, meta map[string]string) error {
	b, err := EncodeCheckpoint(n, opt, meta)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(path, b, 0o644); err != nil {
		return fmt.Errorf("save checkpoint: %w", err)
	}
	return nil
}

// LoadCheckpoint reads a checkpoint file and returns the network and its metadata. Use
// ReadCheckpoint to restore the optimizer too.
func LoadCheckpoint(path string) (*Net, map[string]string, error) {
	c, err := ReadCheckpoint(path)
	if err != nil {
		return nil, nil, err
	}
	return c.Net, c.Meta, nil
}

// ReadCheckpoint reads and decodes a checkpoint file.
func ReadCheckpoint(path string) (*Checkpoint, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load checkpoint: %w", err)
	}
	c, err := DecodeCheckpoint(b)
	if err != nil {
		return nil, fmt.Errorf("load checkpoint %s: %w", path, err)
	}
	return c, nil
}

// RestoreOptimizer loads the checkpoint's optimizer state into opt, which must be of the same
// kind (an *SGD or *Adam) as the one saved.
func (c *Checkpoint) RestoreOptimizer(opt Optimizer) error {
	if c.Optimizer == "" {
		return fmt.Errorf("%w: restore optimizer: the checkpoint has no optimizer state", ErrCheckpoint)
	}
	if k := optimizerKind(opt); k != c.Optimizer {
		return fmt.Errorf("%w: restore optimizer: checkpoint holds %q state, optimizer is %q", ErrCheckpoint, c.Optimizer, k)
	}
	type setter interface {
		SetState(s []float32, n int) error
	}
	s, ok := opt.(setter)
	if !ok {
		return fmt.Errorf("%w: restore optimizer: %T cannot restore state", ErrCheckpoint, opt)
	}
	return s.SetState(c.OptimizerState, c.Net.NumParams())
}

// DecodeCheckpoint parses safetensors bytes written by EncodeCheckpoint, or a PyTorch state_dict
// of a rotnet.py network saved as safetensors (the config is then inferred from the tensors,
// with input size 32). Truncated, corrupt or mismatching input yields an ErrCheckpoint error.
func DecodeCheckpoint(b []byte) (*Checkpoint, error) {
	entries, md, data, err := parseSafetensors(b)
	if err != nil {
		return nil, err
	}
	cfg, err := checkpointConfig(md, entries)
	if err != nil {
		return nil, err
	}
	_, np, ns := layoutSpecs(unitsOf(buildSpecs(cfg)), headName(cfg), cfg.Width, cfg.Classes)
	if int64(np+ns)*4 > int64(len(data))+1024 {
		return nil, fmt.Errorf("%w: %d data bytes cannot hold the %d values of %s", ErrCheckpoint, len(data), np+ns, cfg.Arch)
	}
	c := &Checkpoint{Meta: md, Optimizer: md[MetaOptimizer]}
	if c.OptimizerState, err = optimizerState(entries, md, data); err != nil {
		return nil, err
	}
	c.Net = build(cfg)
	if err := c.Net.fill(entries, data); err != nil {
		return nil, err
	}
	return c, nil
}

// optimizerState takes the optimizer state out of entries (the TensorOptimizerState tensor) or,
// in an older checkpoint, out of the metadata; nil when the checkpoint has none.
func optimizerState(entries map[string]stEntry, md map[string]string, data []byte) ([]float32, error) {
	if e, ok := entries[TensorOptimizerState]; ok {
		delete(entries, TensorOptimizerState)
		if e.Dtype != "F32" || len(e.Shape) != 1 {
			return nil, fmt.Errorf("%w: tensor %q is %s%v, want one F32 dimension", ErrCheckpoint, TensorOptimizerState, e.Dtype, e.Shape)
		}
		raw := data[e.DataOffsets[0]:e.DataOffsets[1]]
		out := make([]float32, len(raw)/4)
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
		return out, nil
	}
	s, ok := md[MetaOptimizerState]
	if !ok {
		return nil, nil
	}
	delete(md, MetaOptimizerState)
	return decodeF32(s)
}

// parseSafetensors splits and validates the header, returning entries, metadata and data.
func parseSafetensors(b []byte) (map[string]stEntry, map[string]string, []byte, error) {
	if len(b) < 8 {
		return nil, nil, nil, fmt.Errorf("%w: %d bytes is shorter than the 8-byte safetensors prefix", ErrCheckpoint, len(b))
	}
	hl := binary.LittleEndian.Uint64(b)
	if hl > maxHeader || hl > uint64(len(b)-8) {
		return nil, nil, nil, fmt.Errorf("%w: header length %d exceeds the file (%d bytes) or %d", ErrCheckpoint, hl, len(b), maxHeader)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b[8:8+hl], &raw); err != nil {
		return nil, nil, nil, fmt.Errorf("%w: header is not a JSON object: %v", ErrCheckpoint, err)
	}
	data := b[8+hl:]
	md := map[string]string{}
	entries := make(map[string]stEntry, len(raw))
	for name, v := range raw {
		if name == "__metadata__" {
			if err := json.Unmarshal(v, &md); err != nil {
				return nil, nil, nil, fmt.Errorf("%w: __metadata__ is not a string map: %v", ErrCheckpoint, err)
			}
			continue
		}
		var e stEntry
		if err := json.Unmarshal(v, &e); err != nil {
			return nil, nil, nil, fmt.Errorf("%w: tensor %q: bad header entry: %v", ErrCheckpoint, name, err)
		}
		if err := e.check(name, len(data)); err != nil {
			return nil, nil, nil, err
		}
		entries[name] = e
	}
	return entries, md, data, nil
}

// check validates one header entry against the data length.
func (e stEntry) check(name string, dataLen int) error {
	size := map[string]int64{"F32": 4, "I64": 8}[e.Dtype]
	if size == 0 {
		return fmt.Errorf("%w: tensor %q: dtype %q, want F32 (or I64 for num_batches_tracked)", ErrCheckpoint, name, e.Dtype)
	}
	count := int64(1)
	for _, d := range e.Shape {
		if d < 0 || int64(d) > 1<<31 || count*int64(d) > 1<<40 {
			return fmt.Errorf("%w: tensor %q: bad shape %v", ErrCheckpoint, name, e.Shape)
		}
		count *= int64(d)
	}
	lo, hi := e.DataOffsets[0], e.DataOffsets[1]
	if lo < 0 || hi < lo || hi > int64(dataLen) || hi-lo != count*size {
		return fmt.Errorf("%w: tensor %q: data offsets [%d, %d] do not fit shape %v of %s in %d data bytes",
			ErrCheckpoint, name, lo, hi, e.Shape, e.Dtype, dataLen)
	}
	return nil
}

// checkpointConfig reads the Config from the metadata, or infers it from the tensor shapes.
func checkpointConfig(md map[string]string, entries map[string]stEntry) (Config, error) {
	var cfg Config
	if s, ok := md[MetaConfig]; ok {
		if err := json.Unmarshal([]byte(s), &cfg); err != nil {
			return cfg, fmt.Errorf("%w: metadata %s: %v", ErrCheckpoint, MetaConfig, err)
		}
		if err := cfg.Validate(); err != nil {
			return cfg, fmt.Errorf("%w: network configuration: %w", ErrCheckpoint, err)
		}
		return cfg, nil
	}
	cfg = inferConfig(entries)
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("%w: not a network whorl can load (%s) without whorl's %s metadata: it holds %s; the network it looks like: %w",
			ErrCheckpoint, loadableNetworks, MetaConfig, describeTensors(entries, 6), err)
	}
	return cfg, nil
}

// loadableNetworks names the state_dicts whorl infers a network from.
const loadableNetworks = "rotnet.py's small, nin3 and nin4 (features.N.*, classifier.*), torchvision's resnet18/34/50 (conv1, layer1-4, fc)"

// describeTensors lists up to max tensors of a checkpoint (name dtype[shape], sorted by name)
// and how many there are, for an error about a file whorl does not recognise.
func describeTensors(entries map[string]stEntry, max int) string {
	names := make([]string, 0, len(entries))
	for name := range entries {
		names = append(names, name)
	}
	if len(names) == 0 {
		return "no tensors"
	}
	sort.Strings(names)
	parts := make([]string, 0, max+1)
	for _, name := range names[:min(max, len(names))] {
		e := entries[name]
		parts = append(parts, fmt.Sprintf("%s %s%v", name, e.Dtype, e.Shape))
	}
	if len(names) > max {
		parts = append(parts, fmt.Sprintf("... (%d tensors)", len(names)))
	}
	return strings.Join(parts, ", ")
}

// inferConfig guesses the Config of a foreign (PyTorch-written) state_dict: an "fc" head means
// a torchvision ResNet; otherwise a 5x5 first conv means nin, 3x3 small; blocks are counted from
// the names; input size is taken as 32 (224 for an ImageNet-stem ResNet).
func inferConfig(entries map[string]stEntry) Config {
	if _, ok := entries["fc.weight"]; ok {
		return inferResNet(entries)
	}
	blocks := 0
	for name := range entries {
		var b int
		if _, err := fmt.Sscanf(name, "features.%d.", &b); err == nil && strings.HasPrefix(name, "features.") {
			blocks = max(blocks, b+1)
		}
	}
	cfg := Config{Blocks: blocks, InputSize: 32}
	first := entries["features.0.layers.0.conv.weight"].Shape
	if cls := entries["classifier.weight"].Shape; len(cls) == 2 {
		cfg.Classes, cfg.Width = cls[0], cls[1]
	}
	switch {
	case len(first) == 4 && first[2] == 5:
		cfg.Arch = ArchNIN4
		if blocks == 3 {
			cfg.Arch = ArchNIN3
		}
	case len(first) == 4 && first[2] == 3:
		cfg.Arch = ArchSmall
	}
	return cfg
}

// inferResNet guesses a torchvision ResNet's Config: depth from layer3's block count and
// Bottleneck's conv3, stem from conv1's kernel.
func inferResNet(entries map[string]stEntry) Config {
	cfg := Config{Blocks: ResNetBlocks, InputSize: 224, Stem: StemImageNet}
	if cls := entries["fc.weight"].Shape; len(cls) == 2 {
		cfg.Classes, cfg.Width = cls[0], cls[1]
	}
	if c1 := entries["conv1.weight"].Shape; len(c1) == 4 && c1[2] == 3 {
		cfg.Stem, cfg.InputSize = StemSmall, 32
	}
	_, bottleneck := entries["layer1.0.conv3.weight"]
	_, deep := entries["layer3.2.conv1.weight"]
	switch {
	case bottleneck:
		cfg.Arch = ArchResNet50
	case deep:
		cfg.Arch = ArchResNet34
	default:
		cfg.Arch = ArchResNet18
	}
	return cfg
}

// fill copies every expected tensor from data, checking names and shapes both ways.
func (n *Net) fill(entries map[string]stEntry, data []byte) error {
	if len(entries) != len(n.specs) {
		return fmt.Errorf("%w: %d tensors, want %d for %s", ErrCheckpoint, len(entries), len(n.specs), n.cfg.Arch)
	}
	for _, t := range n.specs {
		e, ok := entries[t.Name]
		if !ok {
			return fmt.Errorf("%w: missing tensor %q (%s)", ErrCheckpoint, t.Name, missingHint(entries))
		}
		if fmt.Sprint(e.Shape) != fmt.Sprint(t.Shape) || (e.Dtype == "I64") != t.Count {
			return fmt.Errorf("%w: tensor %q is %s%v, want %s%v", ErrCheckpoint, t.Name, e.Dtype, e.Shape, dtypeOf(t), t.Shape)
		}
		raw := data[e.DataOffsets[0]:e.DataOffsets[1]]
		dst := n.bufferOf(t)[t.Off : t.Off+t.Size]
		if t.Count {
			dst[0] = float32(int64(binary.LittleEndian.Uint64(raw)))
			continue
		}
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
	}
	return nil
}

// dtypeOf is the safetensors dtype of a spec.
func dtypeOf(t tensorSpec) string {
	if t.Count {
		return "I64"
	}
	return "F32"
}

// missingHint lists a few names present, to help spot a foreign file.
func missingHint(entries map[string]stEntry) string {
	names := make([]string, 0, len(entries))
	for k := range entries {
		names = append(names, k)
	}
	sort.Strings(names)
	if len(names) > 3 {
		names = append(names[:3], "...")
	}
	return "file has " + strings.Join(names, ", ")
}

// decodeF32 decodes a base64 little-endian float32 blob.
func decodeF32(s string) ([]float32, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b)%4 != 0 {
		return nil, fmt.Errorf("%w: metadata %s is not base64 float32 data", ErrCheckpoint, MetaOptimizerState)
	}
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out, nil
}
