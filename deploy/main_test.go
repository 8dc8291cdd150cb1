package deploy

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
)

// repoRoot is the service's repository, the parent of this module.
const repoRoot = ".."

// binary is the enrollstatus binary built from the Docker build context
// (see TestDockerBuildContext); built once for the whole run.
var binary struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binary.dir != "" {
		os.RemoveAll(binary.dir)
	}
	os.Exit(code)
}

// serviceBinary builds the service as deploy/Dockerfile does, from the
// context the dockerignore file leaves, and returns its path.
func serviceBinary(t *testing.T) string {
	t.Helper()
	binary.once.Do(func() {
		binary.dir, binary.err = os.MkdirTemp("", "enrollstatus-deploy-")
		if binary.err != nil {
			return
		}
		binary.path, binary.err = buildFromDockerContext(binary.dir)
	})
	if binary.err != nil {
		t.Fatalf("building the service as the Dockerfile does: %v", binary.err)
	}
	return binary.path
}

var envInHelp = regexp.MustCompile(`\(env (ENROLLSTATUS_[A-Z0-9_]+)\)`)

// serviceEnv is the set of ENROLLSTATUS_* variables `enrollstatus serve`
// reads, from its --help.
func serviceEnv(t *testing.T) map[string]bool {
	t.Helper()
	cmd := exec.Command(serviceBinary(t), "serve", "--help")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Env = []string{}
	if err := cmd.Run(); err != nil {
		t.Fatalf("enrollstatus serve --help: %v\n%s", err, out.String())
	}
	env := map[string]bool{}
	for _, m := range envInHelp.FindAllStringSubmatch(out.String(), -1) {
		env[m[1]] = true
	}
	if len(env) < 10 {
		t.Fatalf("enrollstatus serve --help lists %d environment variables; the help format changed?\n%s", len(env), out.String())
	}
	return env
}

// runtimeEnv are the non-ENROLLSTATUS variables deploy files may set.
var runtimeEnv = map[string]bool{"GOMEMLIMIT": true, "GOMAXPROCS": true, "GODEBUG": true, "TZ": true}

// checkEnvNames fails for every name that is neither an ENROLLSTATUS_*
// variable of `serve` nor a Go runtime variable.
func checkEnvNames(t *testing.T, where string, names []string) {
	t.Helper()
	known := serviceEnv(t)
	var bad []string
	for _, n := range names {
		if !known[n] && !runtimeEnv[n] {
			bad = append(bad, n)
		}
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		t.Errorf("%s sets variables that `enrollstatus serve` does not read: %s", where, strings.Join(bad, ", "))
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// renderDir is where rendered manifests go when DEPLOY_RENDER_DIR is set, for
// the validators that scripts/deploy-check.sh runs after the tests.
func writeRendered(t *testing.T, name string, data []byte) {
	t.Helper()
	dir := os.Getenv("DEPLOY_RENDER_DIR")
	if dir == "" {
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
		t.Fatal(err)
	}
}
