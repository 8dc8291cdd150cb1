package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/enrollstatus/enrollstatus/consumer"
	"github.com/enrollstatus/enrollstatus/internal/memlimit"
	"github.com/enrollstatus/enrollstatus/internal/pipeline"
	"github.com/enrollstatus/enrollstatus/projection"
	"github.com/enrollstatus/enrollstatus/store"
)

// Config is the service's whole configuration; DefaultConfig holds every
// default, bind exposes every field as a flag (and so an environment
// variable).
type Config struct {
	DataDir   string
	HTTPAddr  string
	LogFormat string
	LogLevel  string

	Window       time.Duration
	Limit        int
	MobileFilter string

	Brokers             listFlag
	Topics              listFlag
	ClientID            string
	BatchSize           int
	BatchWait           time.Duration
	CatchUpBatchSize    int
	CatchUpWait         time.Duration
	CatchUpMaxWrites    int
	PollInterval        time.Duration
	ReadyMaxLag         int64
	ReadyWithoutBrokers time.Duration
	PoisonPolicy        string
	DeadLetterTopic     string
	SchemaRegistryURL   string

	JWTSecrets  listFlag
	JWTIssuer   string
	JWTAudience listFlag
	JWKS        string
	JWKSFile    string
	JWKSURL     string
	JWTLeeway   time.Duration
	AdminToken  string
	StaleLag    int64

	ShutdownTimeout time.Duration
	MemoryLimitMiB  int
	BulkLoadEmpty   bool
	MergeCatchUpMin int64
	PprofAddr       string
}

// DefaultTopics are the topics an LMS with EVENT_BUS_TOPIC_PREFIX=dev
// publishes the events that matter on, plus this project's own native JSON
// topic. See testdata/README.md for where each name comes from.
var DefaultTopics = []string{
	"dev-learning-course-enrollment-lifecycle",
	"dev-course-unenrollment-lifecycle",
	"dev-course-catalog-info-changed",
	"dev-analytics",
	"dev-enrollstatus-events",
}

// DefaultConfig is the configuration when nothing is set.
func DefaultConfig() Config {
	p := projection.DefaultPolicy()
	cc := consumer.DefaultConfig()
	return Config{
		DataDir:             "data",
		HTTPAddr:            ":8080",
		LogFormat:           "json",
		LogLevel:            "info",
		Window:              p.Window,
		Limit:               p.Limit,
		MobileFilter:        string(p.Mobile),
		Topics:              append(listFlag(nil), DefaultTopics...),
		ClientID:            consumer.DefaultConfig().ClientID,
		BatchSize:           cc.BatchSize,
		BatchWait:           cc.BatchWait,
		CatchUpBatchSize:    cc.CatchUpBatchSize,
		CatchUpWait:         cc.CatchUpWait,
		CatchUpMaxWrites:    cc.CatchUpMaxWrites,
		PollInterval:        cc.PollInterval,
		ReadyMaxLag:         cc.ReadyMaxLag,
		ReadyWithoutBrokers: cc.ReadyWithoutBrokersAfter,
		JWTLeeway:           time.Second,
		StaleLag:            1000,
		ShutdownTimeout:     15 * time.Second,
		MemoryLimitMiB:      memlimit.DefaultMiB,
		BulkLoadEmpty:       true,
		MergeCatchUpMin:     100_000,
	}
}

