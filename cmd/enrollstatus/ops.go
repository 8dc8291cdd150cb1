package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"time"

	"github.com/enrollstatus/enrollstatus/projection"
	"github.com/enrollstatus/enrollstatus/store"
)

// opsFlags parses the flags of an offline command.
func opsFlags(name, synopsis string, args []string, getenv func(string) string, stderr io.Writer, bind func(*flag.FlagSet)) (*flag.FlagSet, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: enrollstatus %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	bind(fs)
	if err := parseFlags(fs, args, getenv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, usageError{err}
	}
	return fs, nil
}

func openReadOnly(dataDir string) (*store.Store, error) {
	opts := store.DefaultOptions()
	opts.ReadOnly = true
	opts.Timeout = 2 * time.Second
	return store.Open(filepath.Join(dataDir, store.FileName), opts)
}

func runInspect(_ context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	dataDir, username, userID := DefaultConfig().DataDir, "", int64(0)
	_, err := opsFlags("inspect", "inspect [--data-dir D] [--username U | --user-id N]\n\nPrint store statistics, freshness, stored offsets and, if asked, one user's record,\nfrom the data directory of a stopped service.", args, getenv, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&dataDir, "data-dir", dataDir, "data directory")
		fs.StringVar(&username, "username", username, "print this user's record (case-insensitive)")
		fs.Int64Var(&userID, "user-id", userID, "print this user id's record")
	})
	if err != nil {
		return err
	}
	st, err := openReadOnly(dataDir)
	if err != nil {
		return err
	}
	defer st.Close()
	stats, err := st.Stats()
	if err != nil {
		return err
	}
	fresh, err := st.Freshness()
	if err != nil {
		return err
	}
	offs, err := st.Offsets()
	if err != nil {
		return err
	}
	type offset struct {
		Partition string `json:"partition"`
		Next      int64  `json:"next_offset"`
	}
	out := struct {
		Stats     store.Stats      `json:"stats"`
		LastEvent time.Time        `json:"last_event_time"`
		Committed time.Time        `json:"committed_at"`
		Applied   uint64           `json:"messages_applied"`
		Offsets   []offset         `json:"offsets"`
		User      *projection.User `json:"user,omitempty"`
	}{Stats: stats, LastEvent: fresh.LastEventTime, Committed: fresh.CommittedAt, Applied: fresh.Applied}
	for p, next := range offs {
		out.Offsets = append(out.Offsets, offset{p.String(), next})
	}
	sort.Slice(out.Offsets, func(i, j int) bool { return out.Offsets[i].Partition < out.Offsets[j].Partition })
	ctx := context.Background()
	switch {
	case username != "":
		u, _, found, err := st.UserByName(ctx, username)
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("no user named %q", username)
		}
		out.User = &u
	case userID != 0:
		u, found, err := st.User(ctx, userID)
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("no user with id %d", userID)
		}
		out.User = &u
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func runDiff(_ context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	limit := 20
	fs, err := opsFlags("diff", "diff [--limit N] DATA_DIR_A DATA_DIR_B\n\nCompare two projections (offsets and timestamps aside) and say where they differ.\nExit status 0: identical, 1: they differ.", nil, getenv, stderr, func(fs *flag.FlagSet) {
		fs.IntVar(&limit, "limit", limit, "differences to print at most")
	})
	if err != nil {
		return err
	}
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if fs.NArg() != 2 {
		return usageError{errors.New("diff needs two data directories")}
	}
	a, err := openReadOnly(fs.Arg(0))
	if err != nil {
		return err
	}
	defer a.Close()
	b, err := openReadOnly(fs.Arg(1))
	if err != nil {
		return err
	}
	defer b.Close()
	da, err := a.Digest()
	if err != nil {
		return err
	}
	db, err := b.Digest()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "a: %s %v\nb: %s %v\n", da.Total, da.Keys, db.Total, db.Keys)
	if da.Total == db.Total {
		fmt.Fprintln(stdout, "identical")
		return nil
	}
	diffs, err := store.Diff(a, b, limit)
	if err != nil {
		return err
	}
	for _, d := range diffs {
		fmt.Fprintln(stdout, d)
	}
	return fmt.Errorf("projections differ (%d differences shown)", len(diffs))
}

func runCompact(_ context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	dataDir, out := DefaultConfig().DataDir, ""
	_, err := opsFlags("compact", "compact [--data-dir D] --out FILE\n\nCopy a stopped service's projection into a new, smaller file. Replace the\noriginal with it while the service is stopped.", args, getenv, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&dataDir, "data-dir", dataDir, "data directory of a stopped service")
		fs.StringVar(&out, "out", out, "the new file")
	})
	if err != nil {
		return err
	}
	if out == "" {
		return usageError{errors.New("compact needs --out")}
	}
	if err := store.Compact(filepath.Join(dataDir, store.FileName), out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "compacted into %s\n", out)
	return nil
}
