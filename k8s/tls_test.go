package k8s

import (
	"os"
	"path/filepath"
	"testing"

	"sigs.k8s.io/yaml"

	corev1 "k8s.io/api/core/v1"
)

// tlsDir is where every whorl container finds its own identity's files.
const tlsDir = "/var/run/whorl/tls"

// csiDriver is cert-manager's CSI driver, which issues a pod its identity.
const csiDriver = "csi.cert-manager.io"

// roleOf is the SPIFFE role of each checked pod template.
var roleOf = map[string]string{"coordinator": "coordinator", "worker": "worker", "submit": "client", "operator": "client"}

// checkTLS checks a pod template's transport security: with tls, the
// container reads tls.crt, tls.key and ca.crt from a cert-manager CSI
// volume at tlsDir that issues the pod's own SPIFFE ID (spiffe://whorl/
// <role>/${POD_NAME}, the submit Job and the operator a fixed client name) from the
// Issuer of cert-manager/issuer.yaml, readable by the pod's user, and
// nothing asks for plaintext; without it, no certificate is configured.
func checkTLS(t *testing.T, what string, tpl corev1.PodTemplateSpec, tls bool) {
	t.Helper()
	c := tpl.Spec.Containers[0]
	if !tls {
		if envValue(c, "WHORL_TLS_CERT") != "" {
			t.Errorf("%s: WHORL_TLS_CERT set in an overlay without certificates", what)
		}
		return
	}
	if envValue(c, "WHORL_INSECURE") != "" {
		t.Errorf("%s: WHORL_INSECURE=%q under mutual TLS", what, envValue(c, "WHORL_INSECURE"))
	}
	for name, file := range map[string]string{"WHORL_TLS_CERT": "tls.crt", "WHORL_TLS_KEY": "tls.key", "WHORL_TLS_CA": "ca.crt"} {
		if got, want := envValue(c, name), tlsDir+"/"+file; got != want {
			t.Errorf("%s: %s=%q, want %q", what, name, got, want)
		}
	}
	vol := ""
	for _, m := range c.VolumeMounts {
		if m.MountPath == tlsDir {
			vol = m.Name
		}
	}
	var csi *corev1.CSIVolumeSource
	for _, v := range tpl.Spec.Volumes {
		if v.Name == vol && v.CSI != nil {
			csi = v.CSI
		}
	}
	if csi == nil || csi.Driver != csiDriver {
		t.Fatalf("%s: no %s volume mounted at %s", what, csiDriver, tlsDir)
	}
	name := "${POD_NAME}"
	if what == "submit" || what == "operator" {
		name = what // one identity, not one per pod
	}
	a := csi.VolumeAttributes
	want := map[string]string{
		"csi.cert-manager.io/uri-sans":    "spiffe://whorl/" + roleOf[what] + "/" + name,
		"csi.cert-manager.io/issuer-name": issuerName(t),
		"csi.cert-manager.io/issuer-kind": "Issuer",
		"csi.cert-manager.io/fs-group":    "65532",
	}
	for k, v := range want {
		if a[k] != v {
			t.Errorf("%s: CSI attribute %s=%q, want %q", what, k, a[k], v)
		}
	}
	if g := tpl.Spec.SecurityContext.RunAsGroup; g == nil || *g != 65532 {
		t.Errorf("%s: runAsGroup %v, want 65532 (the group the key is readable by)", what, g)
	}
}

// issuerName reads the Issuer that the production overlay's identities
// name (cert-manager/issuer.yaml, applied apart: it needs cert-manager's
// CRDs) and checks its shape.
func issuerName(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("overlays", "production", "cert-manager", "issuer.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var iss struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name, Namespace string
		} `json:"metadata"`
		Spec struct {
			CA struct {
				SecretName string `json:"secretName"`
			} `json:"ca"`
		} `json:"spec"`
	}
	if err := yaml.UnmarshalStrict(b, &iss); err != nil {
		t.Fatalf("issuer.yaml: %v", err)
	}
	if iss.APIVersion != "cert-manager.io/v1" || iss.Kind != "Issuer" || iss.Metadata.Namespace != "whorl" || iss.Spec.CA.SecretName == "" {
		t.Errorf("issuer.yaml: %+v, want a cert-manager.io/v1 CA Issuer in the namespace whorl", iss)
	}
	return iss.Metadata.Name
}
