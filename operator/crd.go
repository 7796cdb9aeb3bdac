package operator

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/whorl-ml/whorl/job"
	"github.com/whorl-ml/whorl/operator/v1alpha1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Docs maps a Go struct field, "package.Type.Field" (v1alpha1.WhorlJobSpec.Preset,
// job.PretrainConfig.Epochs), to its doc comment: the CRD's descriptions,
// which `kubectl explain` shows. The CRD test reads them from the source.
type Docs map[string]string

// Defaults of the WhorlJob spec: the Service and Deployment names of
// k8s/base, the coordinators' gRPC port, one to two workers.
const (
	DefaultCoordinatorService = "whorl-coordinator"
	DefaultCoordinatorPort    = 7401
	DefaultWorkerDeployment   = "whorl-worker"
	DefaultMinWorkers         = 1
	DefaultMaxWorkers         = 2
)

// ResultsURLPattern is the form of spec.results.url the API accepts: an
// s3:// or gs:// bucket with an optional prefix and parameters, or an
// absolute file:// folder.
const ResultsURLPattern = `^((s3|gs)://[a-z0-9][a-z0-9._-]*(/[^?#]*)?(\?[^#]*)?|file:///[^?#]*)$`

// bounds are the schema's constraints beyond the Go types, by JSON path
// below the WhorlJob; the controller checks the job's keys again with
// job.Validate, which names the bound of every key.
var bounds = map[string]func(*apiextensionsv1.JSONSchemaProps){
	"spec": defaultEmpty,
	"spec.preset": func(s *apiextensionsv1.JSONSchemaProps) {
		s.Enum = enum(job.Presets()...)
		s.Default = jsonValue(job.PresetQuick)
	},
	"spec.coordinator": defaultEmpty,
	"spec.coordinator.service": func(s *apiextensionsv1.JSONSchemaProps) {
		s.Default = jsonValue(DefaultCoordinatorService)
		s.MinLength = ptr[int64](1)
	},
	"spec.coordinator.port": func(s *apiextensionsv1.JSONSchemaProps) {
		s.Default = jsonValue(DefaultCoordinatorPort)
		s.Minimum, s.Maximum = ptr[float64](1), ptr[float64](65535)
	},
	"spec.workers": func(s *apiextensionsv1.JSONSchemaProps) {
		// A default is not defaulted itself: it carries the fields the rule reads.
		s.Default = jsonValue(map[string]any{"deployment": DefaultWorkerDeployment, "min": DefaultMinWorkers, "max": DefaultMaxWorkers})
		s.XValidations = apiextensionsv1.ValidationRules{{
			Rule: "self.max >= self.min", Message: "workers.max must be at least workers.min",
		}}
	},
	"spec.workers.deployment": func(s *apiextensionsv1.JSONSchemaProps) {
		s.Default = jsonValue(DefaultWorkerDeployment)
		s.MinLength = ptr[int64](1)
	},
	"spec.workers.min": func(s *apiextensionsv1.JSONSchemaProps) {
		s.Default = jsonValue(DefaultMinWorkers)
		s.Minimum, s.Maximum = ptr[float64](0), ptr[float64](1024)
	},
	"spec.workers.max": func(s *apiextensionsv1.JSONSchemaProps) {
		s.Default = jsonValue(DefaultMaxWorkers)
		s.Minimum, s.Maximum = ptr[float64](1), ptr[float64](1024)
	},
	"spec.ttlSecondsAfterFinished": func(s *apiextensionsv1.JSONSchemaProps) { s.Minimum = ptr[float64](0) },
	"spec.results":                 func(s *apiextensionsv1.JSONSchemaProps) { s.Required = []string{"url"} },
	"spec.results.url": func(s *apiextensionsv1.JSONSchemaProps) {
		s.Pattern = ResultsURLPattern
	},
	"spec.job": func(s *apiextensionsv1.JSONSchemaProps) {
		s.Description = "Job holds the keys of the experiment configuration laid over the preset, as in report.json's \"config\" and whorl submit --job: a key left out keeps the preset's value. The operator validates the result with the coordinator's own rules (job.Validate) and names the key it refuses."
	},
	"status.conditions": func(s *apiextensionsv1.JSONSchemaProps) {
		s.XListType = ptr("map")
		s.XListMapKeys = []string{"type"}
	},
}

