//go:build linux

package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/enrollstatus/enrollstatus/internal/reference"
)

// client talks to the service over real HTTP on loopback, as a mobile
// backend does: one JWT per user, like the LMS issues (HS256,
// preferred_username).
type client struct {
	http   *http.Client
	secret string
	admin  string

	mu     sync.Mutex
	tokens map[string]string
}

func newClient(secret, admin string) *client {
	return &client{secret: secret, admin: admin, tokens: map[string]string{},
		http: &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{
			MaxIdleConnsPerHost: 16, IdleConnTimeout: 30 * time.Second}}}
}

func (c *client) token(username string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if tok, ok := c.tokens[username]; ok {
		return tok
	}
	now := time.Now()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"preferred_username": username, "iat": now.Unix(), "exp": now.Add(3 * time.Hour).Unix(),
	}).SignedString([]byte(c.secret))
	if err != nil {
		panic(err)
	}
	c.tokens[username] = tok
	return tok
}

// apiEntry is one element of the API's answer (shared/docs/api.md).
type apiEntry struct {
	CourseID       string  `json:"course_id"`
	CourseName     *string `json:"course_name"`
	RecentlyActive bool    `json:"recently_active"`
}

var versions = []string{"v4", "v3", "v2", "v1", "v0.5"}

// answer is one status request's outcome.
type answer struct {
	code    int
	entries []apiEntry
	header  http.Header
	body    []byte
}

// status asks for username's enrollments status as that user, on a random
// API version and with either Authorization scheme the LMS accepts.
func (c *client) status(addr, username string, rng *rand.Rand) (answer, error) {
	u := "http://" + addr + "/api/mobile/" + versions[rng.IntN(len(versions))] + "/users/" +
		url.PathEscape(username) + "/enrollments_status/"
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return answer{}, err
	}
	scheme := "JWT "
	if rng.IntN(2) == 0 {
		scheme = "Bearer "
	}
	req.Header.Set("Authorization", scheme+c.token(username))
	resp, err := c.http.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return answer{}, err
	}
	a := answer{code: resp.StatusCode, header: resp.Header, body: body}
	if resp.StatusCode == http.StatusOK {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&a.entries); err != nil {
			return a, fmt.Errorf("%s: body %q: %w", u, body, err)
		}
		if a.entries == nil {
			return a, fmt.Errorf("%s: body %q: want a list", u, body)
		}
	}
	return a, nil
}

func (c *client) get(addr, path string, admin bool) (int, []byte, error) {
	return c.do(http.MethodGet, addr, path, admin)
}

