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

// defaultUpgradeTxBytes bounds what one transaction of an upgrade writes,
// and with it the pages the copy holds in memory (Options.upgradeTxBytes,
// which a test makes small, overrides it).
const defaultUpgradeTxBytes = 32 << 20

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
	if err := out.Update(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucket(name); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return 0, 0, err
	}
	limit := opts.upgradeTxBytes
	if limit == 0 {
		limit = defaultUpgradeTxBytes
	}
	t := &loadTx{db: out, limit: limit}
	if err := t.begin(); err != nil {
		return 0, 0, err
	}
	defer t.rollback()
	err = in.View(func(src *bolt.Tx) error { // its values stay valid until the copy's last commit
		for _, name := range allBuckets {
			if bytes.Equal(name, bucketMembers) {
				if entries, blocks, err = t.memberBlocksV1(src.Bucket(bucketMembersV1)); err != nil {
					return err
				}
				continue
			}
			b := src.Bucket(name)
			if b == nil {
				return fmt.Errorf("no %s bucket", name)
			}
			if err := b.ForEach(func(k, v []byte) error { return t.put(name, k, v) }); err != nil {
				return err
			}
		}
		if err := t.put(bucketMeta, keyFormat, []byte(formatVersion)); err != nil {
			return err
		}
		return t.commit()
	})
	if err != nil {
		return entries, blocks, err
	}
	return entries, blocks, out.Sync()
}

// memberBlocksV1 puts the entries of a v1 member index as blocks.
func (t *loadTx) memberBlocksV1(old *bolt.Bucket) (entries, blocks int, err error) {
	if old == nil {
		return 0, 0, errors.New("no members bucket")
	}
	var b blockBuilder
	err = old.ForEach(func(k, _ []byte) error {
		if len(k) < 9 || k[len(k)-9] != 0 {
			return fmt.Errorf("%w: member key %q", errCorrupt, k)
		}
		entries++
		if key, value, full := b.add(k[:len(k)-9], userID(k[len(k)-8:])); full {
			blocks++
			return t.put(bucketMembers, key, value)
		}
		return nil
	})
	if err != nil {
		return entries, blocks, err
	}
	if key, value, full := b.flush(); full {
		blocks++
		return entries, blocks, t.put(bucketMembers, key, value)
	}
	return entries, blocks, nil
}
