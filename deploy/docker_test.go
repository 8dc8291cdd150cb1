package deploy

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

const (
	dockerfilePath   = "Dockerfile"
	dockerignorePath = "Dockerfile.dockerignore"
	runtimeUID       = 65532
)

// parseDockerfile parses the Dockerfile as BuildKit does, with its build
// checks (the ones that `docker build --check` runs at parse time) turned
// into errors.
func parseDockerfile(t *testing.T) []instructions.Stage {
	t.Helper()
	res, err := parser.Parse(bytes.NewReader(readFile(t, dockerfilePath)))
	if err != nil {
		t.Fatalf("BuildKit cannot parse the Dockerfile: %v", err)
	}
	for _, w := range res.Warnings {
		t.Errorf("BuildKit parser warning: %s", w.Short)
	}
	var warnings []string
	lint := linter.New(&linter.Config{Warn: func(rule, description, url, msg string, loc []parser.Range) {
		warnings = append(warnings, fmt.Sprintf("%s: %s (line %v)", rule, msg, loc))
	}})
	stages, _, err := instructions.Parse(res.AST, lint)
	if err != nil {
		t.Fatalf("BuildKit rejects the Dockerfile: %v", err)
	}
	for _, w := range warnings {
		t.Errorf("BuildKit build check: %s", w)
	}
	return stages
}

func commandsOf[C any](s instructions.Stage) []C {
	var out []C
	for _, c := range s.Commands {
		if v, ok := c.(C); ok {
			out = append(out, v)
		}
	}
	return out
}

func TestDockerfile(t *testing.T) {
	stages := parseDockerfile(t)
	if len(stages) != 2 {
		t.Fatalf("want a builder stage and a runtime stage, got %d stages", len(stages))
	}
	build, final := stages[0], stages[1]

	// The builder: a Go image, a static, trimmed, stripped build of the
	// service's command.
	if !strings.HasPrefix(build.BaseName, "golang:") {
		t.Errorf("builder stage FROM %q, want a golang image", build.BaseName)
	}
	var buildEnv []string
	for _, e := range commandsOf[*instructions.EnvCommand](build) {
		for _, kv := range e.Env {
			buildEnv = append(buildEnv, kv.Key+"="+kv.Value)
		}
	}
	var goBuild string
	for _, r := range commandsOf[*instructions.RunCommand](build) {
		if line := strings.Join(r.CmdLine, " "); strings.Contains(line, "go build") {
			goBuild = line
		}
	}
	if goBuild == "" {
		t.Fatal("no RUN go build in the builder stage")
	}
	if !slices.Contains(buildEnv, "CGO_ENABLED=0") && !strings.Contains(goBuild, "CGO_ENABLED=0") {
		t.Error("the build does not set CGO_ENABLED=0")
	}
	for _, want := range []string{"-trimpath", `-ldflags="-s -w"`, "./cmd/enrollstatus"} {
		if !strings.Contains(goBuild, want) {
			t.Errorf("go build lacks %s: %s", want, goBuild)
		}
	}

	// The runtime: distroless static or scratch, non-root, the data volume,
	// the port, a health check decision, the serve command.
	if b := final.BaseName; !strings.HasPrefix(b, "gcr.io/distroless/static") && b != "scratch" {
		t.Errorf("runtime stage FROM %q, want distroless/static or scratch", b)
	}
	users := commandsOf[*instructions.UserCommand](final)
	if len(users) == 0 || !regexp.MustCompile(`^65532(:65532)?$`).MatchString(users[len(users)-1].User) {
		t.Errorf("runtime USER = %v, want 65532", users)
	}
	env := map[string]string{}
	for _, e := range commandsOf[*instructions.EnvCommand](final) {
		for _, kv := range e.Env {
			env[kv.Key] = kv.Value
		}
	}
	if env["ENROLLSTATUS_DATA_DIR"] != "/data" {
		t.Errorf("ENROLLSTATUS_DATA_DIR = %q, want /data", env["ENROLLSTATUS_DATA_DIR"])
	}
	var names []string
	for k := range env {
		names = append(names, k)
	}
	checkEnvNames(t, "the Dockerfile", names)
	vols := commandsOf[*instructions.VolumeCommand](final)
	if len(vols) != 1 || !slices.Equal(vols[0].Volumes, []string{"/data"}) {
		t.Errorf("VOLUME = %v, want [/data]", vols)
	}
	exposes := commandsOf[*instructions.ExposeCommand](final)
	if len(exposes) != 1 || !slices.Equal(exposes[0].Ports, []string{"8080"}) {
		t.Errorf("EXPOSE = %v, want 8080", exposes)
	}
	if hc := commandsOf[*instructions.HealthCheckCommand](final); len(hc) != 1 {
		t.Error("the runtime stage has no HEALTHCHECK instruction")
	} else if test := hc[0].Health.Test; len(test) < 3 || test[0] != "CMD" || test[2] != "probe" {
		t.Errorf("HEALTHCHECK %v: want the exec form of `enrollstatus probe` (there is no shell)", test)
	}
	eps := commandsOf[*instructions.EntrypointCommand](final)
	cmds := commandsOf[*instructions.CmdCommand](final)
	if len(eps) != 1 || eps[0].PrependShell || len(cmds) != 1 || !slices.Equal(cmds[0].CmdLine, []string{"serve"}) {
		t.Fatalf("want an exec-form ENTRYPOINT and CMD [\"serve\"], got %v / %v", eps, cmds)
	}
	entry := eps[0].CmdLine[0]
	copied := false
	for _, c := range commandsOf[*instructions.CopyCommand](final) {
		if c.From == build.Name && c.DestPath == entry {
			copied = true
		}
	}
	if !copied {
		t.Errorf("ENTRYPOINT %s is not copied from the %q stage", entry, build.Name)
	}
}