func (c *client) do(method, addr, path string, admin bool) (int, []byte, error) {
	req, err := http.NewRequest(method, "http://"+addr+path, nil)
	if err != nil {
		return 0, nil, err
	}
	if admin {
		req.Header.Set("Authorization", "Bearer "+c.admin)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	return resp.StatusCode, body, err
}

// rebuildProgress is the part of GET /admin/rebuild the suite reads.
type rebuildProgress struct {
	Running    bool   `json:"running"`
	Phase      string `json:"phase"`
	Applied    uint64 `json:"messages_applied"`
	BulkLoaded uint64 `json:"messages_bulk_loaded"`
	Error      string `json:"error"`
	Finished   string `json:"finished"`
}

// rebuild rebuilds a service's projection online from the topics and
// returns its final progress.
func (c *client) rebuild(addr string, timeout time.Duration) (rebuildProgress, error) {
	var pr rebuildProgress
	code, body, err := c.do(http.MethodPost, addr, "/admin/rebuild", true)
	if err != nil {
		return pr, err
	}
	if code != http.StatusAccepted {
		return pr, fmt.Errorf("POST /admin/rebuild: %d %s", code, body)
	}
	var last error
	err = waitFor(timeout, func() bool {
		code, body, err := c.get(addr, "/admin/rebuild", true)
		if err != nil || code != http.StatusOK {
			last = fmt.Errorf("GET /admin/rebuild: %d %s %v", code, body, err)
			return false
		}
		pr = rebuildProgress{}
		if last = json.Unmarshal(body, &pr); last != nil {
			return false
		}
		return !pr.Running && pr.Finished != ""
	})
	if err != nil {
		return pr, fmt.Errorf("%w (last: %v, progress %+v)", err, last, pr)
	}
	if pr.Error != "" {
		return pr, fmt.Errorf("rebuild failed: %s", pr.Error)
	}
	return pr, nil
}

// inspection is the part of /admin/inspect the suite reads.
type inspection struct {
	Applied    uint64 `json:"messages_applied"`
	Digest     string `json:"digest"`
	Partitions []struct {
		Partition string `json:"partition"`
		Next      int64  `json:"next_offset"`
		End       int64  `json:"end_offset"`
		Lag       int64  `json:"lag"`
		Failed    string `json:"failed"`
	} `json:"partitions"`
}

func (c *client) inspect(addr string, digest bool) (inspection, error) {
	var in inspection
	path := "/admin/inspect"
	if digest {
		path += "?digest=true"
	}
	code, body, err := c.get(addr, path, true)
	if err != nil {
		return in, err
	}
	if code != http.StatusOK {
		return in, fmt.Errorf("GET %s: %d %s", path, code, body)
	}
	return in, json.Unmarshal(body, &in)
}

// metrics returns the samples of the Prometheus text exposition, keyed by
// name{labels} as exposed.
func (c *client) metrics(addr string) (map[string]float64, error) {
	code, body, err := c.get(addr, "/metrics", false)
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %d", code)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out, nil
}

// sumMetric adds the samples of one metric name (all label sets).
func sumMetric(m map[string]float64, name string) (float64, bool) {
	total, found := 0.0, false
	for k, v := range m {
		if k == name || strings.HasPrefix(k, name+"{") {
			total += v
			found = true
		}
	}
	return total, found
}

// ---------------------------------------------------------------------------
// Comparing with the reference

// checkUser is one username to ask about and whom it should find: the user
// id whose current name it is, or 0 when nobody (an old name, a name no
// event carried, a retired user): then the answer is 200 [].
type checkUser struct {
	username string
	userID   int64
}

// checks lists every name every generated user ever had.
func checks(h *history) []checkUser {
	var out []checkUser
	for _, u := range h.users {
		for _, n := range u.names {
			out = append(out, checkUser{n.name, u.id})
		}
	}
	return out
}

// comparison is what one round of compareAll saw.
type comparison struct {
	answers    int // users asked about
	nonEmpty   int // answers with at least one course
	entries    int // courses in all answers
	recent     int // entries recently active
	nullNames  int // entries whose course_name is null
	mismatches []string
}

// compareAll asks the service about every user, in parallel, and compares
// each answer with the reference at the `now` taken just before its request.
func compareAll(c *client, addr string, x *expectation, users []checkUser, seed uint64) comparison {
	var (
		mu   sync.Mutex
		out  = comparison{answers: len(users)}
		next atomic.Int64
		wg   sync.WaitGroup
	)
	for w := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			for {
				i := int(next.Add(1) - 1)
				if i >= len(users) {
					return
				}
				cu := users[i]
				id := cu.userID
				if x.usernames[id] != cu.username {
					id = 0 // not (or no longer) this user's name
				}
				now := time.Now()
				a, err := c.status(addr, cu.username, rng)
				var want []reference.Entry
				if id != 0 {
					want = x.status(id, now)
				} else {
					want = []reference.Entry{}
				}
				msg := diffAnswer(a, err, want)
				mu.Lock()
				if msg != "" {
					out.mismatches = append(out.mismatches, fmt.Sprintf("%q (id %d): %s", cu.username, cu.userID, msg))
				}
				if len(a.entries) > 0 {
					out.nonEmpty++
				}
				for _, e := range a.entries {
					out.entries++
					if e.RecentlyActive {
						out.recent++
					}
					if e.CourseName == nil {
						out.nullNames++
					}
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return out
}

func diffAnswer(a answer, err error, want []reference.Entry) string {
	if err != nil {
		return err.Error()
	}
	if a.code != http.StatusOK {
		return fmt.Sprintf("status %d: %s", a.code, a.body)
	}
	for _, h := range []string{"X-Enrollstatus-Last-Event-Time", "X-Enrollstatus-Committed-At", "X-Enrollstatus-Lag", "X-Enrollstatus-Stale"} {
		if _, ok := a.header[h]; !ok {
			return "no " + h + " header"
		}
	}
	same := len(a.entries) == len(want)
	for i := 0; same && i < len(want); i++ {
		g, w := a.entries[i], want[i]
		same = g.CourseID == w.CourseID && g.RecentlyActive == w.RecentlyActive &&
			(g.CourseName == nil) == (w.CourseName == nil) && (g.CourseName == nil || *g.CourseName == *w.CourseName)
	}
	if same {
		return ""
	}
	wb, _ := json.Marshal(toAPI(want))
	return fmt.Sprintf("got %s, want %s", a.body, wb)
}

func toAPI(es []reference.Entry) []apiEntry {
	out := make([]apiEntry, 0, len(es))
	for _, e := range es {
		out = append(out, apiEntry{e.CourseID, e.CourseName, e.RecentlyActive})
	}
	return out
}

// ---------------------------------------------------------------------------
// Background load

// prober asks the current primary about random users all along, to prove
// that answers are 200 whenever a process is up (through crashes, broker
// outages and catch-up), never 5xx.
type prober struct {
	c     *client
	addr  func() string
	names []string
	stop  chan struct{}
	done  chan struct{}

	ok, down atomic.Int64
	mu       sync.Mutex
	bad      []string
}

func startProber(c *client, addr func() string, names []string) *prober {
	p := &prober{c: c, addr: addr, names: names, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		rng := rand.New(rand.NewPCG(1, 2))
		for {
			select {
			case <-p.stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			addr := p.addr()
			if addr == "" {
				p.down.Add(1)
				continue
			}
			a, err := p.c.status(addr, p.names[rng.IntN(len(p.names))], rng)
			var ne net.Error
			switch {
			case err != nil && a.code == 0 && !(errors.As(err, &ne) && ne.Timeout()):
				p.down.Add(1) // refused or reset: the process was killed under us
			case err != nil || a.code != http.StatusOK:
				p.mu.Lock()
				if len(p.bad) < 20 {
					p.bad = append(p.bad, fmt.Sprintf("%d %v %s", a.code, err, a.body))
				}
				p.mu.Unlock()
			default:
				p.ok.Add(1)
			}
		}
	}()
	return p
}

func (p *prober) finish() {
	close(p.stop)
	<-p.done
}