// newFlagSet returns a flag set with every field of c bound.
func newFlagSet(c *Config) *flag.FlagSet {
	fs := flag.NewFlagSet("enrollstatus", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.bind(fs)
	return fs
}

// bind registers every field as a flag on fs.
func (c *Config) bind(fs *flag.FlagSet) {
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "directory of the projection file ("+store.FileName+")")
	fs.StringVar(&c.HTTPAddr, "http-addr", c.HTTPAddr, "address the HTTP API listens on")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "log format: json or text")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "log level: debug, info, warn or error")

	fs.DurationVar(&c.Window, "window", c.Window, "recently-active window (the LMS: 30 days)")
	fs.IntVar(&c.Limit, "limit", c.Limit, "enrollments considered per user, before the mobile filter (the LMS's USER_ENROLLMENTS_LIMIT)")
	fs.StringVar(&c.MobileFilter, "mobile-filter", c.MobileFilter, "mobile_available filter: known (drop courses known unavailable), strict (drop unknown too) or off")

	fs.Var(&c.Brokers, "brokers", "Kafka bootstrap brokers, comma-separated host:port")
	fs.Var(&c.Topics, "topics", "topics to consume, comma-separated")
	fs.StringVar(&c.ClientID, "client-id", c.ClientID, "the Kafka client id sent with every request to the brokers (fetches, metadata, offsets, the dead-letter writer), which their logs and quotas see (e.g. one per replica)")
	fs.IntVar(&c.BatchSize, "batch-size", c.BatchSize, "messages per store transaction, at most")
	fs.DurationVar(&c.BatchWait, "batch-wait", c.BatchWait, "how long a partial batch waits before it is committed")
	fs.IntVar(&c.CatchUpBatchSize, "catch-up-batch-size", c.CatchUpBatchSize, "messages per store transaction while more than --batch-size behind the head (catch-up, rebuild); 0: --batch-size")
	fs.DurationVar(&c.CatchUpWait, "catch-up-wait", c.CatchUpWait, "how long a catch-up batch may grow before it is committed")
	fs.IntVar(&c.CatchUpMaxWrites, "catch-up-max-writes", c.CatchUpMaxWrites, "records (distinct users + enrollments) per catch-up batch, at most: bounds a commit's memory")
	fs.DurationVar(&c.PollInterval, "poll-interval", c.PollInterval, "how often partitions are discovered and end offsets read")
	fs.Int64Var(&c.ReadyMaxLag, "ready-max-lag", c.ReadyMaxLag, "messages behind the start-up head at which /readyz turns ready")
	fs.DurationVar(&c.ReadyWithoutBrokers, "ready-without-brokers-after", c.ReadyWithoutBrokers, "turn ready after this long without reaching a broker when the store already holds a projection (stale answers beat none); 0: never")
	fs.StringVar(&c.PoisonPolicy, "poison-policy", c.PoisonPolicy, "undecodable messages: fail, skip or dead-letter (default: dead-letter if --dead-letter-topic is set, else skip)")
	fs.StringVar(&c.DeadLetterTopic, "dead-letter-topic", c.DeadLetterTopic, "topic undecodable messages are copied to")
	fs.StringVar(&c.SchemaRegistryURL, "schema-registry-url", c.SchemaRegistryURL, "Confluent-compatible schema registry for Avro writer schemas (optional: the Open edX schemas are built in)")

	fs.Var(&c.JWTSecrets, "jwt-secret", "HS256 secrets, comma-separated (the LMS's JWT_AUTH JWT_SECRET_KEY; several for rotation)")
	fs.StringVar(&c.JWTIssuer, "jwt-issuer", c.JWTIssuer, "required JWT issuer (JWT_AUTH JWT_ISSUER), empty: not checked")
	fs.Var(&c.JWTAudience, "jwt-audience", "accepted JWT audiences, comma-separated (JWT_AUTH JWT_AUDIENCE), empty: not checked")
	fs.StringVar(&c.JWKS, "jwks", c.JWKS, "JWK set, inline JSON, for RS256/ES256 tokens (JWT_AUTH JWT_PUBLIC_SIGNING_JWK_SET)")
	fs.StringVar(&c.JWKSFile, "jwks-file", c.JWKSFile, "JWK set file")
	fs.StringVar(&c.JWKSURL, "jwks-url", c.JWKSURL, "JWK set URL, fetched and refreshed")
	fs.DurationVar(&c.JWTLeeway, "jwt-leeway", c.JWTLeeway, "clock skew allowed on exp/nbf/iat")
	fs.StringVar(&c.AdminToken, "admin-token", c.AdminToken, "bearer token for the admin endpoints; empty: admin endpoints off")
	fs.Int64Var(&c.StaleLag, "stale-lag", c.StaleLag, "messages of lag above which answers are flagged stale")

	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "deadline for a graceful shutdown")
	fs.IntVar(&c.MemoryLimitMiB, "memory-limit-mib", c.MemoryLimitMiB, "the Go runtime's soft memory limit in MiB (GOMEMLIMIT wins when set); 0: none")
	fs.StringVar(&c.PprofAddr, "pprof-addr", c.PprofAddr, "address of a listener serving Go's profiles (net/http/pprof, /debug/pprof/), apart from the API and without authentication: keep it on loopback; empty: off")
	fs.BoolVar(&c.BulkLoadEmpty, "bulk-load-empty", c.BulkLoadEmpty, "catch an empty projection (a new replica) up with a rebuild's bulk load into a new file, swapped in when it reached the head; false: batch by batch from the start")
	fs.Int64Var(&c.MergeCatchUpMin, "merge-catch-up-min", c.MergeCatchUpMin, fmt.Sprintf("a projection that holds data and is at least this many messages, and at least 1/%d of the messages it applied, behind the head (a replica back from a long outage, a burst of events) catches up by merging its records with the backlog into a new file, swapped in when it reached the head, at start-up and while running; 0: batch by batch always", pipeline.MergeBacklogRatio))
}

