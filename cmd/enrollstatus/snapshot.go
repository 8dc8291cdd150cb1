package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/enrollstatus/enrollstatus/store"
)

func runSnapshot(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var url, token, out string
	_, err := opsFlags("snapshot", "snapshot --url URL --admin-token T --out FILE\n\nDownload a consistent copy of a running instance's projection, offsets included.", args, getenv, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&url, "url", url, "base URL of the running instance")
		fs.StringVar(&token, "admin-token", token, "its admin token")
		fs.StringVar(&out, "out", out, "file to write")
	})
	if err != nil {
		return err
	}
	if url == "" || out == "" {
		return usageError{errors.New("snapshot needs --url and --out")}
	}
	if err := download(ctx, strings.TrimRight(url, "/")+"/admin/snapshot", token, out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "snapshot written to %s\n", out)
	return nil
}

func runRestore(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	dataDir, from, token, force := DefaultConfig().DataDir, "", "", false
	_, err := opsFlags("restore", "restore --from FILE|URL [--admin-token T] [--data-dir D] [--force]\n\n"+
		"Put a snapshot into a data directory. A service started on it resumes consuming\nfrom the snapshot's offsets: a new replica starts in seconds instead of replaying.\n"+
		"--from a URL is a running instance's base URL (its /admin/snapshot is fetched).", args, getenv, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&dataDir, "data-dir", dataDir, "data directory to restore into (its service must be stopped)")
		fs.StringVar(&from, "from", from, "snapshot file, or base URL of a running instance")
		fs.StringVar(&token, "admin-token", token, "admin token, when --from is a URL")
		fs.BoolVar(&force, "force", force, "replace an existing projection")
	})
	if err != nil {
		return err
	}
	if from == "" {
		return usageError{errors.New("restore needs --from")}
	}
	path := filepath.Join(dataDir, store.FileName)
	if _, err := os.Stat(path); err == nil && !force {
		return fmt.Errorf("%s exists; pass --force to replace it", path)
	}
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return err
	}
	tmp := path + ".restore"
	defer os.Remove(tmp)
	if strings.HasPrefix(from, "http://") || strings.HasPrefix(from, "https://") {
		err = download(ctx, strings.TrimRight(from, "/")+"/admin/snapshot", token, tmp)
	} else {
		err = copyFile(from, tmp)
	}
	if err != nil {
		return err
	}
	// Open it: a damaged or foreign file is refused here, not at start.
	st, err := store.Open(tmp, store.DefaultOptions())
	if err != nil {
		return fmt.Errorf("the snapshot is not a usable projection: %w", err)
	}
	stats, _ := st.Stats()
	offs, _ := st.Offsets()
	st.Close()
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "restored %s: %d users, %d partitions' offsets\n", path, stats.Users, len(offs))
	return nil
}

func download(ctx context.Context, url, token, out string) error {
	resp, err := adminCall(ctx, http.MethodGet, url, token, http.StatusOK)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	f, err := os.OpenFile(out, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		os.Remove(out)
		return fmt.Errorf("download %s: %w", url, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