// TestDockerBuildContext reproduces the image build without a Docker
// engine: the context that Dockerfile.dockerignore leaves is copied out, the
// builder stage's RUN commands run in it, and the binary must be static and
// stripped.
func TestDockerBuildContext(t *testing.T) {
	bin := serviceBinary(t)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary asks for a dynamic loader: it would not start on distroless/static")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the binary links shared libraries: %v", libs)
	}
	for _, s := range []string{".symtab", ".debug_info", ".zdebug_info"} {
		if f.Section(s) != nil {
			t.Errorf("the binary has a %s section: -ldflags \"-s -w\" not applied", s)
		}
	}

	ctxFiles := dockerContext(t)
	for _, need := range []string{"go.mod", "go.sum", "cmd/enrollstatus/main.go"} {
		if !ctxFiles[need] {
			t.Errorf("the build context lacks %s", need)
		}
	}
	for file := range ctxFiles {
		for _, leak := range []string{".git/", ".cache/", "data/", "deploy/"} {
			if strings.HasPrefix(file, leak) {
				t.Errorf("the build context holds %s (dockerignore misses %s)", file, leak)
			}
		}
	}
}

// TestImageRuntime runs the built binary as the image would: as uid 65532
// in a root directory holding nothing but the binary and /data (chroot;
// needs root, as CI has), with an empty environment but the image's ENV. It
// starts the demo (an embedded broker on loopback) and checks /healthz and
// /readyz, so the binary needs no libc, no /etc and no writable root.
func TestImageRuntime(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chroot needs root")
	}
	bin := serviceBinary(t)
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "usr/local/bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := copyFile(bin, filepath.Join(root, "usr/local/bin/enrollstatus"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"data", "tmp"} {
		p := filepath.Join(root, d)
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, runtimeUID, runtimeUID); err != nil {
			t.Fatal(err)
		}
	}
	// The root itself must not be writable by the service (readOnlyRootFilesystem).
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/usr/local/bin/enrollstatus", "demo",
		"--http-addr", "127.0.0.1:0", "--broker-addr", "127.0.0.1:0",
		"--history", "200", "--users", "20", "--courses", "5", "--rate", "0")
	cmd.Env = []string{"ENROLLSTATUS_DATA_DIR=/data", "ENROLLSTATUS_LOG_FORMAT=json"}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Chroot:     root,
		Credential: &syscall.Credential{Uid: runtimeUID, Gid: runtimeUID},
		Setpgid:    true,
	}
	cmd.Dir = "/"
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start in chroot as %d: %v", runtimeUID, err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}()

	// The demo prints "API:     http://<addr>/api/...".
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		re := regexp.MustCompile(`API:\s+http://([^/]+)/`)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
		close(addr)
	}()
	var base string
	select {
	case a, ok := <-addr:
		if !ok {
			t.Fatalf("the demo exited before listening:\n%s", stderr.String())
		}
		base = "http://" + a
	case <-ctx.Done():
		t.Fatalf("the demo did not start:\n%s", stderr.String())
	}
	if code := httpStatus(t, base+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d", code)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		code := httpStatus(t, base+"/readyz")
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still %d after 60s:\n%s", code, stderr.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The image's HEALTHCHECK command, as Docker runs it: in the container,
	// as its user, against this instance.
	hc := healthCheck(t)
	for i, a := range hc {
		hc[i] = strings.Replace(a, "http://127.0.0.1:8080", base, 1)
	}
	probe := exec.CommandContext(ctx, hc[0], hc[1:]...)
	probe.Env = []string{}
	probe.SysProcAttr = &syscall.SysProcAttr{Chroot: root, Credential: &syscall.Credential{Uid: runtimeUID, Gid: runtimeUID}}
	probe.Dir = "/"
	if out, err := probe.CombinedOutput(); err != nil {
		t.Errorf("the HEALTHCHECK command %v fails in the image's root: %v\n%s", hc, err, out)
	}
	if _, err := os.Stat(filepath.Join(root, "data", "projection.db")); err != nil {
		t.Errorf("no projection in /data: %v", err)
	}
	entries, _ := os.ReadDir(root)
	for _, e := range entries {
		if n := e.Name(); n != "usr" && n != "data" && n != "tmp" {
			t.Errorf("the service wrote /%s outside its volumes", n)
		}
	}
}

