package model

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

// safetensors builds a safetensors file of the header JSON and data bytes.
func safetensors(header string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	return append(append(b, header...), data...)
}

// foreignCheckpoints are safetensors files whorl did not write and cannot
// load: another model's tensors, none, and whorl metadata with a network
// of no blocks (each once panicked with a negative shift in Validate).
var foreignCheckpoints = map[string][]byte{
	"another model": safetensors(`{"encoder.weight":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"bias":{"dtype":"F32","shape":[2],"data_offsets":[16,24]}}`, make([]byte, 24)),
	"no tensors":    safetensors(`{}`, nil),
	"zero blocks":   safetensors(`{"__metadata__":{"whorl.config":"{\"arch\":\"small\",\"blocks\":0,\"width\":4,\"input_size\":4,\"classes\":2}"}}`, nil),
}

// TestForeignCheckpointNamed: a checkpoint of a network whorl does not know
// is an ErrCheckpoint error (not a panic) that lists what the file holds
// (tensor names, dtypes, shapes) and the networks whorl can load.
func TestForeignCheckpointNamed(t *testing.T) {
	for name, b := range foreignCheckpoints {
		t.Run(name, func(t *testing.T) {
			_, err := DecodeCheckpoint(b)
			if !errors.Is(err, ErrCheckpoint) {
				t.Fatalf("DecodeCheckpoint: %v, want ErrCheckpoint", err)
			}
			if name == "another model" {
				for _, want := range []string{"bias F32[2]", "encoder.weight F32[2 2]", "rotnet.py's small", "resnet18/34/50"} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error lacks %q: %v", want, err)
					}
				}
			}
		})
	}
}
