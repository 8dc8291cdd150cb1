package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/enrollstatus/enrollstatus/consumer"
	"github.com/enrollstatus/enrollstatus/internal/memlimit"
	"github.com/enrollstatus/enrollstatus/internal/pipeline"
	"github.com/enrollstatus/enrollstatus/store"
)

func runRebuild(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg := DefaultConfig()
	var from, url string
	fs := flag.NewFlagSet("rebuild", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: enrollstatus rebuild [flags]

Replay the topics from the earliest offsets (or from --from) into a new
projection file, then replace the old one atomically once the new one has
caught up with the head.

  Offline (the service on --data-dir is stopped): enrollstatus rebuild --brokers B --data-dir D
  Online (the service keeps answering from its current file during the replay):
      enrollstatus rebuild --url http://host:8080 --admin-token T

A rebuild --from a time starts every partition at its first message at or
after that time: the result holds only what happened since, so use it when
older history does not matter.

Flags:
`)
		fs.PrintDefaults()
	}
	cfg.bind(fs)
	fs.StringVar(&from, "from", from, "replay from this time (RFC 3339) instead of the earliest offsets")
	fs.StringVar(&url, "url", url, "base URL of a running instance to rebuild online (with --admin-token)")
	if err := parseFlags(fs, args, getenv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	var fromTime time.Time
	if from != "" {
		t, err := time.Parse(time.RFC3339, from)
		if err != nil {
			return usageError{fmt.Errorf("--from %q: want RFC 3339, e.g. 2026-01-02T15:04:05Z", from)}
		}
		fromTime = t
	}
	bar := newProgressBar(stdout)
	if url != "" {
		return rebuildOnline(ctx, url, cfg.AdminToken, from, bar)
	}
	if err := cfg.consumerConfig().Validate(); err != nil {
		return usageError{err}
	}
	log := newLogger(&cfg, stderr)
	memlimit.Set(cfg.MemoryLimitMiB, os.Getenv)
	path := cfg.storePath()

	// The live file must not be in use: a running service is rebuilt online.
	if _, err := os.Stat(path); err == nil {
		opts := store.DefaultOptions()
		opts.Timeout = time.Second
		live, err := store.Open(path, opts)
		if err != nil {
			return fmt.Errorf("%w\n(to rebuild a running service, use --url and --admin-token)", err)
		}
		live.Close()
	}
	tmp := path + ".rebuild"
	os.Remove(tmp)
	opts := store.DefaultOptions()
	opts.Policy = cfg.policy()
	opts.NoSync = true // a new file, synced before it replaces the live one
	next, err := store.Open(tmp, opts)
	if err != nil {
		return err
	}
	defer func() {
		next.Close()
		os.Remove(tmp)
	}()
	avro, err := newAvroDecoder(&cfg, log, nil)
	if err != nil {
		return err
	}
	cc := cfg.consumerConfig()
	cc.StartAt = fromTime
	start := time.Now()
	r, err := pipeline.Replay(ctx, cc, next, consumer.NewDecoder(avro), log.With("component", "consumer"))
	if err != nil {
		return err
	}
	defer func() {
		r.Stop()
		r.WaitClosed() // after the swap: the load's closes overlapped its writing
	}()
	if err := r.WaitCaughtUp(ctx, bar.show); err != nil {
		return fmt.Errorf("rebuild: %w (the old projection is unchanged)", err)
	}
	if err := r.Stop(); err != nil {
		return err
	}
	final := r.Progress()
	if err := next.Rename(path); err != nil {
		return err
	}
	bar.finish(final, fmt.Sprintf("rebuilt %s in %v", path, time.Since(start).Round(time.Millisecond)))
	return nil
}

// rebuildOnline triggers a rebuild on a running instance and follows it.
func rebuildOnline(ctx context.Context, base, token, from string, bar *progressBar) error {
	url := strings.TrimRight(base, "/") + "/admin/rebuild"
	if from != "" {
		url += "?from=" + from
	}
	resp, err := adminCall(ctx, http.MethodPost, url, token, http.StatusAccepted)
	if err != nil {
		return err
	}
	resp.Body.Close()
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		resp, err := adminCall(ctx, http.MethodGet, strings.TrimRight(base, "/")+"/admin/rebuild", token, http.StatusOK)
		if err != nil {
			return err
		}
		var pr pipeline.Progress
		err = json.NewDecoder(resp.Body).Decode(&pr)
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("rebuild progress: %w", err)
		}
		if !pr.Running {
			if pr.Error != "" {
				bar.show(pr)
				return fmt.Errorf("rebuild failed: %s", pr.Error)
			}
			bar.finish(pr, fmt.Sprintf("rebuilt online in %v", pr.Finished.Sub(pr.Started).Round(time.Millisecond)))
			return nil
		}
		bar.show(pr)
	}
}

// progressBar draws a rebuild's progress: a bar redrawn in place on a
// terminal, a plain line every few seconds otherwise.
type progressBar struct {
	w        io.Writer
	terminal bool
	last     time.Time
}

func newProgressBar(w io.Writer) *progressBar {
	term := false
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			term = true
		}
	}
	return &progressBar{w: w, terminal: term}
}

func (b *progressBar) show(pr pipeline.Progress) {
	if b.terminal {
		const width = 30
		filled := min(int(pr.Ratio*width), width)
		var parts []string
		for _, p := range pr.Partitions {
			parts = append(parts, fmt.Sprintf("%s %d/%d", p.Position.String(), p.Next, p.End))
		}
		fmt.Fprintf(b.w, "\r\033[K[%s%s] %5.1f%%  %8.0f msg/s  ETA %-8v %-9s %s", strings.Repeat("#", filled),
			strings.Repeat("-", width-filled), pr.Ratio*100, pr.Rate, pr.ETA.Round(time.Second), pr.Phase, truncateLine(strings.Join(parts, "  "), 100))
		return
	}
	if time.Since(b.last) < 5*time.Second {
		return
	}
	b.last = time.Now()
	fmt.Fprintf(b.w, "%s rebuild %s\n", time.Now().UTC().Format(time.RFC3339), pr)
}

// finish shows the final progress, whenever the last line was, then msg.
func (b *progressBar) finish(pr pipeline.Progress, msg string) {
	b.last = time.Time{}
	b.show(pr)
	b.done(msg)
}

func (b *progressBar) done(msg string) {
	if b.terminal {
		fmt.Fprintln(b.w)
	}
	fmt.Fprintln(b.w, msg)
}

func truncateLine(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
