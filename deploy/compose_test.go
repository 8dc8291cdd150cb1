package deploy

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	promconfig "github.com/prometheus/prometheus/config"
	"sigs.k8s.io/yaml"
)

const composeFile = "docker-compose.yml"

// loadCompose loads compose files as `docker compose` does (compose-go:
// the compose-spec JSON schema, interpolation, normalization, consistency
// of references), from dir, with an empty environment so that the defaults
// apply; name is the project name ("" for compose's default).
func loadCompose(t *testing.T, dir, name string, files ...string) *types.Project {
	t.Helper()
	paths := make([]string, len(files))
	for i, f := range files {
		paths[i] = filepath.Join(dir, f)
	}
	opts, err := cli.NewProjectOptions(paths,
		cli.WithWorkingDirectory(dir), cli.WithEnv([]string{}), cli.WithName(name), cli.WithInterpolation(true),
		cli.WithNormalization(true), cli.WithConsistency(true), cli.WithResolvedPaths(true))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := opts.LoadProject(ctx)
	if err != nil {
		t.Fatalf("compose-go rejects %v: %v", files, err)
	}
	return p
}

func TestCompose(t *testing.T) {
	p := loadCompose(t, ".", "", composeFile)
	want := []string{"enrollstatus", "grafana", "kafka", "kafka-init", "prometheus"}
	if got := p.ServiceNames(); !slices.Equal(sortedCopy(got), want) {
		t.Fatalf("services %v, want %v", got, want)
	}
	svc := func(name string) types.ServiceConfig {
		s, err := p.GetService(name)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	env := func(s types.ServiceConfig, k string) string {
		if v := s.Environment[k]; v != nil {
			return *v
		}
		return ""
	}

	// Every bind mount names a file or directory of the repository.
	for _, s := range p.Services {
		for _, v := range s.Volumes {
			if v.Type == types.VolumeTypeBind {
				if _, err := os.Stat(v.Source); err != nil {
					t.Errorf("%s mounts %s, which does not exist", s.Name, v.Source)
				}
			}
		}
	}

	// enrollstatus: built from this repository with deploy/Dockerfile,
	// serving, hardened, stopping gracefully.
	es := svc("enrollstatus")
	if es.Build == nil {
		t.Fatal("enrollstatus is not built from the Dockerfile")
	}
	if _, err := os.Stat(filepath.Join(es.Build.Context, "go.mod")); err != nil {
		t.Errorf("the build context %s is not the repository root", es.Build.Context)
	}
	if abs, _ := filepath.Abs(dockerfilePath); filepath.Join(es.Build.Context, es.Build.Dockerfile) != abs {
		t.Errorf("the build uses %s, want deploy/Dockerfile", es.Build.Dockerfile)
	}
	if !slices.Equal([]string(es.Command), []string{"serve"}) {
		t.Errorf("enrollstatus command %v, want [serve]", es.Command)
	}
	var names []string
	for k := range es.Environment {
		names = append(names, k)
	}
	checkEnvNames(t, "docker-compose.yml (enrollstatus)", names)
	if env(es, "ENROLLSTATUS_JWT_SECRET") == "" {
		t.Error("ENROLLSTATUS_JWT_SECRET has no default: `serve` refuses to start without a way to verify tokens")
	}
	dataDir := env(es, "ENROLLSTATUS_DATA_DIR")
	if !slices.ContainsFunc(es.Volumes, func(v types.ServiceVolumeConfig) bool {
		return v.Type == types.VolumeTypeVolume && v.Target == dataDir
	}) {
		t.Errorf("no named volume at ENROLLSTATUS_DATA_DIR=%q", dataDir)
	}
	if !es.ReadOnly || es.User != "65532:65532" || !slices.Contains(es.CapDrop, "ALL") {
		t.Errorf("enrollstatus is not hardened: read_only=%v user=%q cap_drop=%v", es.ReadOnly, es.User, es.CapDrop)
	}
	shutdown, err := time.ParseDuration(env(es, "ENROLLSTATUS_SHUTDOWN_TIMEOUT"))
	if err != nil {
		shutdown = 15 * time.Second
	}
	if es.StopGracePeriod == nil || time.Duration(*es.StopGracePeriod) <= shutdown {
		t.Errorf("stop_grace_period %v is not longer than the shutdown timeout %v", es.StopGracePeriod, shutdown)
	}
	if d, ok := es.DependsOn["kafka-init"]; !ok || d.Condition != types.ServiceConditionCompletedSuccessfully {
		t.Errorf("enrollstatus does not wait for the topics: depends_on %v", es.DependsOn)
	}

	// Kafka: one KRaft node whose internal listener is what enrollstatus
	// dials, and the topics created are the ones it reads.
	kafka := svc("kafka")
	if env(kafka, "KAFKA_PROCESS_ROLES") != "broker,controller" {
		t.Errorf("kafka is not a combined KRaft node: KAFKA_PROCESS_ROLES=%q", env(kafka, "KAFKA_PROCESS_ROLES"))
	}
	voters := env(kafka, "KAFKA_CONTROLLER_QUORUM_VOTERS")
	if !strings.HasPrefix(voters, env(kafka, "KAFKA_NODE_ID")+"@kafka:") {
		t.Errorf("KAFKA_CONTROLLER_QUORUM_VOTERS=%q does not name this node", voters)
	}
	advertised := env(kafka, "KAFKA_ADVERTISED_LISTENERS")
	for _, b := range strings.Split(env(es, "ENROLLSTATUS_BROKERS"), ",") {
		if !strings.Contains(advertised, "//"+b) {
			t.Errorf("enrollstatus dials %s, which kafka does not advertise (%s)", b, advertised)
		}
	}
	if env(svc("kafka-init"), "TOPICS") != env(es, "ENROLLSTATUS_TOPICS") {
		t.Errorf("kafka-init creates %q, enrollstatus reads %q", env(svc("kafka-init"), "TOPICS"), env(es, "ENROLLSTATUS_TOPICS"))
	}

	// Prometheus: its configuration loads, scrapes enrollstatus where it
	// listens, and loads the alert rules from where they are mounted.
	prom := svc("prometheus")
	mounts := map[string]string{}
	for _, v := range prom.Volumes {
		if v.Type == types.VolumeTypeBind {
			mounts[v.Target] = v.Source
		}
	}
	cfgPath := mounts["/etc/prometheus/prometheus.yml"]
	if cfgPath == "" {
		t.Fatal("prometheus.yml is not mounted at /etc/prometheus/prometheus.yml")
	}
	cfg, err := promconfig.LoadFile(cfgPath, false, nil)
	if err != nil {
		t.Fatalf("Prometheus rejects %s: %v", cfgPath, err)
	}
	for _, rf := range cfg.RuleFiles {
		if _, ok := mounts[rf]; !ok {
			t.Errorf("rule file %s is not mounted into prometheus", rf)
		}
	}
	_, port, _ := net.SplitHostPort(env(es, "ENROLLSTATUS_HTTP_ADDR"))
	if !strings.Contains(readFileString(t, cfgPath), `"enrollstatus:`+port+`"`) {
		t.Errorf("prometheus.yml does not scrape enrollstatus:%s", port)
	}
	scrapes := false
	for _, sc := range cfg.ScrapeConfigs {
		if sc.JobName == "enrollstatus" && sc.MetricsPath == "/metrics" {
			scrapes = true
		}
	}
	if !scrapes {
		t.Error("no scrape job \"enrollstatus\" on /metrics (the alerts select job=\"enrollstatus\")")
	}

	// Grafana: the provisioned data source is this Prometheus, the
	// dashboard provider reads the directory the dashboard is mounted in.
	gr := svc("grafana")
	gmounts := map[string]string{}
	for _, v := range gr.Volumes {
		if v.Type == types.VolumeTypeBind {
			gmounts[v.Target] = v.Source
		}
	}
	prov := gmounts["/etc/grafana/provisioning"]
	if prov == "" {
		t.Fatal("grafana provisioning is not mounted")
	}
	var ds struct {
		APIVersion  int `json:"apiVersion"`
		Datasources []struct {
			Name, Type, URL, UID, Access string
			IsDefault, Editable          bool
		} `json:"datasources"`
	}
	if err := yaml.UnmarshalStrict(readFile(t, filepath.Join(prov, "datasources/prometheus.yml")), &ds); err != nil {
		t.Fatalf("datasource provisioning: %v", err)
	}
	if len(ds.Datasources) != 1 || ds.Datasources[0].Type != "prometheus" || ds.Datasources[0].URL != "http://prometheus:9090" {
		t.Errorf("the provisioned data source is not this Prometheus: %+v", ds.Datasources)
	}
	var dp struct {
		Providers []struct {
			Options struct{ Path string }
		}
	}
	if err := yaml.Unmarshal(readFile(t, filepath.Join(prov, "dashboards/enrollstatus.yml")), &dp); err != nil {
		t.Fatal(err)
	}
	if len(dp.Providers) != 1 {
		t.Fatalf("want one dashboard provider, got %d", len(dp.Providers))
	}
	dash := ""
	for target, src := range gmounts {
		if filepath.Dir(target) == dp.Providers[0].Options.Path && strings.HasSuffix(src, ".json") {
			dash = src
		}
	}
	if dash == "" {
		t.Errorf("no dashboard JSON is mounted in the provider's path %s", dp.Providers[0].Options.Path)
	} else if err := json.Unmarshal(readFile(t, dash), new(map[string]any)); err != nil {
		t.Errorf("%s: %v", dash, err)
	}
}

func readFileString(t *testing.T, path string) string { return string(readFile(t, path)) }

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}
