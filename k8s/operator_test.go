package k8s

import (
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// operatorRules are the only permissions of the deployment: the operator's
// Role, verb for verb (a widened Role fails here).
var operatorRules = map[string][]string{
	"whorl-ml.github.io/whorljobs":            {"get", "list", "watch", "update", "patch", "delete"},
	"whorl-ml.github.io/whorljobs/status":     {"get", "update", "patch"},
	"whorl-ml.github.io/whorljobs/finalizers": {"get", "update", "patch"},
	"apps/deployments":                        {"get", "list", "watch", "patch"},
	"events.k8s.io/events":                    {"create", "patch"},
	"/events":                                 {"create", "patch"},
	"coordination.k8s.io/leases":              {"get", "list", "watch", "create", "update", "patch"},
}

// TestOperator checks in every overlay: the WhorlJob CRD and the operator
// Deployment are there; the operator's Role (exactly operatorRules, in its
// namespace) bound to its ServiceAccount is the only RBAC; only its pod
// mounts a service-account token; its pod is hardened like the others, has
// HTTP probes on its health port, its overlay's TLS identity (a client),
// and the coordinators' NetworkPolicy admits it to their gRPC port.
func TestOperator(t *testing.T) {
	for _, name := range overlays(t) {
		t.Run(name, func(t *testing.T) {
			objs := renderOverlay(t, name)
			crd := find[*apiextensionsv1.CustomResourceDefinition](t, objs, "CustomResourceDefinition", "whorljobs.whorl-ml.github.io")
			if crd.Spec.Scope != apiextensionsv1.NamespaceScoped {
				t.Errorf("WhorlJob scope %s, want Namespaced (the operator's RBAC is a Role)", crd.Spec.Scope)
			}
			dep := find[*appsv1.Deployment](t, objs, "Deployment", "whorl-operator")
			checkOperatorPod(t, dep.Spec.Template, want[name].image)
			checkTLS(t, "operator", dep.Spec.Template, want[name].tls)
			checkRBAC(t, objs, dep.Spec.Template.Spec.ServiceAccountName)
			for _, o := range objs {
				if tpl, ok := podTemplate(o); ok && o.name != "whorl-operator" {
					if a := tpl.Spec.AutomountServiceAccountToken; a == nil || *a {
						t.Errorf("%s %s mounts a service-account token: only the operator talks to the kube-apiserver", o.kind, o.name)
					}
				}
			}
			np := find[*networkingv1.NetworkPolicy](t, objs, "NetworkPolicy", "whorl-coordinator")
			if !admitsTo(np, dep.Spec.Template.Labels, "grpc") {
				t.Errorf("NetworkPolicy whorl-coordinator does not admit the operator's pods to the coordinators' gRPC port")
			}
		})
	}
}

// checkOperatorPod checks the operator pod's hardening, resources, probes
// and image.
func checkOperatorPod(t *testing.T, tpl corev1.PodTemplateSpec, image string) {
	t.Helper()
	spec := tpl.Spec
	if a := spec.AutomountServiceAccountToken; a == nil || !*a || spec.ServiceAccountName != "whorl-operator" {
		t.Errorf("operator: serviceAccountName %q, automount %v; want whorl-operator with its token", spec.ServiceAccountName, a)
	}
	psc := spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Error("operator: the pod must run as a non-root user")
	}
	c := spec.Containers[0]
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" {
		t.Error("operator: want a read-only root filesystem, no privilege escalation, all capabilities dropped")
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := c.Resources.Requests[r]; !ok {
			t.Errorf("operator: no %s request", r)
		}
		if _, ok := c.Resources.Limits[r]; !ok {
			t.Errorf("operator: no %s limit", r)
		}
	}
	if c.Image != image {
		t.Errorf("operator: image %q, want %q", c.Image, image)
	}
	for kind, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Port.String() != "health" || containerPort(c, "health") == nil {
			t.Errorf("operator: want an HTTP %s probe on the container port health", kind)
		}
	}
	checkOperatorResults(t, spec, c)
}

