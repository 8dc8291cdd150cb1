package deploy

import (
	"maps"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// overlay is a kustomization to render, and the Secrets it expects to exist
// in the cluster already (created out of band, see deploy/README.md).
type overlay struct {
	dir            string
	externalSecret []string
	minReplicas    int32
}

var overlays = []overlay{
	{dir: "k8s/base", externalSecret: []string{"enrollstatus-secrets"}, minReplicas: 1},
	{dir: "k8s/overlays/dev", minReplicas: 1},
	{dir: "k8s/overlays/production", externalSecret: []string{"enrollstatus-secrets"}, minReplicas: 3},
}

// manifests is one rendered kustomization, decoded.
type manifests struct {
	statefulSets []appsv1.StatefulSet
	services     []corev1.Service
	configMaps   map[string]corev1.ConfigMap
	secrets      map[string]corev1.Secret
	pdbs         []policyv1.PodDisruptionBudget
	monitors     []monitoringv1.ServiceMonitor
	accounts     map[string]corev1.ServiceAccount
}

// render builds dir as `kubectl apply -k` would (the kustomize API) and
// decodes every object strictly into its Go type: an unknown field, a field
// of the wrong type or a kind nobody expects fails.
func render(t *testing.T, dir string) manifests {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	all, err := m.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	writeRendered(t, strings.ReplaceAll(strings.TrimPrefix(dir, "k8s/"), "/", "-")+".yaml", all)

	out := manifests{configMaps: map[string]corev1.ConfigMap{}, secrets: map[string]corev1.Secret{}, accounts: map[string]corev1.ServiceAccount{}}
	for _, r := range m.Resources() {
		b, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		id := r.GetApiVersion() + " " + r.GetKind() + " " + r.GetName()
		strict := func(v any) {
			t.Helper()
			if err := yaml.UnmarshalStrict(b, v); err != nil {
				t.Errorf("%s: %s: %v", dir, id, err)
			}
		}
		switch r.GetApiVersion() + "/" + r.GetKind() {
		case "v1/Namespace":
			var v corev1.Namespace
			strict(&v)
		case "v1/ServiceAccount":
			var v corev1.ServiceAccount
			strict(&v)
			out.accounts[v.Name] = v
		case "v1/ConfigMap":
			var v corev1.ConfigMap
			strict(&v)
			out.configMaps[v.Name] = v
		case "v1/Secret":
			var v corev1.Secret
			strict(&v)
			out.secrets[v.Name] = v
		case "v1/Service":
			var v corev1.Service
			strict(&v)
			out.services = append(out.services, v)
		case "apps/v1/StatefulSet":
			var v appsv1.StatefulSet
			strict(&v)
			out.statefulSets = append(out.statefulSets, v)
		case "policy/v1/PodDisruptionBudget":
			var v policyv1.PodDisruptionBudget
			strict(&v)
			out.pdbs = append(out.pdbs, v)
		case "monitoring.coreos.com/v1/ServiceMonitor":
			var v monitoringv1.ServiceMonitor
			strict(&v)
			out.monitors = append(out.monitors, v)
		default:
			t.Errorf("%s: unexpected object %s", dir, id)
		}
	}
	return out
}

func TestKubernetes(t *testing.T) {
	for _, o := range overlays {
		t.Run(filepath.Base(o.dir), func(t *testing.T) {
			m := render(t, o.dir)
			if len(m.statefulSets) != 1 {
				t.Fatalf("want one StatefulSet, got %d", len(m.statefulSets))
			}
			sts := m.statefulSets[0]
			checkStatefulSet(t, o, m, sts)
			checkServices(t, m, sts)
			checkDisruptionBudget(t, m, sts)
			checkServiceMonitor(t, m)
		})
	}
}

func checkStatefulSet(t *testing.T, o overlay, m manifests, sts appsv1.StatefulSet) {
	spec := sts.Spec
	pod := spec.Template.Spec
	podLabels := labels.Set(spec.Template.Labels)
	sel, err := metav1.LabelSelectorAsSelector(spec.Selector)
	if err != nil || !sel.Matches(podLabels) {
		t.Errorf("the StatefulSet's selector %v does not match its pod labels %v", spec.Selector, podLabels)
	}
	if spec.Replicas == nil || *spec.Replicas < o.minReplicas {
		t.Errorf("replicas = %v, want at least %d", spec.Replicas, o.minReplicas)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("want one container, got %d", len(pod.Containers))
	}
	c := pod.Containers[0]
	if !slices.Equal(c.Args, []string{"serve"}) && !slices.Equal(c.Command, []string{"serve"}) {
		t.Errorf("the container runs %v %v, want serve", c.Command, c.Args)
	}

	// Configuration: everything the container reads must exist (or be one
	// of the overlay's documented out-of-band Secrets), and every variable
	// must be one `enrollstatus serve` reads.
	env := map[string]string{}
	var names []string
	for _, ef := range c.EnvFrom {
		switch {
		case ef.ConfigMapRef != nil:
			cm, ok := m.configMaps[ef.ConfigMapRef.Name]
			if !ok {
				t.Errorf("envFrom ConfigMap %q is not in the output", ef.ConfigMapRef.Name)
			}
			for k, v := range cm.Data {
				env[k] = v
				names = append(names, k)
			}
		case ef.SecretRef != nil:
			t.Errorf("envFrom a Secret (%s): list secret keys one by one", ef.SecretRef.Name)
		}
	}
	for _, e := range c.Env {
		names = append(names, e.Name)
		if e.ValueFrom == nil {
			env[e.Name] = e.Value
			continue
		}
		if ref := e.ValueFrom.SecretKeyRef; ref != nil {
			s, ok := m.secrets[ref.Name]
			switch {
			case !ok && slices.Contains(o.externalSecret, ref.Name):
			case !ok:
				t.Errorf("env %s: Secret %q is not in the output", e.Name, ref.Name)
			case s.Data[ref.Key] == nil && s.StringData[ref.Key] == "" && (ref.Optional == nil || !*ref.Optional):
				t.Errorf("env %s: Secret %q has no key %q", e.Name, ref.Name, ref.Key)
			}
		}
		if ref := e.ValueFrom.ConfigMapKeyRef; ref != nil {
			if _, ok := m.configMaps[ref.Name]; !ok {
				t.Errorf("env %s: ConfigMap %q is not in the output", e.Name, ref.Name)
			}
		}
	}
	checkEnvNames(t, "the StatefulSet", names)
	if !slices.Contains(names, "ENROLLSTATUS_JWT_SECRET") && env["ENROLLSTATUS_JWKS"] == "" && env["ENROLLSTATUS_JWKS_URL"] == "" {
		t.Error("no way to verify tokens: neither ENROLLSTATUS_JWT_SECRET nor a JWK set")
	}
	if env["ENROLLSTATUS_BROKERS"] == "" {
		t.Error("ENROLLSTATUS_BROKERS is not set")
	}

	// The data volume: one claim per replica, mounted where the service keeps
	// its projection.
	dataDir := env["ENROLLSTATUS_DATA_DIR"]
	if len(spec.VolumeClaimTemplates) != 1 {
		t.Fatalf("want one volumeClaimTemplate, got %d", len(spec.VolumeClaimTemplates))
	}
	claim := spec.VolumeClaimTemplates[0]
	if !slices.Contains(claim.Spec.AccessModes, corev1.ReadWriteOnce) {
		t.Errorf("the data claim's access modes %v lack ReadWriteOnce", claim.Spec.AccessModes)
	}
	if q, ok := claim.Spec.Resources.Requests[corev1.ResourceStorage]; !ok || q.IsZero() {
		t.Error("the data claim requests no storage")
	}
	mounted := map[string]string{}
	for _, vm := range c.VolumeMounts {
		mounted[vm.MountPath] = vm.Name
	}
	if mounted[dataDir] != claim.Name {
		t.Errorf("ENROLLSTATUS_DATA_DIR=%q but the claim %q is mounted at %v", dataDir, claim.Name, mounted)
	}
	volumes := map[string]bool{claim.Name: true}
	for _, v := range pod.Volumes {
		volumes[v.Name] = true
	}
	for path, name := range mounted {
		if !volumes[name] {
			t.Errorf("mount %s uses volume %q, which does not exist", path, name)
		}
	}
	if _, ok := mounted["/tmp"]; !ok {
		t.Error("no writable /tmp: the root filesystem is read-only")
	}

	// The HTTP port and the probes.
	_, port, err := net.SplitHostPort(env["ENROLLSTATUS_HTTP_ADDR"])
	if err != nil {
		t.Fatalf("ENROLLSTATUS_HTTP_ADDR=%q: %v", env["ENROLLSTATUS_HTTP_ADDR"], err)
	}
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if strconv.Itoa(int(ports["http"])) != port {
		t.Errorf("container port http = %d, the service listens on %s", ports["http"], port)
	}
	probe := func(name string, p *corev1.Probe, path string) {
		t.Helper()
		switch {
		case p == nil:
			t.Errorf("no %s probe", name)
		case p.HTTPGet == nil:
			t.Errorf("the %s probe is not an HTTP GET", name)
		case p.HTTPGet.Path != path:
			t.Errorf("the %s probe asks %s, want %s", name, p.HTTPGet.Path, path)
		case p.HTTPGet.Port != intstr.FromString("http") && p.HTTPGet.Port != intstr.FromInt32(ports["http"]):
			t.Errorf("the %s probe asks port %v, not the http port", name, p.HTTPGet.Port.String())
		}
	}
	probe("liveness", c.LivenessProbe, "/healthz")
	probe("readiness", c.ReadinessProbe, "/readyz")
	probe("startup", c.StartupProbe, "/healthz")
	if p := c.StartupProbe; p != nil {
		if budget := time.Duration(p.PeriodSeconds*p.FailureThreshold) * time.Second; budget < 2*time.Minute {
			t.Errorf("the startup probe gives up after %v; opening a large store on a slow volume needs minutes", budget)
		}
	}

	// Resources.
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := c.Resources.Requests[r]; !ok {
			t.Errorf("no %s request", r)
		}
	}
	if _, ok := c.Resources.Limits[corev1.ResourceMemory]; !ok {
		t.Error("no memory limit")
	}

	// Security: non-root, read-only root, no capabilities, no token.
	psc, csc := pod.SecurityContext, c.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser != runtimeUID {
		t.Errorf("the pod does not run as non-root uid %d: %+v", runtimeUID, psc)
	}
	if psc == nil || psc.FSGroup == nil || *psc.FSGroup != runtimeUID {
		t.Error("no fsGroup: the volume would not be writable by the service")
	}
	if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Error("no RuntimeDefault seccomp profile (Pod Security 'restricted' requires one)")
	}
	switch {
	case csc == nil:
		t.Fatal("no container securityContext")
	case csc.ReadOnlyRootFilesystem == nil || !*csc.ReadOnlyRootFilesystem:
		t.Error("the root filesystem is writable")
	case csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation:
		t.Error("privilege escalation is allowed")
	case csc.Capabilities == nil || !slices.Contains(csc.Capabilities.Drop, "ALL") || len(csc.Capabilities.Add) > 0:
		t.Errorf("capabilities are not all dropped: %+v", csc.Capabilities)
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("the service account token is mounted; the service never calls the Kubernetes API")
	}
	if _, ok := m.accounts[pod.ServiceAccountName]; !ok {
		t.Errorf("service account %q is not in the output", pod.ServiceAccountName)
	}

	// Shutdown: the grace period covers preStop and the service's own
	// shutdown deadline.
	shutdown, err := time.ParseDuration(env["ENROLLSTATUS_SHUTDOWN_TIMEOUT"])
	if err != nil {
		shutdown = 15 * time.Second // the service's default
	}
	var preStop time.Duration
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Sleep != nil {
		preStop = time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
	}
	if pod.TerminationGracePeriodSeconds == nil {
		t.Fatal("no terminationGracePeriodSeconds")
	}
	if grace := time.Duration(*pod.TerminationGracePeriodSeconds) * time.Second; grace <= preStop+shutdown {
		t.Errorf("terminationGracePeriodSeconds %v <= preStop %v + shutdown timeout %v: a stop would be killed mid-commit", grace, preStop, shutdown)
	}
}

