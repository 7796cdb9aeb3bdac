package k8s

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// object is one rendered manifest: its strictly decoded typed form and the
// JSON it came from.
type object struct {
	kind, name string
	obj        runtime.Object
	raw        []byte
}

// overlays lists the overlay directories under overlays/.
func overlays(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir("overlays")
	if err != nil {
		t.Fatalf("list overlays: %v", err)
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	if len(out) == 0 {
		t.Fatal("no overlays under k8s/overlays")
	}
	return out
}

// render runs kustomize (krusty, what `kubectl kustomize` runs) on dir and
// returns every object as JSON.
func render(dir string) ([][]byte, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	var out [][]byte
	for _, r := range m.Resources() {
		b, err := r.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("kustomize build %s: encode %s: %w", dir, r.CurId(), err)
		}
		out = append(out, b)
	}
	return out, nil
}

// strictDecoder decodes with client-go's scheme and fails on unknown or
// duplicate fields; wrong types fail in any mode.
var strictDecoder = serializer.NewCodecFactory(manifestScheme(), serializer.EnableStrict).UniversalDeserializer()

// manifestScheme is client-go's scheme with the CRD kind (the WhorlJob's
// CustomResourceDefinition is part of the base).
func manifestScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := scheme.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := apiextensionsv1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}

// decodeStrict decodes one object strictly.
func decodeStrict(raw []byte) (object, error) {
	obj, gvk, err := strictDecoder.Decode(raw, nil, nil)
	if err != nil {
		var meta struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		_ = json.Unmarshal(raw, &meta)
		return object{}, fmt.Errorf("decode %s %q: %w", meta.Kind, meta.Metadata.Name, err)
	}
	name := ""
	if m, ok := obj.(interface{ GetName() string }); ok {
		name = m.GetName()
	}
	return object{kind: gvk.Kind, name: name, obj: obj, raw: raw}, nil
}

// renderOverlay renders overlays/name and decodes every object strictly.
func renderOverlay(t *testing.T, name string) []object {
	t.Helper()
	raws, err := render(filepath.Join("overlays", name))
	if err != nil {
		t.Fatal(err)
	}
	var out []object
	for _, raw := range raws {
		o, err := decodeStrict(raw)
		if err != nil {
			t.Errorf("overlay %s: %v", name, err)
			continue
		}
		out = append(out, o)
	}
	return out
}

// find returns the object of kind and name, failing the test when absent.
func find[T runtime.Object](t *testing.T, objs []object, kind, name string) T {
	t.Helper()
	for _, o := range objs {
		if o.kind == kind && o.name == name {
			v, ok := o.obj.(T)
			if !ok {
				t.Fatalf("%s %s decoded as %T", kind, name, o.obj)
			}
			return v
		}
	}
	var zero T
	t.Fatalf("rendered manifests lack %s %s", kind, name)
	return zero
}