// printerColumns are `kubectl get whorljobs`' columns; priority 1 shows
// with -o wide.
var printerColumns = []apiextensionsv1.CustomResourceColumnDefinition{
	{Name: "Phase", Type: "string", JSONPath: ".status.phase"},
	{Name: "Epoch", Type: "string", JSONPath: ".status.epochProgress"},
	{Name: "Progress", Type: "string", JSONPath: ".status.progress"},
	{Name: "ETA", Type: "string", JSONPath: ".status.remaining"},
	{Name: "Workers", Type: "integer", JSONPath: ".status.workers"},
	{Name: "Gain", Type: "string", JSONPath: ".status.result.gain"},
	{Name: "Age", Type: "date", JSONPath: ".metadata.creationTimestamp"},
	{Name: "Job", Type: "string", JSONPath: ".status.jobID", Priority: 1},
	{Name: "Generation", Type: "integer", JSONPath: ".status.generation", Priority: 1},
	{Name: "Leader", Type: "string", JSONPath: ".status.leader", Priority: 1},
	{Name: "Baseline", Type: "string", JSONPath: ".status.result.baseline", Priority: 1},
	{Name: "Fine-tuned", Type: "string", JSONPath: ".status.result.fineTuned", Priority: 1},
	{Name: "Message", Type: "string", JSONPath: ".status.message", Priority: 1},
}

// CRD returns the WhorlJob CustomResourceDefinition: its schema is the Go
// types of package v1alpha1, with spec.job the schema of job.Config (every
// key optional, unknown keys pruned and refused by strict clients), the
// descriptions from docs.
func CRD(docs Docs) *apiextensionsv1.CustomResourceDefinition {
	g := schemaGen{docs: docs}
	root := apiextensionsv1.JSONSchemaProps{
		Type:        "object",
		Description: docs["v1alpha1.WhorlJob"],
		Properties: map[string]apiextensionsv1.JSONSchemaProps{
			"apiVersion": {Type: "string", Description: "APIVersion is the versioned schema of this object."},
			"kind":       {Type: "string", Description: "Kind is the REST resource this object represents."},
			"metadata":   {Type: "object"},
			"spec":       g.field("spec", reflect.TypeFor[v1alpha1.WhorlJobSpec](), docs["v1alpha1.WhorlJob.Spec"]),
			"status":     g.field("status", reflect.TypeFor[v1alpha1.WhorlJobStatus](), docs["v1alpha1.WhorlJob.Status"]),
		},
	}
	return &apiextensionsv1.CustomResourceDefinition{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apiextensions.k8s.io/v1", Kind: "CustomResourceDefinition"},
		ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.Plural + "." + v1alpha1.Group},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: v1alpha1.Group,
			Names: apiextensionsv1.CustomResourceDefinitionNames{
				Plural: v1alpha1.Plural, Singular: "whorljob", Kind: v1alpha1.Kind, ListKind: v1alpha1.Kind + "List",
				ShortNames: []string{"wj"}, Categories: []string{"whorl"},
			},
			Scope: apiextensionsv1.NamespaceScoped,
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: v1alpha1.Version, Served: true, Storage: true,
				Schema:                   &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &root},
				Subresources:             &apiextensionsv1.CustomResourceSubresources{Status: &apiextensionsv1.CustomResourceSubresourceStatus{}},
				AdditionalPrinterColumns: printerColumns,
			}},
		},
	}
}

// schemaGen turns Go types into structural OpenAPI schemas.
type schemaGen struct{ docs Docs }

var (
	timeType      = reflect.TypeFor[metav1.Time]()
	conditionType = reflect.TypeFor[metav1.Condition]()
	rawJSONType   = reflect.TypeFor[apiextensionsv1.JSON]()
	durationType  = reflect.TypeFor[time.Duration]()
)

// field is the schema of a value of type t at path, with its description.
func (g schemaGen) field(path string, t reflect.Type, desc string) apiextensionsv1.JSONSchemaProps {
	s := g.schema(path, t)
	if desc != "" {
		s.Description = desc
	}
	if f, ok := bounds[path]; ok {
		f(&s)
	}
	return s
}

