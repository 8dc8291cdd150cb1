package store

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// formatV1 is the layout before the member index had blocks: one key per
// membership (course id, NUL, user id -> nothing) in bucket "members".
const formatV1 = "enrollstatus/1"

var bucketMembersV1 = []byte("members")

// upgradeTxBytes bounds what one transaction of an upgrade writes, and with
// it the pages the copy holds in memory.
var upgradeTxBytes = 32 << 20

// upgrade converts a file of an earlier format, open as db at path, to this
// one, so that a new build serves an old file (or a restored snapshot)
// without a rebuild; the caller opens path again when it did. It does
// nothing to a file of this format or a newer one.
//
// The file is copied into path.upgrade, converting as it goes, which is then
// renamed over it: converting in place would free the old member index's
// pages, scattered through the file, and bbolt would keep every one of them
// in its in-memory free list (about 50 MB for a 3M-user file). The copy is
// as dense as a compacted file. It needs free disk as large as the file, as
// a rebuild does; a crash leaves the old file as it was, and the next start
// upgrades again.
func upgrade(db *bolt.DB, path string, opts Options, log *slog.Logger) (upgraded bool, err error) {
	var format string
	if err := db.View(func(tx *bolt.Tx) error {
		if meta := tx.Bucket(bucketMeta); meta != nil {
			format = string(meta.Get(keyFormat))
		}
		return nil
	}); err != nil || format != formatV1 {
		return false, err
	}
	log.Info("projection of an earlier format: upgrading it into a copy", "from", formatV1, "to", formatVersion,
		"path", path)
	start := time.Now()
	tmp := path + ".upgrade"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return false, err
	}
	entries, blocks, err := copyUpgrading(db, tmp, opts)
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return false, fmt.Errorf("upgrade from %s: %w", formatV1, err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil { // the rename, durable
		d.Sync()
		d.Close()
	}
	log.Info("projection upgraded", "from", formatV1, "to", formatVersion,
		"member_entries", entries, "member_blocks", blocks, "took", time.Since(start).Round(time.Millisecond))
	return true, nil
}

// copyUpgrading copies the v1 projection in into a new file at dst in this
// format: every bucket as it is but the member index, whose entries become
// blocks, and the format mark.
func copyUpgrading(in *bolt.DB, dst string, opts Options) (entries, blocks int, err error) {
	out, err := bolt.Open(dst, 0o600, &bolt.Options{NoSync: true, InitialMmapSize: opts.InitialMmapSize,
		FreelistType: bolt.FreelistMapType})
	if err != nil {
		return 0, 0, err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
	}()
	w := &txWriter{db: out, limit: upgradeTxBytes}
	defer w.rollback()
	err = in.View(func(src *bolt.Tx) error { // its values stay valid until the copy's last commit
		for _, name := range allBuckets {
			if bytes.Equal(name, bucketMembers) {
				old := src.Bucket(bucketMembersV1)
				if old == nil {
					return errors.New("no members bucket")
				}
				if entries, blocks, err = w.memberBlocks(old); err != nil {
					return err
				}
				continue
			}
			b := src.Bucket(name)
			if b == nil {
				return fmt.Errorf("no %s bucket", name)
			}
			if err := w.copy(name, b); err != nil {
				return err
			}
		}
		if err := w.put(bucketMeta, keyFormat, []byte(formatVersion)); err != nil {
			return err
		}
		return w.commit()
	})
	if err != nil {
		return entries, blocks, err
	}
	return entries, blocks, out.Sync()
}

// txWriter puts keys in order into a new file, in transactions of about
// limit bytes.
type txWriter struct {
	db      *bolt.DB
	tx      *bolt.Tx
	limit   int
	written int
}

// put puts key and value (kept until the commit, as bbolt does) into bucket.
func (w *txWriter) put(bucket, key, value []byte) error {
	b, err := w.bucket(bucket)
	if err != nil {
		return err
	}
	if err := b.Put(key, value); err != nil {
		return err
	}
	if w.written += len(key) + len(value) + 16; w.written >= w.limit {
		return w.commit()
	}
	return nil
}

// bucket returns bucket in the current transaction, which it begins if
// there is none, creating the bucket if need be.
func (w *txWriter) bucket(name []byte) (*bolt.Bucket, error) {
	if w.tx == nil {
		var err error
		if w.tx, err = w.db.Begin(true); err != nil {
			return nil, err
		}
	}
	b, err := w.tx.CreateBucketIfNotExists(name)
	if err != nil {
		return nil, err
	}
	b.FillPercent = 1 // keys come in order
	return b, nil
}

func (w *txWriter) commit() error {
	if w.tx == nil {
		return nil
	}
	err := w.tx.Commit()
	w.tx, w.written = nil, 0
	return err
}

func (w *txWriter) rollback() {
	if w.tx != nil {
		w.tx.Rollback()
	}
}

// copy copies a bucket whose values the read transaction keeps valid.
func (w *txWriter) copy(name []byte, b *bolt.Bucket) error {
	if _, err := w.bucket(name); err != nil { // even if empty
		return err
	}
	return b.ForEach(func(k, v []byte) error { return w.put(name, k, v) })
}

// memberBlocks writes the v1 member index's entries as blocks.
func (w *txWriter) memberBlocks(old *bolt.Bucket) (entries, blocks int, err error) {
	if _, err := w.bucket(bucketMembers); err != nil { // even if empty
		return 0, 0, err
	}
	var b blockBuilder
	err = old.ForEach(func(k, _ []byte) error {
		if len(k) < 9 || k[len(k)-9] != 0 {
			return fmt.Errorf("%w: member key %q", errCorrupt, k)
		}
		entries++
		if key, value, full := b.add(k[:len(k)-9], userID(k[len(k)-8:])); full {
			blocks++
			return w.put(bucketMembers, key, value)
		}
		return nil
	})
	if err != nil {
		return entries, blocks, err
	}
	if key, value, full := b.flush(); full {
		blocks++
		return entries, blocks, w.put(bucketMembers, key, value)
	}
	return entries, blocks, nil
}
