package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	neturl "net/url"
	"path/filepath"
	"sort"
	"strconv"
	"time"

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
	dataDir, username, userID, url, token, digest := DefaultConfig().DataDir, "", int64(0), "", "", false
	_, err := opsFlags("inspect", "inspect [--data-dir D | --url URL --admin-token T] [--username U | --user-id N] [--digest]\n\n"+
		"Print store statistics, freshness, stored offsets (and, from a running instance,\nlag per partition) and, if asked, one user's record.", args, getenv, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&dataDir, "data-dir", dataDir, "data directory of a stopped service")
		fs.StringVar(&url, "url", url, "base URL of a running instance, e.g. http://127.0.0.1:8080 (uses /admin/inspect)")
		fs.StringVar(&token, "admin-token", token, "the instance's admin token")
		fs.StringVar(&username, "username", username, "print this user's record (case-insensitive)")
		fs.Int64Var(&userID, "user-id", userID, "print this user id's record")
		fs.BoolVar(&digest, "digest", digest, "also print the projection's content checksum (reads the whole file)")
	})
	if err != nil {
		return err
	}
	if url != "" {
		q := neturl.Values{}
		if username != "" {
			q.Set("username", username)
		}
		if userID != 0 {
			q.Set("user_id", strconv.FormatInt(userID, 10))
		}
		if digest {
			q.Set("digest", "true")
		}
		return adminGet(url+"/admin/inspect?"+q.Encode(), token, stdout)
	}
	st, err := openReadOnly(dataDir)
	if err != nil {
		return err
	}
	defer st.Close()
	out, err := inspect(st, username, userID, digest)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// adminGet copies an admin endpoint's JSON answer to w, indented.
func adminGet(url, token string, w io.Writer) error {
	resp, err := adminCall(context.Background(), http.MethodGet, url, token, http.StatusOK)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, body, "", "  "); err != nil {
		return fmt.Errorf("%s: not JSON: %w", url, err)
	}
	out.WriteByte('\n')
	_, err = out.WriteTo(w)
	return err
}

func sortOffsets(o []offsetView) {
	sort.Slice(o, func(i, j int) bool { return o[i].Partition < o[j].Partition })
}

func runDiff(_ context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	limit := 20
	fs := flag.NewFlagSet("diff", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: enrollstatus diff [--limit N] DATA_DIR_A DATA_DIR_B\n\n"+
			"Compare two projections (offsets and timestamps aside) and say where they differ.\n"+
			"Exit status 0: identical, 1: they differ.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	fs.IntVar(&limit, "limit", limit, "differences to print at most")
	if err := parseFlagsArgs(fs, args, getenv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
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
