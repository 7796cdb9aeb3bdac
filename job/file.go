package job

import (
	"fmt"
	"os"

	"sigs.k8s.io/yaml"
)

// PresetWithFile is the preset overlaid with the keys of a YAML or JSON
// file (Overlay: key by key; unknown keys and bad values are refused,
// naming the key); file "" is the preset alone (`whorl submit --job`).
func PresetWithFile(preset, file string) (Config, error) {
	base, err := Preset(preset)
	if err != nil || file == "" {
		return base, err
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		return Config{}, fmt.Errorf("read the job file: %w", err)
	}
	overlay, err := yaml.YAMLToJSON(raw)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", file, err)
	}
	c, err := Overlay(base, overlay)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", file, err)
	}
	return c, nil
}