// checkOperatorResults wants spec.results' way out: --scratch on a
// size-limited emptyDir (the root filesystem is read-only) and the
// credentials from the optional Secret whorl-results.
func checkOperatorResults(t *testing.T, spec corev1.PodSpec, c corev1.Container) {
	t.Helper()
	i := slices.Index(c.Args, "--scratch")
	if i < 0 || i+1 >= len(c.Args) {
		t.Fatalf("operator: no --scratch in %v", c.Args)
	}
	mi := slices.IndexFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == c.Args[i+1] })
	if mi < 0 {
		t.Fatalf("operator: --scratch %s is not a mounted volume (the root filesystem is read-only)", c.Args[i+1])
	}
	vi := slices.IndexFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == c.VolumeMounts[mi].Name })
	if vi < 0 || spec.Volumes[vi].EmptyDir == nil || spec.Volumes[vi].EmptyDir.SizeLimit == nil {
		t.Errorf("operator: --scratch's volume %s should be an emptyDir with a sizeLimit", c.VolumeMounts[mi].Name)
	}
	if !slices.ContainsFunc(c.EnvFrom, func(e corev1.EnvFromSource) bool {
		return e.SecretRef != nil && e.SecretRef.Name == "whorl-results" && e.SecretRef.Optional != nil && *e.SecretRef.Optional
	}) {
		t.Error("operator: want envFrom the optional Secret whorl-results (spec.results' credentials)")
	}
}

// checkRBAC wants one Role and one RoleBinding, the operator's, and no
// cluster-wide RBAC.
func checkRBAC(t *testing.T, objs []object, sa string) {
	t.Helper()
	for _, o := range objs {
		switch o.kind {
		case "ClusterRole", "ClusterRoleBinding":
			t.Errorf("%s %s: the deployment needs no cluster-wide RBAC", o.kind, o.name)
		case "Role":
			if o.name != "whorl-operator" {
				t.Errorf("Role %s: only the operator has a Role", o.name)
			}
			checkRules(t, o.obj.(*rbacv1.Role).Rules)
		case "RoleBinding":
			rb := o.obj.(*rbacv1.RoleBinding)
			if rb.RoleRef.Name != "whorl-operator" || len(rb.Subjects) != 1 || rb.Subjects[0].Kind != "ServiceAccount" || rb.Subjects[0].Name != sa {
				t.Errorf("RoleBinding %s binds %v to %v; want only the Role whorl-operator to the ServiceAccount %s", rb.Name, rb.RoleRef.Name, rb.Subjects, sa)
			}
		}
	}
	find[*rbacv1.Role](t, objs, "Role", "whorl-operator")
	find[*corev1.ServiceAccount](t, objs, "ServiceAccount", sa)
}

// checkRules compares the operator's Role with operatorRules.
func checkRules(t *testing.T, rules []rbacv1.PolicyRule) {
	t.Helper()
	got := map[string][]string{}
	for _, r := range rules {
		if len(r.ResourceNames) > 0 || len(r.NonResourceURLs) > 0 {
			t.Errorf("operator Role: unexpected rule %+v", r)
		}
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				got[g+"/"+res] = append(got[g+"/"+res], r.Verbs...)
			}
		}
	}
	for k, verbs := range got {
		slices.Sort(verbs)
		w := slices.Clone(operatorRules[k])
		slices.Sort(w)
		if !slices.Equal(verbs, w) {
			t.Errorf("operator Role grants %v on %s, want %v", verbs, k, w)
		}
	}
	for k := range operatorRules {
		if _, ok := got[k]; !ok {
			t.Errorf("operator Role lacks %s", k)
		}
	}
}

// podTemplate returns the pod template of a workload.
func podTemplate(o object) (corev1.PodTemplateSpec, bool) {
	switch w := o.obj.(type) {
	case *appsv1.Deployment:
		return w.Spec.Template, true
	case *appsv1.StatefulSet:
		return w.Spec.Template, true
	case *batchv1.Job:
		return w.Spec.Template, true
	}
	return corev1.PodTemplateSpec{}, false
}

// admitsTo reports whether a NetworkPolicy admits pods with these labels
// to the named port.
func admitsTo(np *networkingv1.NetworkPolicy, podLabels map[string]string, port string) bool {
	for _, rule := range np.Spec.Ingress {
		hasPort := false
		for _, p := range rule.Ports {
			if p.Port != nil && p.Port.String() == port {
				hasPort = true
			}
		}
		if !hasPort {
			continue
		}
		if len(rule.From) == 0 {
			return true
		}
		for _, f := range rule.From {
			if f.PodSelector != nil && f.NamespaceSelector == nil &&
				labels.SelectorFromSet(f.PodSelector.MatchLabels).Matches(labels.Set(podLabels)) {
				return true
			}
		}
	}
	return false
}
