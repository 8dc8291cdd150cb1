package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// dataBuckets hold the projection itself; offsets and meta describe how far it
// got and when, and differ between a live file and a rebuilt one.
var dataBuckets = [][]byte{bucketUsers, bucketUsernames, bucketCourses, bucketMembers, bucketRetired}

// Digest is a checksum of the projection's content, per bucket and in all.
// Two files with equal digests answer every query the same way.
type Digest struct {
	Total   string
	Buckets map[string]string
	Keys    map[string]int
}

// Digest computes the projection's checksum in one read transaction.
func (s *Store) Digest() (Digest, error) {
	d := Digest{Buckets: map[string]string{}, Keys: map[string]int{}}
	total := sha256.New()
	err := s.db.View(func(tx *bolt.Tx) error {
		for _, name := range dataBuckets {
			h := sha256.New()
			n := 0
			err := tx.Bucket(name).ForEach(func(k, v []byte) error {
				fmt.Fprintf(h, "%d:%s%d:%s", len(k), k, len(v), v)
				n++
				return nil
			})
			if err != nil {
				return err
			}
			sum := h.Sum(nil)
			total.Write(name)
			total.Write(sum)
			d.Buckets[string(name)] = hex.EncodeToString(sum)
			d.Keys[string(name)] = n
		}
		return nil
	})
	d.Total = hex.EncodeToString(total.Sum(nil))
	return d, err
}

// Difference is one key whose value differs between two projections.
type Difference struct {
	Bucket string
	Key    string // printable form of the key
	Reason string // "only in a", "only in b" or "values differ"
}

func (d Difference) String() string {
	return fmt.Sprintf("%s %s: %s", d.Bucket, d.Key, d.Reason)
}

// Diff compares the projection content of two stores and returns up to limit
// differences, walking both files in key order.
func Diff(a, b *Store, limit int) ([]Difference, error) {
	var out []Difference
	err := a.db.View(func(ta *bolt.Tx) error {
		return b.db.View(func(tb *bolt.Tx) error {
			for _, name := range dataBuckets {
				ca, cb := ta.Bucket(name).Cursor(), tb.Bucket(name).Cursor()
				ka, va := ca.First()
				kb, vb := cb.First()
				for (ka != nil || kb != nil) && len(out) < limit {
					switch c := compareKeys(ka, kb); {
					case c < 0:
						out = append(out, Difference{string(name), printableKey(name, ka), "only in a"})
						ka, va = ca.Next()
					case c > 0:
						out = append(out, Difference{string(name), printableKey(name, kb), "only in b"})
						kb, vb = cb.Next()
					default:
						if !bytes.Equal(va, vb) {
							out = append(out, Difference{string(name), printableKey(name, ka), "values differ"})
						}
						ka, va = ca.Next()
						kb, vb = cb.Next()
					}
				}
			}
			return nil
		})
	})
	return out, err
}

// compareKeys orders keys with nil (an exhausted cursor) last.
func compareKeys(a, b []byte) int {
	switch {
	case a == nil:
		return 1
	case b == nil:
		return -1
	}
	return bytes.Compare(a, b)
}

func printableKey(bucket, k []byte) string {
	switch {
	case bytes.Equal(bucket, bucketUsers), bytes.Equal(bucket, bucketRetired):
		if len(k) == 8 {
			return fmt.Sprintf("user %d", userID(k))
		}
	case bytes.Equal(bucket, bucketMembers):
		if len(k) > 9 {
			first := userID(k[len(k)-8:]) << memberBlockBits
			return fmt.Sprintf("%q users %d to %d", k[:len(k)-9], first, first|(1<<memberBlockBits-1))
		}
	}
	return fmt.Sprintf("%q", k)
}
