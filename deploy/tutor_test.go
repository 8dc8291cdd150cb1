package deploy

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// tutorEnv is the env directory of a Tutor project rendered with the plugin
// (deploy/tutor/test.sh leaves one; scripts/deploy-check.sh passes it in).
func tutorEnv(t *testing.T) string {
	dir := os.Getenv("TUTOR_ENV_DIR")
	if dir == "" {
		t.Skip("TUTOR_ENV_DIR is not set: run scripts/deploy-check.sh, which renders a Tutor project first")
	}
	return dir
}

// TestTutorCompose loads the compose files `tutor local` runs, as Docker
// Compose would (compose-go), and checks the enrollstatus service in them.
func TestTutorCompose(t *testing.T) {
	env := tutorEnv(t)
	local := filepath.Join(env, "local")
	p := loadCompose(t, local, "tutor_local", "docker-compose.yml", "docker-compose.prod.yml")
	es, err := p.GetService("enrollstatus")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for k, v := range es.Environment {
		names = append(names, k)
		if v == nil || *v == "" {
			t.Errorf("%s is empty in the rendered env file", k)
		}
	}
	checkEnvNames(t, "the Tutor plugin's env file", names)
	for _, need := range []string{"ENROLLSTATUS_BROKERS", "ENROLLSTATUS_JWT_SECRET", "ENROLLSTATUS_JWKS", "ENROLLSTATUS_JWT_ISSUER"} {
		if !slices.Contains(names, need) {
			t.Errorf("the Tutor plugin does not set %s", need)
		}
	}
	if _, ok := es.DependsOn["permissions"]; !ok {
		t.Error("enrollstatus does not wait for Tutor's permissions job (its data directory would be root's)")
	}
	if _, err := p.GetService("caddy"); err != nil {
		t.Error("no caddy in the compose files: the route would not be served")
	}
}

// TestTutorKubernetes renders the kustomization `tutor k8s` applies, with
// the kustomize API, and decodes the plugin's objects strictly.
func TestTutorKubernetes(t *testing.T) {
	env := tutorEnv(t)
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), env)
	if err != nil {
		t.Fatalf("kustomize build of Tutor's env with the plugin: %v", err)
	}
	all, err := m.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	writeRendered(t, "tutor-k8s.yaml", all)
	var sts *appsv1.StatefulSet
	secrets := map[string]corev1.Secret{}
	services := map[string]corev1.Service{}
	for _, r := range m.Resources() {
		if r.GetName() != "enrollstatus" && r.GetName() != "enrollstatus-headless" && r.GetName() != "enrollstatus-env" {
			continue
		}
		b, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		switch r.GetKind() {
		case "StatefulSet":
			sts = new(appsv1.StatefulSet)
			if err := yaml.UnmarshalStrict(b, sts); err != nil {
				t.Errorf("StatefulSet: %v", err)
			}
		case "Secret":
			var s corev1.Secret
			if err := yaml.UnmarshalStrict(b, &s); err != nil {
				t.Errorf("Secret: %v", err)
			}
			secrets[s.Name] = s
		case "Service":
			var s corev1.Service
			if err := yaml.UnmarshalStrict(b, &s); err != nil {
				t.Errorf("Service: %v", err)
			}
			services[s.Name] = s
		default:
			t.Errorf("unexpected %s %s", r.GetKind(), r.GetName())
		}
	}
	if sts == nil {
		t.Fatal("no enrollstatus StatefulSet in Tutor's kustomization")
	}
	c := sts.Spec.Template.Spec.Containers[0]
	if len(c.EnvFrom) != 1 || c.EnvFrom[0].SecretRef == nil {
		t.Fatalf("envFrom %v, want the plugin's Secret", c.EnvFrom)
	}
	secret, ok := secrets[c.EnvFrom[0].SecretRef.Name]
	if !ok {
		t.Fatalf("Secret %s is not in the kustomization", c.EnvFrom[0].SecretRef.Name)
	}
	var names []string
	for k := range secret.StringData {
		names = append(names, k)
	}
	checkEnvNames(t, "the Tutor plugin's Secret", names)
	if s, ok := services[sts.Spec.ServiceName]; !ok || s.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Errorf("the StatefulSet's serviceName %q is not a headless Service of the plugin", sts.Spec.ServiceName)
	}
	// Tutor's labels (instance, managed-by) reach the selectors: the
	// Services must still select the pods.
	for name, s := range services {
		for k, v := range s.Spec.Selector {
			if sts.Spec.Template.Labels[k] != v {
				t.Errorf("Service %s selects %s=%s, which the pods lack", name, k, v)
			}
		}
	}
}
