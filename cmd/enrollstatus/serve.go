package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/enrollstatus/enrollstatus/consumer"
	"github.com/enrollstatus/enrollstatus/internal/memlimit"
	"github.com/enrollstatus/enrollstatus/internal/pipeline"
	"github.com/enrollstatus/enrollstatus/store"
)

func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg := DefaultConfig()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: enrollstatus serve [flags]\n\nConsume Open edX events from Kafka into the projection and serve the HTTP API.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	cfg.bind(fs)
	if err := parseFlags(fs, args, getenv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if err := errors.Join(cfg.Validate(), cfg.consumerConfig().Validate()); err != nil {
		return usageError{fmt.Errorf("invalid configuration:\n%w", err)}
	}
	log := newLogger(&cfg, stderr)
	memlimit.Set(cfg.MemoryLimitMiB, os.Getenv)
	return serve(ctx, &cfg, log, nil)
}

// service is a running enrollstatus: what tests and the demo need to reach.
type service struct {
	pipeline *pipeline.Pipeline
	registry *prometheus.Registry
	httpAddr string
}

// serve runs the pipeline and the HTTP API until ctx ends, then shuts down
// in order: stop taking requests and finish those in flight, stop consuming
// (the batch in progress is committed whole or not at all), close the store.
// started, when not nil, receives the running service once it listens.
func serve(ctx context.Context, cfg *Config, log *slog.Logger, started chan<- *service) (err error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	registerBuildInfo(reg)

	avro, err := newAvroDecoder(cfg, log, reg)
	if err != nil {
		return err
	}
	pl, err := pipeline.Open(cfg.pipelineOptions(consumer.NewDecoder(avro), consumer.NewMetrics(reg), log, reg))
	if err != nil {
		return err
	}
	defer func() {
		pl.Close() // waits for a rebuild the admin API started
		log.Info("stopped", "err", err)
	}()
	registerStoreMetrics(reg, pl)
	log.Info("projection open", "component", "store", "path", cfg.storePath())

	srv, err := newHTTPServer(cfg, pl, pl, reg, log.With("component", "http"))
	if err != nil {
		return err
	}
	// Consuming, and a rebuild the admin API starts, stop after the HTTP
	// server has (see the shutdown below); pl.Close waits for the rebuild.
	consumeCtx, stopConsuming := context.WithCancel(context.WithoutCancel(ctx))
	defer stopConsuming()
	mountAdmin(srv.Admin(), pl, consumeCtx, log.With("component", "admin"))
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, err)
	}
	log.Info("HTTP API listening", "component", "http", "addr", ln.Addr().String())

	g, gctx := errgroup.WithContext(ctx)
	consumed := make(chan error, 1)
	g.Go(func() error {
		err := pl.Run(consumeCtx)
		consumed <- err
		if err != nil {
			return fmt.Errorf("consumer: %w", err)
		}
		return nil
	})
	g.Go(func() error { return srv.Serve(ln) })
	if cfg.PprofAddr != "" {
		if err := servePprof(gctx, g, cfg.PprofAddr, log); err != nil {
			return err
		}
	}
	g.Go(func() error {
		<-gctx.Done()
		log.Info("shutting down", "deadline", cfg.ShutdownTimeout)
		shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		defer cancel()
		httpErr := srv.Shutdown(shutdownCtx)
		stopConsuming()
		select {
		case <-consumed:
		case <-shutdownCtx.Done():
			return errors.New("shutdown deadline passed before the consumer stopped")
		}
		if httpErr != nil {
			return fmt.Errorf("http shutdown: %w", httpErr)
		}
		return nil
	})
	if started != nil {
		started <- &service{pipeline: pl, registry: reg, httpAddr: ln.Addr().String()}
	}
	return g.Wait()
}

// servePprof serves Go's profiles on addr until ctx ends: an operator's
// tool, off unless --pprof-addr is set, on a listener of its own so that it
// never shares the API's address, limits or metrics.
func servePprof(ctx context.Context, g *errgroup.Group, addr string, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s (--pprof-addr): %w", addr, err)
	}
	log.Info("profiles listening", "component", "pprof", "addr", ln.Addr().String())
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	g.Go(func() error {
		<-ctx.Done()
		return srv.Close()
	})
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("pprof: %w", err)
		}
		return nil
	})
	return nil
}

func registerBuildInfo(reg prometheus.Registerer) {
	version, revision := "devel", "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				revision = s.Value
			}
		}
	}
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "enrollstatus_build_info",
		Help: "Build information; always 1.",
	}, []string{"version", "revision", "goversion"})
	g.WithLabelValues(version, revision, runtimeVersion()).Set(1)
	reg.MustRegister(g)
}

func runtimeVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		return bi.GoVersion
	}
	return "unknown"
}

func registerStoreMetrics(reg prometheus.Registerer, pl *pipeline.Pipeline) {
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "enrollstatus_store_size_bytes",
		Help: "Size of the projection file on disk.",
	}, func() (size float64) {
		pl.Store(func(st *store.Store) error {
			if fi, err := os.Stat(st.Path()); err == nil {
				size = float64(fi.Size())
			}
			return nil
		})
		return size
	}))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "enrollstatus_store_last_commit_timestamp_seconds",
		Help: "Wall-clock time of the last committed batch, Unix seconds.",
	}, func() (t float64) {
		pl.Store(func(st *store.Store) error {
			if f, err := st.Freshness(); err == nil && !f.CommittedAt.IsZero() {
				t = float64(f.CommittedAt.UnixNano()) / float64(time.Second)
			}
			return nil
		})
		return t
	}))
}