// Validate says what to fix.
func (c *Config) Validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("--data-dir is empty"))
	}
	if c.Window <= 0 {
		errs = append(errs, fmt.Errorf("--window %v: must be positive", c.Window))
	}
	if c.Limit < 0 {
		errs = append(errs, fmt.Errorf("--limit %d: must not be negative", c.Limit))
	}
	if _, err := projection.ParseMobileFilter(c.MobileFilter); err != nil {
		errs = append(errs, fmt.Errorf("--mobile-filter: %w", err))
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		errs = append(errs, fmt.Errorf("--log-format %q: want json or text", c.LogFormat))
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		errs = append(errs, err)
	}
	if len(c.JWTSecrets) == 0 && c.JWKS == "" && c.JWKSFile == "" && c.JWKSURL == "" {
		errs = append(errs, errors.New("no way to verify tokens: set --jwt-secret (ENROLLSTATUS_JWT_SECRET) or a JWK set (--jwks, --jwks-file, --jwks-url)"))
	}
	if c.MemoryLimitMiB < 0 {
		errs = append(errs, fmt.Errorf("--memory-limit-mib %d: must not be negative", c.MemoryLimitMiB))
	}
	if c.MergeCatchUpMin < 0 {
		errs = append(errs, fmt.Errorf("--merge-catch-up-min %d: must not be negative", c.MergeCatchUpMin))
	}
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--shutdown-timeout %v: must be positive", c.ShutdownTimeout))
	}
	return errors.Join(errs...)
}

func (c *Config) storePath() string { return filepath.Join(c.DataDir, store.FileName) }

func (c *Config) policy() projection.Policy {
	f, _ := projection.ParseMobileFilter(c.MobileFilter)
	return projection.Policy{Window: c.Window, Limit: c.Limit, Mobile: f}
}

func (c *Config) consumerConfig() consumer.Config {
	cc := consumer.DefaultConfig()
	cc.Brokers = c.Brokers
	cc.Topics = c.Topics
	cc.ClientID = c.ClientID
	cc.BatchSize = c.BatchSize
	cc.BatchWait = c.BatchWait
	cc.CatchUpBatchSize = c.CatchUpBatchSize
	cc.CatchUpWait = c.CatchUpWait
	cc.CatchUpMaxWrites = c.CatchUpMaxWrites
	cc.PollInterval = c.PollInterval
	cc.ReadyMaxLag = c.ReadyMaxLag
	cc.ReadyWithoutBrokersAfter = c.ReadyWithoutBrokers
	cc.Poison = consumer.PoisonPolicy(c.PoisonPolicy)
	cc.DeadLetterTopic = c.DeadLetterTopic
	return cc
}

// pipelineOptions are the pipeline's options; log is the service's logger,
// whose records the store and the consumer mark with their component.
func (c *Config) pipelineOptions(dec *consumer.Decoder, m *consumer.Metrics, log *slog.Logger, reg prometheus.Registerer) pipeline.Options {
	opts := store.DefaultOptions()
	opts.Policy = c.policy()
	opts.Log = log.With("component", "store")
	return pipeline.Options{Path: c.storePath(), Store: opts, Consumer: c.consumerConfig(),
		Decoder: dec, Metrics: m, Log: log.With("component", "consumer"), Registerer: reg, BulkLoadEmpty: c.BulkLoadEmpty, MergeCatchUpMin: c.MergeCatchUpMin}
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return l, fmt.Errorf("--log-level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

// newLogger returns the service's structured logger.
func newLogger(c *Config, w io.Writer) *slog.Logger {
	level, _ := parseLevel(c.LogLevel)
	opts := &slog.HandlerOptions{Level: level}
	if strings.EqualFold(c.LogFormat, "text") {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
