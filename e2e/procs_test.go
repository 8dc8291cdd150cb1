//go:build linux

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// suite is the running infrastructure: a broker, a schema registry, the
// binaries and scripts, and the child processes, each in its own process
// group and killed when the test ends (or, by the kernel, when the test
// process dies: PR_SET_PDEATHSIG).
type suite struct {
	t          *testing.T
	root       string // repository root
	work       string // everything this run writes
	py         string // the producer venv's python
	bin        string // the enrollstatus binary
	kafkaDir   string
	bootstrap  string
	registry   string
	secret     string
	admin      string
	partitions map[string]int // topic -> partitions, as created

	// ctx ends when the test does: commands still running are killed then
	ctx    context.Context
	spawnc chan func()
	mu     sync.Mutex
	procs  map[*proc]bool
}

// Topics and their partition counts: every topic the service reads by
// default, several partitions each.
var initialTopics = map[string]int{
	"dev-learning-course-enrollment-lifecycle": 4,
	"dev-course-unenrollment-lifecycle":        2,
	"dev-course-catalog-info-changed":          2,
	"dev-analytics":                            3,
	"dev-enrollstatus-events":                  3,
}

const jsonTopic = "dev-enrollstatus-events"

func topicList() []string {
	var ts []string
	for t := range initialTopics {
		ts = append(ts, t)
	}
	sort.Strings(ts)
	return ts
}

