package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/enrollstatus/enrollstatus/internal/synth"
)

// demoConfig adds the embedded broker and the traffic generator to Config.
type demoConfig struct {
	Config
	BrokerAddr  string
	TopicPrefix string
	Partitions  int
	Generate    bool
	Users       int
	Courses     int
	History     int
	Rate        float64
	Seed        uint64
}

func runDemo(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg := demoConfig{
		Config:      DefaultConfig(),
		BrokerAddr:  "127.0.0.1:19092",
		TopicPrefix: "dev",
		Partitions:  3,
		Generate:    true,
		Users:       2000,
		Courses:     40,
		History:     60000,
		Rate:        20,
		Seed:        1,
	}
	cfg.HTTPAddr = "127.0.0.1:8080"
	cfg.DataDir = filepath.Join("data", "demo")
	cfg.LogFormat = "text"
	cfg.JWTSecrets = listFlag{"demo-secret"}
	cfg.PollInterval = time.Second

	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: enrollstatus demo [flags]

Run everything in one process: an embedded Kafka-protocol broker listening on
loopback, the topics created in it, a generator of realistic Open edX traffic,
the consuming pipeline and the HTTP API. It prints a curl command with a
signed token that works. Other producers (kcat, the Open edX event bus) can
produce to the embedded broker too; turn the generator off with
--generate=false.

Flags:
`)
		fs.PrintDefaults()
	}
	cfg.bind(fs)
	fs.StringVar(&cfg.BrokerAddr, "broker-addr", cfg.BrokerAddr, "address the embedded broker listens on")
	fs.StringVar(&cfg.TopicPrefix, "topic-prefix", cfg.TopicPrefix, "EVENT_BUS_TOPIC_PREFIX of the generated traffic and of the default topics")
	fs.IntVar(&cfg.Partitions, "partitions", cfg.Partitions, "partitions of each topic created in the embedded broker")
	fs.BoolVar(&cfg.Generate, "generate", cfg.Generate, "generate synthetic Open edX traffic")
	fs.IntVar(&cfg.Users, "users", cfg.Users, "synthetic learners")
	fs.IntVar(&cfg.Courses, "courses", cfg.Courses, "synthetic courses")
	fs.IntVar(&cfg.History, "history", cfg.History, "events of history produced at start (only into empty topics)")
	fs.Float64Var(&cfg.Rate, "rate", cfg.Rate, "live events per second after the history, 0 for none")
	fs.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "seed of the generator")
	topicsSet := false
	if err := parseFlags(fs, args, getenv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	fs.Visit(func(f *flag.Flag) { topicsSet = topicsSet || f.Name == "topics" })
	if !topicsSet && getenv(envName("topics")) == "" {
		cfg.Topics = nil
		for _, t := range synth.Topics {
			cfg.Topics = append(cfg.Topics, cfg.TopicPrefix+"-"+t)
		}
	}
	if err := cfg.Validate(); err != nil {
		return usageError{fmt.Errorf("invalid configuration:\n%w", err)}
	}
	log := newLogger(&cfg.Config, stderr)

	topics := append([]string(nil), cfg.Topics...)
	if cfg.DeadLetterTopic != "" {
		topics = append(topics, cfg.DeadLetterTopic)
	}
	broker, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) { return net.Listen(network, cfg.BrokerAddr) }),
		kfake.DataDir(filepath.Join(cfg.DataDir, "broker")),
		kfake.SeedTopics(int32(cfg.Partitions), topics...),
	)
	if err != nil {
		return fmt.Errorf("embedded broker on %s: %w", cfg.BrokerAddr, err)
	}
	defer broker.Close()
	addr := broker.ListenAddrs()[0]
	log.Info("embedded Kafka-protocol broker listening", "component", "broker", "addr", addr, "topics", strings.Join(topics, ","))
	cfg.Brokers = listFlag{addr}
	if err := cfg.consumerConfig().Validate(); err != nil {
		return usageError{err}
	}

	started := make(chan *service, 1)
	served := make(chan error, 1)
	go func() { served <- serve(ctx, &cfg.Config, log, started) }()
	var svc *service
	select {
	case err := <-served:
		return err
	case svc = <-started:
	}

	user := synth.Username(1)
	if cfg.Generate {
		gen := synth.New(cfg.Seed, cfg.Users, cfg.Courses, time.Now().UTC())
		go func() {
			if err := generate(ctx, gen, &cfg, addr, log.With("component", "generator")); err != nil {
				log.Error("generator stopped", "component", "generator", "err", err)
			}
		}()
	}
	token, err := signToken(cfg.JWTSecrets[0], tokenSpec{Username: user, Issuer: cfg.JWTIssuer, Audience: firstOr(cfg.JWTAudience, ""), TTL: 24 * time.Hour})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, `
enrollstatus demo is running.
  API:     http://%[1]s/api/mobile/v4/users/%[2]s/enrollments_status/
  broker:  %[3]s (topics %[4]s)
  metrics: http://%[1]s/metrics   ready: http://%[1]s/readyz

Try it (the token is valid for 24 hours):

  curl -s -H 'Authorization: JWT %[5]s' http://%[1]s/api/mobile/v4/users/%[2]s/enrollments_status/

Tokens for other learners (learner1 … learner%[6]d): enrollstatus token --jwt-secret %[7]s --username learner42
Press Ctrl-C to stop.
`, svc.httpAddr, user, addr, strings.Join(cfg.Topics, ","), token, cfg.Users, cfg.JWTSecrets[0])
	return <-served
}

func firstOr(l []string, def string) string {
	if len(l) > 0 {
		return l[0]
	}
	return def
}

// generate produces the history into empty topics, then live traffic at
// cfg.Rate until ctx ends.
func generate(ctx context.Context, gen *synth.Generator, cfg *demoConfig, broker string, log *slog.Logger) error {
	w := &kafka.Writer{Addr: kafka.TCP(broker), Balancer: &kafka.Hash{}, BatchSize: 2000,
		BatchTimeout: 5 * time.Millisecond, RequiredAcks: kafka.RequireAll}
	defer w.Close()
	send := func(msgs []synth.Message) error {
		out := make([]kafka.Message, len(msgs))
		for i, m := range msgs {
			out[i] = kafka.Message{Topic: cfg.TopicPrefix + "-" + m.Topic, Key: m.Key, Value: m.Value}
			for k, v := range m.Headers {
				out[i].Headers = append(out[i].Headers, kafka.Header{Key: k, Value: []byte(v)})
			}
		}
		return w.WriteMessages(ctx, out...)
	}
	empty, err := topicsEmpty(ctx, broker, cfg.Topics)
	if err != nil {
		return err
	}
	if empty {
		start := time.Now()
		msgs := append(gen.Catalog(), gen.History(cfg.History)...)
		for len(msgs) > 0 {
			n := min(len(msgs), 5000)
			if err := send(msgs[:n]); err != nil {
				return fmt.Errorf("produce history: %w", err)
			}
			msgs = msgs[n:]
		}
		log.Info("history produced", "events", cfg.History+len(gen.Courses), "took", time.Since(start).Round(time.Millisecond))
	} else {
		// The generator starts over from its seed, so it only adds live
		// traffic to topics that already hold a history.
		for range cfg.History {
			gen.Next(60)
		}
		log.Info("topics already hold events; producing live traffic only")
	}
	if cfg.Rate <= 0 {
		return nil
	}
	t := time.NewTicker(time.Duration(float64(time.Second) / cfg.Rate))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := send([]synth.Message{gen.Next(2)}); err != nil && ctx.Err() == nil {
				log.Warn("produce failed", "err", err)
			}
		}
	}
}

// topicsEmpty reports whether no partition of the topics holds a message.
func topicsEmpty(ctx context.Context, broker string, topics []string) (bool, error) {
	client := &kafka.Client{Addr: kafka.TCP(broker), Timeout: 10 * time.Second}
	meta, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
	if err != nil {
		return false, err
	}
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for _, t := range meta.Topics {
		for _, p := range t.Partitions {
			req.Topics[t.Name] = append(req.Topics[t.Name], kafka.LastOffsetOf(p.ID))
		}
	}
	resp, err := client.ListOffsets(ctx, req)
	if err != nil {
		return false, err
	}
	for _, parts := range resp.Topics {
		for _, p := range parts {
			if p.LastOffset > 0 {
				return false, nil
			}
		}
	}
	return true, nil
}
