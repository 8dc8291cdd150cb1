package main

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/enrollstatus/enrollstatus/bench/loadgen"
)

// child is a process this driver started; stop ends it (and only it).
type child struct {
	cmd  *exec.Cmd
	done chan error
	log  string
}

// startChild starts bin with args, its output going to logPath.
func startChild(logPath, bin string, args ...string) (*child, error) {
	return startChildEnv(nil, logPath, bin, args...)
}

// startChildEnv is startChild with env added to this process's environment.
func startChildEnv(env []string, logPath, bin string, args ...string) (*child, error) {
	if err := os.MkdirAll(filepath.Dir(logPath), 0o750); err != nil {
		return nil, err
	}
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = childAttr()
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, err
	}
	c := &child{cmd: cmd, done: make(chan error, 1), log: logPath}
	go func() { c.done <- cmd.Wait(); f.Close() }()
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// stop sends SIGTERM and waits up to 20s, then SIGKILL.
func (c *child) stop() error {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-c.done:
		return err
	case <-time.After(20 * time.Second):
		_ = c.cmd.Process.Kill()
		return <-c.done
	}
}

// exited reports whether the child ended, and how.
func (c *child) exited() (bool, error) {
	select {
	case err := <-c.done:
		c.done <- err
		return true, err
	default:
		return false, nil
	}
}

// waitHTTP waits until GET url answers 200, the child exits, or the
// timeout; it asks every 20 ms, so that it can time how long a child takes
// to turn ready.
func waitHTTP(c *child, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: 2 * time.Second}
	for time.Now().Before(deadline) {
		if done, err := c.exited(); done {
			return fmt.Errorf("%s exited before it was ready (%v); see %s", c.cmd.Path, err, c.log)
		}
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready after %v; see %s", url, timeout, c.log)
}

// freePort returns a loopback address with a port free right now.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// The JWT settings of benchmark servers: HS256 as the LMS issues it.
const (
	benchSecret   = "bench-secret"
	benchIssuer   = "http://127.0.0.1:18000/oauth2"
	benchAudience = "openedx"
)

// lmsToken mints a token shaped like the LMS's (edx-drf-extensions'
// claims), so that the server parses a token of realistic size.
func lmsToken(user string, now time.Time, ttl time.Duration, secret string) string {
	claims := jwt.MapClaims{
		"aud": benchAudience, "iss": benchIssuer, "exp": now.Add(ttl).Unix(), "iat": now.Unix(),
		"preferred_username": user, "sub": fmt.Sprintf("%032x", rand.Uint64()), "email": user + "@example.com",
		"email_verified": true, "name": "Learner " + user, "given_name": "", "family_name": "",
		"administrator": false, "superuser": false, "version": "1.2.0", "scopes": []string{"read", "write", "email", "profile"},
		"filters": []string{"user:me"}, "is_restricted": false, "grant_type": "password",
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
	if err != nil {
		panic(err)
	}
	return s
}

// statusRequests pre-builds one request per sampled user, each with the
// user's own token, in random order.
func statusRequests(addr string, users, n int, seed uint64) []loadgen.Request {
	rng := rand.New(rand.NewPCG(seed, 0x70c))
	now := time.Now()
	reqs := make([]loadgen.Request, n)
	for i := range reqs {
		u := username(1 + rng.IntN(users))
		reqs[i] = loadgen.Request{Want: 200, Raw: loadgen.GetRequest(addr, "/api/mobile/v4/users/"+u+"/enrollments_status/",
			map[string]string{"Authorization": "JWT " + lmsToken(u, now, 2*time.Hour, benchSecret)})}
	}
	return reqs
}