func httpStatus(t *testing.T, url string) int {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// dockerContext lists the files (slash paths relative to the repository)
// that a build with context ".." sends, under Dockerfile.dockerignore, with
// the matcher Docker's own CLI and BuildKit use.
func dockerContext(t *testing.T) map[string]bool {
	t.Helper()
	files, err := contextFiles()
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func contextFiles() (map[string]bool, error) {
	f, err := os.Open(dockerignorePath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		return nil, err
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return nil, err
	}
	files := map[string]bool{}
	err = filepath.WalkDir(repoRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(repoRoot, path)
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		skip, err := pm.MatchesOrParentMatches(rel)
		if err != nil {
			return err
		}
		if skip {
			if d.IsDir() && !pm.Exclusions() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Type().IsRegular() {
			files[rel] = true
		}
		return nil
	})
	return files, err
}

// buildFromDockerContext copies the build context into dir/context, runs the
// Dockerfile's builder-stage RUN commands there with the stage's ENV (output
// paths under /out moved to dir/out), and returns the binary's path.
func buildFromDockerContext(dir string) (string, error) {
	files, err := contextFiles()
	if err != nil {
		return "", err
	}
	ctxDir, outDir := filepath.Join(dir, "context"), filepath.Join(dir, "out")
	for rel := range files {
		if err := copyFile(filepath.Join(repoRoot, filepath.FromSlash(rel)), filepath.Join(ctxDir, filepath.FromSlash(rel)), 0o644); err != nil {
			return "", err
		}
	}
	df, err := os.ReadFile(dockerfilePath)
	if err != nil {
		return "", err
	}
	res, err := parser.Parse(bytes.NewReader(df))
	if err != nil {
		return "", err
	}
	stages, _, err := instructions.Parse(res.AST, nil)
	if err != nil {
		return "", err
	}
	env := os.Environ()
	ran := 0
	for _, c := range stages[0].Commands {
		switch c := c.(type) {
		case *instructions.EnvCommand:
			for _, kv := range c.Env {
				env = append(env, kv.Key+"="+kv.Value)
			}
		case *instructions.RunCommand:
			if !c.PrependShell {
				return "", errors.New("builder RUN in exec form: not reproduced")
			}
			script := strings.ReplaceAll(strings.Join(c.CmdLine, " "), "/out/", outDir+"/")
			cmd := exec.Command("sh", "-ec", script)
			cmd.Dir, cmd.Env = ctxDir, env
			if out, err := cmd.CombinedOutput(); err != nil {
				return "", fmt.Errorf("RUN %s: %v\n%s", script, err, out)
			}
			ran++
		}
	}
	if ran == 0 {
		return "", errors.New("the builder stage runs nothing")
	}
	bin := filepath.Join(outDir, "enrollstatus")
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("the builder stage made no /out/enrollstatus: %w", err)
	}
	return bin, nil
}

func copyFile(src, dst string, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// healthCheck is the exec form of the Dockerfile's HEALTHCHECK command.
func healthCheck(t *testing.T) []string {
	t.Helper()
	stages := parseDockerfile(t)
	hc := commandsOf[*instructions.HealthCheckCommand](stages[len(stages)-1])
	if len(hc) != 1 || len(hc[0].Health.Test) < 2 || hc[0].Health.Test[0] != "CMD" {
		t.Fatal("no exec-form HEALTHCHECK")
	}
	return slices.Clone(hc[0].Health.Test[1:])
}