// schema is the schema of type t at path.
func (g schemaGen) schema(path string, t reflect.Type) apiextensionsv1.JSONSchemaProps {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t {
	case timeType:
		return apiextensionsv1.JSONSchemaProps{Type: "string", Format: "date-time"}
	case conditionType:
		return conditionSchema()
	case rawJSONType: // spec.job: the experiment configuration's keys
		return g.object(path, reflect.TypeFor[job.Config]())
	case durationType:
		panic(fmt.Sprintf("crd: %s is a time.Duration: give it a JSON form first", path))
	}
	switch t.Kind() {
	case reflect.String:
		return apiextensionsv1.JSONSchemaProps{Type: "string"}
	case reflect.Bool:
		return apiextensionsv1.JSONSchemaProps{Type: "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		s := apiextensionsv1.JSONSchemaProps{Type: "integer"}
		if t.Kind() == reflect.Int32 {
			s.Format = "int32"
		} else {
			s.Format = "int64"
		}
		if t.Kind() >= reflect.Uint {
			s.Minimum = ptr[float64](0)
		}
		return s
	case reflect.Float32, reflect.Float64:
		return apiextensionsv1.JSONSchemaProps{Type: "number"}
	case reflect.Slice, reflect.Array:
		items := g.schema(path+"[]", t.Elem())
		return apiextensionsv1.JSONSchemaProps{Type: "array", Items: &apiextensionsv1.JSONSchemaPropsOrArray{Schema: &items}}
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			panic(fmt.Sprintf("crd: %s: a map whose keys are not strings", path))
		}
		v := g.schema(path+"{}", t.Elem())
		return apiextensionsv1.JSONSchemaProps{Type: "object", AdditionalProperties: &apiextensionsv1.JSONSchemaPropsOrBool{Allows: true, Schema: &v}}
	case reflect.Struct:
		return g.object(path, t)
	}
	panic(fmt.Sprintf("crd: %s: no schema for Go type %s", path, t))
}

// object is the schema of a struct: one property per JSON field, none
// required (a WhorlJob's author gives the keys that differ from the
// preset; the controller and the defaults fill the rest).
func (g schemaGen) object(path string, t reflect.Type) apiextensionsv1.JSONSchemaProps {
	s := apiextensionsv1.JSONSchemaProps{Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{}}
	for i := range t.NumField() {
		f := t.Field(i)
		name, skip := jsonName(f)
		if skip {
			continue
		}
		key := pkgName(t) + "." + t.Name() + "." + f.Name
		s.Properties[name] = g.field(path+"."+name, f.Type, g.docs[key])
	}
	return s
}

// jsonName is the JSON key of a struct field, and whether encoding/json
// leaves it out.
func jsonName(f reflect.StructField) (string, bool) {
	if !f.IsExported() {
		return "", true
	}
	tag := f.Tag.Get("json")
	if tag == "-" {
		return "", true
	}
	name, _, _ := strings.Cut(tag, ",")
	if name == "" {
		name = f.Name
	}
	return name, false
}

// pkgName is the last element of a type's package path (job, v1alpha1).
func pkgName(t reflect.Type) string {
	p := t.PkgPath()
	return p[strings.LastIndex(p, "/")+1:]
}

// conditionSchema is metav1.Condition's schema, as controller-gen writes it.
func conditionSchema() apiextensionsv1.JSONSchemaProps {
	str := func(desc string) apiextensionsv1.JSONSchemaProps {
		return apiextensionsv1.JSONSchemaProps{Type: "string", Description: desc}
	}
	status := str("status of the condition, one of True, False, Unknown.")
	status.Enum = enum("True", "False", "Unknown")
	return apiextensionsv1.JSONSchemaProps{
		Type:        "object",
		Description: "Condition contains details for one aspect of the current state of this API Resource.",
		Required:    []string{"lastTransitionTime", "message", "reason", "status", "type"},
		Properties: map[string]apiextensionsv1.JSONSchemaProps{
			"type":               str("type of condition in CamelCase."),
			"status":             status,
			"observedGeneration": {Type: "integer", Format: "int64", Minimum: ptr[float64](0), Description: "the .metadata.generation that the condition was set based upon."},
			"lastTransitionTime": {Type: "string", Format: "date-time", Description: "the last time the condition transitioned from one status to another."},
			"reason":             str("a programmatic identifier indicating the reason for the condition's last transition."),
			"message":            str("a human readable message indicating details about the transition."),
		},
	}
}

// defaultEmpty defaults an object to {}, so the defaults of its fields
// apply when it is left out.
func defaultEmpty(s *apiextensionsv1.JSONSchemaProps) { s.Default = jsonValue(map[string]any{}) }

// enum is a schema enum of strings.
func enum(vs ...string) []apiextensionsv1.JSON {
	out := make([]apiextensionsv1.JSON, len(vs))
	for i, v := range vs {
		out[i] = *jsonValue(v)
	}
	return out
}

// jsonValue is v as a schema's JSON value.
func jsonValue(v any) *apiextensionsv1.JSON {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("crd: encode %v: %v", v, err))
	}
	return &apiextensionsv1.JSON{Raw: b}
}

func ptr[T any](v T) *T { return &v }
