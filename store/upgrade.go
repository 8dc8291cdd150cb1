package store

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"time"

	bolt "go.etcd.io/bbolt"
)

// formatV1 is the layout before the member index had blocks: one key per
// membership (course id, NUL, user id -> nothing) in bucket "members".
const formatV1 = "enrollstatus/1"

var bucketMembersV1 = []byte("members")

// upgradeTxEntries bounds the old member entries one transaction of an
// upgrade converts, and with them the pages it holds in memory.
var upgradeTxEntries = 1 << 20

// upgrade converts a file of an earlier format to this one in place, so
// that a new build serves an old file (or a restored snapshot) without a
// rebuild. It does nothing to a file of this format or a new one.
func upgrade(db *bolt.DB, log *slog.Logger) error {
	var format string
	if err := db.View(func(tx *bolt.Tx) error {
		if meta := tx.Bucket(bucketMeta); meta != nil {
			format = string(meta.Get(keyFormat))
		}
		return nil
	}); err != nil {
		return err
	}
	if format != formatV1 {
		return nil
	}
	start := time.Now()
	entries, blocks, err := upgradeV1(db)
	if err != nil {
		return fmt.Errorf("upgrade from %s: %w", formatV1, err)
	}
	log.Info("projection upgraded", "from", formatV1, "to", formatVersion,
		"member_entries", entries, "member_blocks", blocks, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// upgradeV1 rewrites the v1 member index into member blocks, in key order,
// in transactions of at most upgradeTxEntries entries that end at a block's
// end. The last one drops the old bucket and moves the format mark, so a
// crash midway leaves a v1 file, whose upgrade starts over.
func upgradeV1(db *bolt.DB) (entries, blocks int, err error) {
	var resume []byte // the first old entry the next transaction converts
	first := true
	for done := false; !done; {
		err = db.Update(func(tx *bolt.Tx) error {
			old := tx.Bucket(bucketMembersV1)
			if old == nil {
				return errors.New("no members bucket")
			}
			if first { // drop what an interrupted upgrade left
				if err := tx.DeleteBucket(bucketMembers); err != nil && !errors.Is(err, bolt.ErrBucketNotFound) {
					return err
				}
			}
			nb, err := tx.CreateBucketIfNotExists(bucketMembers)
			if err != nil {
				return err
			}
			nb.FillPercent = 1 // keys come in order
			c := old.Cursor()
			k, _ := c.First()
			if resume != nil {
				k, _ = c.Seek(resume)
			}
			var key, block []byte
			var firstID int64
			n := 0
			for ; k != nil; k, _ = c.Next() {
				if len(k) < 9 || k[len(k)-9] != 0 {
					return fmt.Errorf("%w: member key %q", errCorrupt, k)
				}
				course, id := k[:len(k)-9], userID(k[len(k)-8:])
				if key == nil || !sameMemberBlock(id, firstID) || !bytes.Equal(key[:len(key)-9], course) {
					if key != nil {
						if err := nb.Put(key, block); err != nil {
							return err
						}
						blocks++
						if n >= upgradeTxEntries {
							break // at a block's end
						}
					}
					key, block, firstID = memberBlockKey(string(course), id), make([]byte, 0, 16), id
				}
				block = setMember(block, memberLow(id), true)
				n++
			}
			entries += n
			if key != nil && k == nil {
				if err := nb.Put(key, block); err != nil {
					return err
				}
				blocks++
			}
			if k != nil {
				resume = bytes.Clone(k)
				return nil
			}
			done = true
			if err := tx.DeleteBucket(bucketMembersV1); err != nil {
				return err
			}
			return tx.Bucket(bucketMeta).Put(keyFormat, []byte(formatVersion))
		})
		if err != nil {
			return entries, blocks, err
		}
		first = false
	}
	return entries, blocks, nil
}
