package consumer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"
)

// errRegistryUnavailable is wrapped when the registry cannot give a writer
// schema (unreachable, an error status, an unknown id, a schema that does not
// parse): the message is decoded with the built-in schema instead.
var errRegistryUnavailable = errors.New("schema registry unavailable")

const (
	// maxSchemaBytes bounds a registry response; openedx-events schemas are
	// a few kilobytes.
	maxSchemaBytes = 1 << 20
	// maxSchemaEntries bounds the cache by schema id. Real registries hold a
	// few ids per event type; a stream of random ids must not grow it.
	maxSchemaEntries = 4096
)

// registry looks writer schemas up in a Confluent-compatible schema registry
// and caches them by id, failures included for a while, so that neither an
// outage nor a stream of unknown ids costs a request per message.
type registry struct {
	base       string // without a trailing slash
	user, pass string
	client     *http.Client
	timeout    time.Duration
	retryAfter time.Duration
	now        func() time.Time
	log        *slog.Logger
	requests   *prometheus.CounterVec
	compat     *avro.SchemaCompatibility
	inflight   singleflight.Group

	mu sync.Mutex
	// downUntil: the registry failed as a whole (unreachable, 5xx); it is not
	// asked again before then.
	downUntil time.Time
	schemas   map[uint32]*writerSchema
	readable  map[resolvedKey]resolution
}

// writerSchema is a cached lookup: a schema, or a failure kept until retry.
type writerSchema struct {
	schema avro.Schema
	err    error
	retry  time.Time
}

type resolvedKey struct {
	id     uint32
	ceType string
}

type resolution struct {
	schema avro.Schema
	err    error
}

func newRegistry(opts AvroOptions, log *slog.Logger, requests *prometheus.CounterVec) (*registry, error) {
	u, err := url.Parse(opts.RegistryURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("schema registry URL %q: want http(s)://host:port", opts.RegistryURL)
	}
	r := &registry{
		base:       strings.TrimRight(opts.RegistryURL, "/"),
		user:       opts.RegistryUsername,
		pass:       opts.RegistryPassword,
		client:     opts.HTTPClient,
		timeout:    opts.RegistryTimeout,
		retryAfter: opts.RegistryRetryAfter,
		now:        opts.Now,
		log:        log,
		requests:   requests,
		compat:     avro.NewSchemaCompatibility(),
		schemas:    map[uint32]*writerSchema{},
		readable:   map[resolvedKey]resolution{},
	}
	if r.client == nil {
		r.client = &http.Client{}
	}
	if r.timeout <= 0 {
		r.timeout = 5 * time.Second
	}
	if r.retryAfter <= 0 {
		r.retryAfter = 30 * time.Second
	}
	if r.now == nil {
		r.now = time.Now
	}
	return r, nil
}

// resolved returns the schema that reads a record written with schema id into
// the built-in schema of bt: an error wrapping errRegistryUnavailable when the
// writer schema is not to be had, any other error when it cannot be read as bt.
func (r *registry) resolved(bt *builtinType, id uint32) (avro.Schema, error) {
	key := resolvedKey{id, bt.ceType}
	r.mu.Lock()
	res, ok := r.readable[key]
	r.mu.Unlock()
	if ok {
		return res.schema, res.err
	}
	w, err := r.writer(id)
	if err != nil {
		return nil, err
	}
	res = r.resolve(bt, id, w)
	r.mu.Lock()
	if len(r.readable) < maxSchemaEntries {
		r.readable[key] = res
	}
	r.mu.Unlock()
	return res.schema, res.err
}

func (r *registry) resolve(bt *builtinType, id uint32, w avro.Schema) resolution {
	if w.Fingerprint() == bt.schema.Fingerprint() {
		return resolution{schema: bt.schema}
	}
	if name, want := fullName(w), bt.ceType+".CloudEvent"; name != want {
		return resolution{err: fmt.Errorf("writer schema id %d is %s, not %s", id, name, want)}
	}
	s, err := r.compat.Resolve(bt.schema, w)
	if err != nil {
		return resolution{err: fmt.Errorf("writer schema id %d cannot be read with the built-in schema of %s: %w", id, bt.ceType, err)}
	}
	return resolution{schema: s}
}