func checkServices(t *testing.T, m manifests, sts appsv1.StatefulSet) {
	podLabels := labels.Set(sts.Spec.Template.Labels)
	podPorts := map[string]bool{}
	for _, p := range sts.Spec.Template.Spec.Containers[0].Ports {
		podPorts[p.Name] = true
	}
	var headless, client int
	for _, s := range m.services {
		if len(s.Spec.Selector) == 0 || !labels.SelectorFromSet(s.Spec.Selector).Matches(podLabels) {
			t.Errorf("Service %s selects %v, not the pods (%v)", s.Name, s.Spec.Selector, podLabels)
		}
		for _, p := range s.Spec.Ports {
			if p.TargetPort.Type == intstr.String && !podPorts[p.TargetPort.StrVal] {
				t.Errorf("Service %s targets port %q, which the pod does not name", s.Name, p.TargetPort.StrVal)
			}
		}
		if s.Spec.ClusterIP == corev1.ClusterIPNone {
			headless++
			if s.Name != sts.Spec.ServiceName {
				t.Errorf("headless Service %s is not the StatefulSet's serviceName %s", s.Name, sts.Spec.ServiceName)
			}
			if !s.Spec.PublishNotReadyAddresses {
				t.Errorf("headless Service %s hides replicas that are catching up", s.Name)
			}
		} else {
			client++
			if s.Spec.PublishNotReadyAddresses {
				t.Errorf("client Service %s sends traffic to replicas that are not ready", s.Name)
			}
		}
	}
	if headless != 1 || client != 1 {
		t.Errorf("want one headless and one client Service, got %d and %d", headless, client)
	}
}

