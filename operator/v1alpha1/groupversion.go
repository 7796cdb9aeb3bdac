package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// The API's group, version and names.
const (
	// Group is the API group of whorl's resources.
	Group = "whorl-ml.github.io"
	// Version is this package's API version.
	Version = "v1alpha1"
	// Kind is the WhorlJob's kind.
	Kind = "WhorlJob"
	// Plural is the resource name (kubectl get whorljobs).
	Plural = "whorljobs"
)

// GroupVersion is the group and version of the types here.
var GroupVersion = schema.GroupVersion{Group: Group, Version: Version}

// AddToScheme registers WhorlJob and WhorlJobList with a scheme.
func AddToScheme(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &WhorlJob{}, &WhorlJobList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