// writer returns the writer schema of id, from the cache or the registry.
func (r *registry) writer(id uint32) (avro.Schema, error) {
	now := r.now()
	r.mu.Lock()
	if e, ok := r.schemas[id]; ok && (e.schema != nil || now.Before(e.retry)) {
		r.mu.Unlock()
		return e.schema, e.err
	}
	if now.Before(r.downUntil) {
		r.mu.Unlock()
		return nil, fmt.Errorf("%w: not retried before %s", errRegistryUnavailable, r.downUntil.UTC().Format(time.RFC3339))
	}
	r.mu.Unlock()

	// One request per id however many partitions wait for it.
	v, _, _ := r.inflight.Do(strconv.FormatUint(uint64(id), 10), func() (any, error) {
		s, whole, err := r.fetch(id)
		e := &writerSchema{schema: s}
		r.mu.Lock()
		defer r.mu.Unlock()
		if err != nil {
			e.err = fmt.Errorf("%w: %w", errRegistryUnavailable, err)
			e.retry = r.now().Add(r.retryAfter)
			r.log.Warn("schema registry lookup failed: decoding with the built-in schemas meanwhile",
				"schema_id", id, "err", err, "retry_after", r.retryAfter)
			if whole {
				r.downUntil = e.retry
				return e, nil // not cached by id: the registry is what failed
			}
		}
		if len(r.schemas) >= maxSchemaEntries {
			r.evictFailures()
		}
		if len(r.schemas) < maxSchemaEntries {
			r.schemas[id] = e
		}
		return e, nil
	})
	e := v.(*writerSchema)
	return e.schema, e.err
}

// evictFailures drops the cached failures; r.mu is held.
func (r *registry) evictFailures() {
	for id, e := range r.schemas {
		if e.schema == nil {
			delete(r.schemas, id)
		}
	}
}

// fetch asks the registry for the schema of id (GET /schemas/ids/{id}). whole
// reports a failure of the registry itself rather than of this id.
func (r *registry) fetch(id uint32) (s avro.Schema, whole bool, err error) {
	result := "error"
	defer func() { r.requests.WithLabelValues(result).Inc() }()

	ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/schemas/ids/%d", r.base, id), nil)
	if err != nil {
		return nil, true, err
	}
	req.Header.Set("Accept", "application/vnd.schemaregistry.v1+json, application/vnd.schemaregistry+json; q=0.9, application/json; q=0.8")
	if r.user != "" || r.pass != "" {
		req.SetBasicAuth(r.user, r.pass)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, true, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxSchemaBytes+1))
	if err != nil {
		return nil, true, fmt.Errorf("reading schema id %d: %w", id, err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		result = "not_found"
		return nil, false, fmt.Errorf("schema id %d: not found (%s)", id, truncate(strings.TrimSpace(string(body)), 200))
	case resp.StatusCode != http.StatusOK:
		return nil, true, fmt.Errorf("schema id %d: HTTP %s", id, resp.Status)
	case len(body) > maxSchemaBytes:
		result = "invalid"
		return nil, false, fmt.Errorf("schema id %d: response exceeds %d bytes", id, maxSchemaBytes)
	}
	var doc struct {
		Schema     string `json:"schema"`
		SchemaType string `json:"schemaType"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		result = "invalid"
		return nil, false, fmt.Errorf("schema id %d: response: %w", id, err)
	}
	if doc.SchemaType != "" && doc.SchemaType != "AVRO" {
		result = "invalid"
		return nil, false, fmt.Errorf("schema id %d is a %s schema, not Avro", id, doc.SchemaType)
	}
	s, err = parseSchema([]byte(doc.Schema))
	if err != nil {
		result = "invalid"
		return nil, false, fmt.Errorf("schema id %d: %w", id, err)
	}
	result = "ok"
	return s, false, nil
}