func checkDisruptionBudget(t *testing.T, m manifests, sts appsv1.StatefulSet) {
	if len(m.pdbs) != 1 {
		t.Fatalf("want one PodDisruptionBudget, got %d", len(m.pdbs))
	}
	pdb := m.pdbs[0]
	sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	if err != nil || !sel.Matches(labels.Set(sts.Spec.Template.Labels)) {
		t.Errorf("the PodDisruptionBudget's selector %v does not match the pods", pdb.Spec.Selector)
	}
	if pdb.Spec.MaxUnavailable == nil && pdb.Spec.MinAvailable == nil {
		t.Error("the PodDisruptionBudget bounds nothing")
	}
}

func checkServiceMonitor(t *testing.T, m manifests) {
	if len(m.monitors) != 1 {
		t.Fatalf("want one ServiceMonitor, got %d", len(m.monitors))
	}
	sm := m.monitors[0]
	sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
	if err != nil {
		t.Fatal(err)
	}
	var selected []corev1.Service
	for _, s := range m.services {
		if sel.Matches(labels.Set(s.Labels)) {
			selected = append(selected, s)
		}
	}
	if len(selected) != 1 || selected[0].Spec.ClusterIP == corev1.ClusterIPNone {
		t.Fatalf("the ServiceMonitor must select the client Service alone (else every replica is scraped twice); it selects %d", len(selected))
	}
	ports := map[string]bool{}
	for _, p := range selected[0].Spec.Ports {
		ports[p.Name] = true
	}
	if len(sm.Spec.Endpoints) == 0 {
		t.Fatal("the ServiceMonitor has no endpoints")
	}
	for _, e := range sm.Spec.Endpoints {
		if !ports[e.Port] {
			t.Errorf("ServiceMonitor endpoint port %v is not a port of Service %s (%v)", e.Port, selected[0].Name, slices.Collect(maps.Keys(ports)))
		}
		if e.Path != "/metrics" {
			t.Errorf("ServiceMonitor path %q, want /metrics", e.Path)
		}
	}
}