// newSuite checks the tools, builds or finds the binary and the producer,
// starts the broker, creates the topics and starts the schema registry.
func newSuite(ctx context.Context, t *testing.T) *suite {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	s := &suite{t: t, root: root, secret: "e2e-jwt-secret-" + strconv.FormatInt(time.Now().UnixNano(), 36),
		admin: "e2e-admin-token-0123456789abcdefghijklmnopqrstuvwxyz", procs: map[*proc]bool{},
		partitions: map[string]int{}, spawnc: make(chan func()), ctx: ctx}
	for _, tool := range []string{"java", "kcat", "bash"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: run the suite with scripts/e2e.sh, which installs what it needs", tool)
		}
	}
	s.work = os.Getenv("E2E_WORKDIR")
	if s.work == "" {
		if s.work, err = os.MkdirTemp("", "enrollstatus-e2e-"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("kept the run's files (logs, data, history) in %s", s.work)
				return
			}
			os.RemoveAll(s.work)
		})
	}
	for _, d := range []string{"logs", "pids", "history", "data"} {
		if err := os.MkdirAll(filepath.Join(s.work, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}

	// One goroutine, locked to its OS thread for the whole test, starts every
	// child: PR_SET_PDEATHSIG fires when the *thread* that forked exits, and
	// this one exits only when the suite is done (after every child was
	// killed), so nothing outlives the test even if it dies.
	go func() {
		runtime.LockOSThread()
		for f := range s.spawnc {
			f()
		}
	}()
	t.Cleanup(func() {
		s.mu.Lock()
		ps := make([]*proc, 0, len(s.procs))
		for p := range s.procs {
			ps = append(ps, p)
		}
		s.mu.Unlock()
		for _, p := range ps {
			p.kill()
		}
		close(s.spawnc)
	})

	s.py = os.Getenv("E2E_PY")
	if s.py == "" {
		out, err := s.run(10*time.Minute, "setup.sh", filepath.Join(root, "e2e/producer/setup.sh"))
		if err != nil {
			t.Fatalf("producer venv: %v", err)
		}
		s.py = strings.TrimSpace(out)
	}
	s.bin = os.Getenv("E2E_BIN")
	if s.bin == "" {
		s.bin = filepath.Join(s.work, "enrollstatus")
		if _, err := s.run(10*time.Minute, "go build", "go", "build", "-o", s.bin, "./cmd/enrollstatus"); err != nil {
			t.Fatalf("build: %v", err)
		}
	}

	s.kafkaDir = filepath.Join(s.work, "kafka")
	s.startReaper()
	out, err := s.run(3*time.Minute, "kafka.sh start", s.kafkaScript(), "start", "--port", "0", "--dir", s.kafkaDir)
	t.Cleanup(s.stopBroker)
	if err != nil {
		t.Fatalf("broker: %v", err)
	}
	s.bootstrap = strings.TrimSpace(out)
	t.Logf("broker at %s (dir %s)", s.bootstrap, s.kafkaDir)

	var wg sync.WaitGroup
	errs := make(chan error, len(initialTopics))
	for topic, n := range initialTopics {
		s.partitions[topic] = n
		wg.Go(func() {
			if _, err := s.run(2*time.Minute, "create-topic", s.kafkaScript(), "create-topic", topic, strconv.Itoa(n), "--dir", s.kafkaDir); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("topics: %v", err)
	}

	portFile := filepath.Join(s.work, "registry.port")
	if _, err := s.spawn("registry", filepath.Join(s.work, "logs", "registry.log"), s.py,
		filepath.Join(root, "e2e/producer/registry.py"), "--port", "0", "--port-file", portFile,
		"--store", filepath.Join(s.work, "registry.json")); err != nil {
		t.Fatalf("registry: %v", err)
	}
	if err := waitFor(30*time.Second, func() bool { b, _ := os.ReadFile(portFile); return len(bytes.TrimSpace(b)) > 0 }); err != nil {
		t.Fatalf("registry did not write its port: %v", err)
	}
	port, _ := os.ReadFile(portFile)
	s.registry = "http://127.0.0.1:" + strings.TrimSpace(string(port))
	return s
}

// startReaper starts a watchdog that stops the broker if this test process
// dies without its cleanups (a `go test -timeout` panic, a SIGKILL): the
// broker runs in its own session (kafka.sh starts it with setsid), so
// neither the process group nor PR_SET_PDEATHSIG reaches it. A normal end
// stops the broker first, then kills the watchdog.
func (s *suite) startReaper() {
	cmd := exec.Command("bash", "-c", `while kill -0 "$1" 2>/dev/null; do sleep 1; done; exec "$2" stop --kill --dir "$3"`,
		"e2e-reaper", strconv.Itoa(os.Getpid()), s.kafkaScript(), s.kafkaDir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("broker watchdog: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	s.t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // its session's group: bash and its sleep
		<-done
	})
}

func (s *suite) kafkaScript() string { return filepath.Join(s.root, "scripts/kafka.sh") }

// stopBroker stops the broker by its pid (kafka.sh checks the pid is this
// dir's broker), and kills it outright if the script fails.
func (s *suite) stopBroker() {
	if _, err := s.runCtx(context.Background(), time.Minute, "kafka.sh stop", nil, s.kafkaScript(), "stop", "--dir", s.kafkaDir); err != nil {
		s.t.Logf("kafka.sh stop: %v; killing the broker by its pid file", err)
		if b, err := os.ReadFile(filepath.Join(s.kafkaDir, "kafka.pid")); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
}

// kafka runs a kafka.sh subcommand on this suite's broker.
func (s *suite) kafka(timeout time.Duration, args ...string) error {
	_, err := s.run(timeout, "kafka.sh "+args[0], s.kafkaScript(), append(args, "--dir", s.kafkaDir)...)
	return err
}

// childEnv is the environment of children: the test's, without settings of
// the service (ENROLLSTATUS_*) that would override the suite's flags.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ENROLLSTATUS_") {
			env = append(env, kv)
		}
	}
	return env
}

// run runs a short-lived command in the repository root and returns its
// stdout; stderr goes to the run's log and, on failure, into the error.
func (s *suite) run(timeout time.Duration, label, name string, args ...string) (string, error) {
	return s.runCtx(s.ctx, timeout, label, nil, name, args...)
}

func (s *suite) runInput(timeout time.Duration, label string, stdin []byte, name string, args ...string) (string, error) {
	return s.runCtx(s.ctx, timeout, label, stdin, name, args...)
}

func (s *suite) runCtx(ctx context.Context, timeout time.Duration, label string, stdin []byte, name string, args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	var cmd *exec.Cmd
	done := make(chan error, 1)
	started := make(chan error, 1)
	s.spawnc <- func() {
		cmd = exec.Command(name, args...)
		cmd.Dir, cmd.Env = s.root, childEnv()
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if stdin != nil {
			cmd.Stdin = bytes.NewReader(stdin)
		}
		started <- cmd.Start()
	}
	if err := <-started; err != nil {
		return "", fmt.Errorf("%s: %w", label, err)
	}
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(timeout):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		err = fmt.Errorf("timed out after %v", timeout)
	case <-ctx.Done():
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		err = fmt.Errorf("aborted: %w", ctx.Err())
	}
	s.appendLog("commands.log", fmt.Sprintf("== %s: %s %s (%v)\n%s", label, name, strings.Join(args, " "), err, stderr.String()))
	if err != nil {
		return stdout.String(), fmt.Errorf("%s: %w\n%s", label, err, tail(stderr.String(), 40))
	}
	return stdout.String(), nil
}

func (s *suite) appendLog(name, text string) {
	f, err := os.OpenFile(filepath.Join(s.work, "logs", name), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	f.WriteString(text)
}

func tail(s string, lines int) string {
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}

func tailFile(path string, lines int) string {
	b, _ := os.ReadFile(path)
	return tail(string(b), lines)
}

// proc is a long-running child in its own process group.
type proc struct {
	s    *suite
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

// spawn starts a long-running child whose stdout and stderr go to logPath,
// and records its pid under pids/ so scripts/e2e.sh can kill what a crashed
// test left behind.
func (s *suite) spawn(name, logPath string, bin string, args ...string) (*proc, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	p := &proc{s: s, name: name, log: logPath, done: make(chan struct{})}
	started := make(chan error, 1)
	s.spawnc <- func() {
		p.cmd = exec.Command(bin, args...)
		p.cmd.Dir, p.cmd.Env = s.root, childEnv()
		p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		p.cmd.Stdout, p.cmd.Stderr = f, f
		started <- p.cmd.Start()
	}
	if err := <-started; err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	pidFile := filepath.Join(s.work, "pids", fmt.Sprintf("%s.%d.pid", name, p.cmd.Process.Pid))
	os.WriteFile(pidFile, []byte(strconv.Itoa(p.cmd.Process.Pid)), 0o644)
	s.mu.Lock()
	s.procs[p] = true
	s.mu.Unlock()
	go func() {
		p.err = p.cmd.Wait()
		f.Close()
		os.Remove(pidFile)
		s.mu.Lock()
		delete(s.procs, p)
		s.mu.Unlock()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill sends SIGKILL to the process group and waits for the exit.
func (p *proc) kill() {
	if !p.exited() {
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	}
	<-p.done
}

// stop sends SIGTERM and waits up to timeout, then kills; it returns the
// process's exit error (nil: exit status 0).
func (p *proc) stop(timeout time.Duration) error {
	if !p.exited() {
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	}
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		p.kill()
		return fmt.Errorf("%s did not stop within %v of SIGTERM; killed", p.name, timeout)
	}
}

func waitFor(timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %v", timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}

// ---------------------------------------------------------------------------
// The service

// service is one replica: a data dir and successive processes on it.
type service struct {
	s        *suite
	name     string
	dataDir  string
	registry bool     // use --schema-registry-url
	extra    []string // more flags of every process

	mu    sync.Mutex
	p     *proc
	addr  string
	runs  int
	kills int
}

func (s *suite) newService(name string, registry bool) *service {
	return &service{s: s, name: name, dataDir: filepath.Join(s.work, "data", name), registry: registry}
}

// start starts a process on the replica's data dir and returns at once; the
// address it listens on is known once its log says so (waitListening).
func (sv *service) start(topics []string) error {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	if sv.p != nil && !sv.p.exited() {
		return fmt.Errorf("%s is already running", sv.name)
	}
	sv.runs++
	args := []string{"serve",
		"--brokers", sv.s.bootstrap,
		"--topics", strings.Join(topics, ","),
		"--data-dir", sv.dataDir,
		"--http-addr", "127.0.0.1:0",
		"--jwt-secret", sv.s.secret,
		"--admin-token", sv.s.admin,
		"--poll-interval", "1s",
		"--batch-wait", "100ms",
		"--ready-max-lag", "0",
		"--stale-lag", "1000",
		"--log-format", "json",
		"--shutdown-timeout", "10s",
	}
	if sv.registry {
		args = append(args, "--schema-registry-url", sv.s.registry)
	}
	args = append(args, sv.extra...)
	p, err := sv.s.spawn(sv.name, filepath.Join(sv.s.work, "logs", fmt.Sprintf("%s-%02d.log", sv.name, sv.runs)), sv.s.bin, args...)
	if err != nil {
		return err
	}
	sv.p, sv.addr = p, ""
	return nil
}

// waitListening waits until the running process logs its HTTP address.
func (sv *service) waitListening(timeout time.Duration) (string, error) {
	sv.mu.Lock()
	p := sv.p
	sv.mu.Unlock()
	deadline := time.Now().Add(timeout)
	for {
		if addr := listenAddr(p.log); addr != "" {
			sv.mu.Lock()
			if sv.p == p {
				sv.addr = addr
			}
			sv.mu.Unlock()
			return addr, nil
		}
		if p.exited() {
			return "", fmt.Errorf("%s exited (%v) before listening:\n%s", sv.name, p.err, tailFile(p.log, 30))
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("%s not listening after %v:\n%s", sv.name, timeout, tailFile(p.log, 30))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func listenAddr(logPath string) string {
	f, err := os.Open(logPath)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.Contains(line, []byte(`"HTTP API listening"`)) {
			continue
		}
		var l struct {
			Addr string `json:"addr"`
		}
		if json.Unmarshal(line, &l) == nil && l.Addr != "" {
			return l.Addr
		}
	}
	return ""
}

// currentAddr is the address of the running process, "" when there is none.
func (sv *service) currentAddr() string {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	if sv.p == nil || sv.p.exited() {
		return ""
	}
	return sv.addr
}

func (sv *service) proc() *proc {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	return sv.p
}

// crash kills the running process with SIGKILL. It fails if the process had
// already exited by itself.
func (sv *service) crash() error {
	p := sv.proc()
	if p.exited() {
		return fmt.Errorf("%s exited by itself (%v) before the kill:\n%s", sv.name, p.err, tailFile(p.log, 30))
	}
	p.kill()
	sv.mu.Lock()
	sv.kills++
	sv.addr = ""
	sv.mu.Unlock()
	return nil
}

// offline is what `enrollstatus inspect --data-dir` says about a stopped
// replica's file.
type offline struct {
	Applied uint64 `json:"messages_applied"`
	Offsets []struct {
		Partition string `json:"partition"`
		Next      int64  `json:"next_offset"`
	} `json:"offsets"`
}

func (sv *service) inspectOffline() (offline, error) {
	var o offline
	out, err := sv.s.run(time.Minute, "inspect", sv.s.bin, "inspect", "--data-dir", sv.dataDir)
	if err != nil {
		return o, err
	}
	err = json.Unmarshal([]byte(out), &o)
	return o, err
}

// ---------------------------------------------------------------------------
// Producers

// produced is produce.py's summary (e2e/README.md).
type produced struct {
	OK         bool           `json:"ok"`
	Events     int            `json:"events"`
	Delivered  int            `json:"delivered"`
	Topics     map[string]int `json:"topics"`
	Partitions map[string]int `json:"messages_per_partition"`
	Seconds    map[string]any `json:"seconds"`
}

// produce sends records through the real Open edX producer (produce.py) and
// requires every one to be acknowledged.
func (s *suite) produce(label string, recs []record, extra ...string) (produced, error) {
	var sum produced
	var buf bytes.Buffer
	for _, r := range recs {
		line, err := r.historyLine()
		if err != nil {
			return sum, err
		}
		buf.Write(line)
		buf.WriteByte('\n')
	}
	hist := filepath.Join(s.work, "history", label+".jsonl")
	if err := os.WriteFile(hist, buf.Bytes(), 0o644); err != nil {
		return sum, err
	}
	args := append([]string{filepath.Join(s.root, "e2e/producer/produce.py"), "--bootstrap", s.bootstrap,
		"--registry", s.registry, "--history", hist, "--deliveries", filepath.Join(s.work, "history", label+".deliveries")}, extra...)
	out, err := s.run(6*time.Minute, "produce "+label, s.py, args...)
	if jerr := json.Unmarshal([]byte(lastLine(out)), &sum); jerr != nil && err == nil {
		err = fmt.Errorf("produce %s: summary: %v: %q", label, jerr, out)
	}
	if err == nil && (!sum.OK || sum.Delivered != len(recs)) {
		err = fmt.Errorf("produce %s: %d of %d delivered: %s", label, sum.Delivered, len(recs), out)
	}
	return sum, err
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// kcat sends native JSON CloudEvents with kcat, one call per (type,
// partition), keyed, with the content-type and ce_type headers. It returns
// the number of messages per topic.
func (s *suite) kcat(recs []record) (map[string]int, error) {
	type group struct {
		ceType    string
		partition int
	}
	lines := map[group][]string{}
	var order []group
	for _, r := range recs {
		key, ceType, value, err := r.cloudEvent()
		if err != nil {
			return nil, err
		}
		g := group{ceType, r.Partition}
		if _, ok := lines[g]; !ok {
			order = append(order, g)
		}
		lines[g] = append(lines[g], key+"|"+string(value))
	}
	n := 0
	for _, g := range order {
		args := []string{"-P", "-b", s.bootstrap, "-t", jsonTopic, "-K", "|",
			"-H", "content-type=application/cloudevents+json", "-H", "ce_type=" + g.ceType,
			"-X", "message.timeout.ms=120000"}
		if g.partition >= 0 {
			args = append(args, "-p", strconv.Itoa(g.partition))
		}
		in := strings.Join(lines[g], "\n") + "\n"
		if _, err := s.runInput(3*time.Minute, "kcat "+g.ceType, []byte(in), "kcat", args...); err != nil {
			return nil, err
		}
		n += len(lines[g])
	}
	return map[string]int{jsonTopic: n}, nil
}

// logEnd reads every partition's end offset from the broker: as the topics
// started empty and nothing is deleted, their sum is the number of messages
// on the topics. A broker that has just restarted answers "not available"
// for a moment: that is retried.
func (s *suite) logEnd(ctx context.Context) (ends map[string]int64, total int64, err error) {
	deadline := time.Now().Add(time.Minute)
	for {
		ends, total, err = s.readEnds(ctx)
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			return ends, total, err
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func (s *suite) readEnds(ctx context.Context) (map[string]int64, int64, error) {
	c := &kafka.Client{Addr: kafka.TCP(s.bootstrap), Timeout: 20 * time.Second}
	meta, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: topicList()})
	if err != nil {
		return nil, 0, err
	}
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for _, t := range meta.Topics {
		if t.Error != nil {
			return nil, 0, fmt.Errorf("%s: %w", t.Name, t.Error)
		}
		for _, p := range t.Partitions {
			req.Topics[t.Name] = append(req.Topics[t.Name], kafka.LastOffsetOf(p.ID))
		}
	}
	resp, err := c.ListOffsets(ctx, req)
	if err != nil {
		return nil, 0, err
	}
	out, total := map[string]int64{}, int64(0)
	for topic, ps := range resp.Topics {
		for _, p := range ps {
			if p.Error != nil {
				return nil, 0, fmt.Errorf("%s/%d: %w", topic, p.Partition, p.Error)
			}
			out[fmt.Sprintf("%s/%d", topic, p.Partition)] = p.LastOffset
			total += p.LastOffset
		}
	}
	return out, total, nil
}

// logCount counts the lines of every log of the replica's processes that
// contain text.
func (sv *service) logCount(text string) int {
	files, _ := filepath.Glob(filepath.Join(sv.s.work, "logs", sv.name+"-*.log"))
	n := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err == nil {
			n += strings.Count(string(b), text)
		}
	}
	return n
}
