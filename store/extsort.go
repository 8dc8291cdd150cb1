package store

import (
	"bufio"
	"bytes"
	"cmp"
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
)

// sorter is an external sort of (key, value) records in bounded memory:
// records collect in an in-memory run; a full run is sorted and spilled to a
// temporary file (unlinked at once, so that nothing is left behind whatever
// happens to the process); iterate merges the spilled runs and the last one,
// which stays in memory. Equal keys come out in the order they were added.
type sorter struct {
	path  string // temporary files are created next to it
	limit int    // bytes of a run in memory

	run     []byte    // records of the run being collected
	refs    []sortRef // where they are in run
	scratch []sortRef // sortRefs' second buffer, as long as refs can be
	runs    []*os.File
}

// A run holds its records as the key's length (uvarint), the key, the
// value; a sortRef locates one, with its key's first eight bytes as a
// big-endian number (zero-padded), which orders most pairs of records (all
// but those of one user, for the events' 8-byte keys) without reading them.
type sortRef struct {
	prefix uint64
	off, n uint32 // the record is run[off:off+n]
}

func (r sortRef) record(run []byte) (key, value []byte) {
	rec := run[r.off : r.off+r.n]
	klen, w := binary.Uvarint(rec)
	return rec[w : w+int(klen)], rec[w+int(klen):]
}

func (r sortRef) key(run []byte) []byte {
	k, _ := r.record(run)
	return k
}

func keyPrefix(key []byte) uint64 {
	if len(key) >= 8 {
		return binary.BigEndian.Uint64(key)
	}
	var b [8]byte
	copy(b[:], key)
	return binary.BigEndian.Uint64(b[:])
}

func newSorter(path string, limit int) *sorter { return &sorter{path: path, limit: limit} }

// add copies a record in, spilling the run first if the record would not
// fit. The run's buffer and its refs are allocated once, at their full
// size, so that neither grows past its bound by doubling: a run of small
// records spills when its refs are full.
func (s *sorter) add(key, value []byte) error {
	n := uvarintLen(len(key)) + len(key) + len(value)
	if len(s.run) > 0 && (len(s.run)+n > s.limit || len(s.refs) == cap(s.refs)) {
		if err := s.spill(); err != nil {
			return err
		}
	}
	if s.run == nil {
		s.run = make([]byte, 0, min(s.limit, 256<<20))
		s.refs = make([]sortRef, 0, min(s.limit, 256<<20)/24) // a completion's record is ~25 bytes
	}
	off := len(s.run)
	s.run = binary.AppendUvarint(s.run, uint64(len(key)))
	s.run = append(append(s.run, key...), value...)
	s.refs = append(s.refs, sortRef{prefix: keyPrefix(key), off: uint32(off), n: uint32(n)})
	return nil
}

func uvarintLen(x int) int {
	n := 1
	for ; x >= 0x80; x >>= 7 {
		n++
	}
	return n
}

// runCount returns the number of runs so far, the one in memory included.
func (s *sorter) runCount() int { return len(s.runs) + 1 }

// compare orders two records of the run: by key, then in the order they
// were added.
func (s *sorter) compare(a, b sortRef) int {
	if a.prefix != b.prefix {
		return cmp.Compare(a.prefix, b.prefix)
	}
	// The same first eight bytes: the keys decide, unless both are those
	// eight bytes (a record's key length is its first byte).
	if s.run[a.off] != 8 || s.run[b.off] != 8 {
		if c := bytes.Compare(a.key(s.run), b.key(s.run)); c != 0 {
			return c
		}
	}
	return cmp.Compare(a.off, b.off)
}

// sortRun sorts the run in memory as two halves, each on a core of its own,
// and returns them: the first half holds the records added first.
func (s *sorter) sortRun() (first, second []sortRef) {
	const parallelFrom = 1 << 14 // records: below, one goroutine does
	if cap(s.scratch) < len(s.refs) {
		s.scratch = make([]sortRef, cap(s.refs))
	}
	if len(s.refs) < parallelFrom {
		s.sortRefs(s.refs, s.scratch[:len(s.refs)])
		return s.refs, nil
	}
	h := len(s.refs) / 2
	first, second = s.refs[:h], s.refs[h:]
	var wg sync.WaitGroup
	wg.Go(func() { s.sortRefs(first, s.scratch[:h]) })
	s.sortRefs(second, s.scratch[h:len(s.refs)])
	wg.Wait()
	return first, second
}

// sortRefs puts refs, which are in the order their records were added, in
// the order compare gives, using scratch (as long as refs): a stable LSD
// radix sort on the prefixes, a byte at a time, skipping the bytes all
// prefixes share (most of them, for user ids), then, within each group of
// equal prefixes, a stable sort by key where a key is not exactly those
// eight bytes. It does in a few linear passes what a comparison sort did in
// n log n comparisons.
func (s *sorter) sortRefs(refs, scratch []sortRef) {
	if len(refs) < 2 {
		return
	}
	var counts [8][256]int
	for _, r := range refs {
		for d := range 8 {
			counts[d][byte(r.prefix>>(8*d))]++
		}
	}
	src, dst := refs, scratch
	for d := range 8 {
		c := &counts[d]
		if c[byte(refs[0].prefix>>(8*d))] == len(refs) {
			continue // every prefix has this byte: nothing to order
		}
		var offs [256]int
		sum := 0
		for b, n := range c {
			offs[b], sum = sum, sum+n
		}
		for _, r := range src {
			b := byte(r.prefix >> (8 * d))
			dst[offs[b]] = r
			offs[b]++
		}
		src, dst = dst, src
	}
	if &src[0] != &refs[0] {
		copy(refs, src)
	}
	// Ties: keys that are not their prefix's eight bytes.
	for i := 0; i < len(refs); {
		j := i + 1
		for j < len(refs) && refs[j].prefix == refs[i].prefix {
			j++
		}
		if j-i > 1 && !s.allEightBytes(refs[i:j]) {
			slices.SortStableFunc(refs[i:j], func(a, b sortRef) int {
				return bytes.Compare(a.key(s.run), b.key(s.run))
			})
		}
		i = j
	}
}

// allEightBytes reports whether every ref's key is 8 bytes long (a
// record's key length is its first byte): then the prefixes are the keys.
func (s *sorter) allEightBytes(refs []sortRef) bool {
	for _, r := range refs {
		if s.run[r.off] != 8 {
			return false
		}
	}
	return true
}

func (s *sorter) spill() error {
	first, second := s.sortRun()
	f, err := os.CreateTemp(filepath.Dir(s.path), filepath.Base(s.path)+".sort-*")
	if err != nil {
		return fmt.Errorf("spill sorted records: %w", err)
	}
	os.Remove(f.Name())
	w := bufio.NewWriterSize(f, 256<<10)
	var hdr []byte
	for len(first) > 0 || len(second) > 0 { // the two halves merged
		var r sortRef
		if len(second) == 0 || len(first) > 0 && s.compare(first[0], second[0]) <= 0 {
			r, first = first[0], first[1:]
		} else {
			r, second = second[0], second[1:]
		}
		key, value := r.record(s.run)
		hdr = binary.AppendUvarint(hdr[:0], uint64(len(key)))
		hdr = binary.AppendUvarint(hdr, uint64(len(value)))
		w.Write(hdr)
		w.Write(key)
		w.Write(value)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("spill sorted records: %w", err)
	}
	s.runs = append(s.runs, f)
	s.run, s.refs = s.run[:0], s.refs[:0]
	return nil
}

// close releases the runs.
func (s *sorter) close() error {
	var errs []error
	for _, f := range s.runs {
		errs = append(errs, f.Close())
	}
	s.runs, s.run, s.refs, s.scratch = nil, nil, nil, nil
	return errors.Join(errs...)
}

// iterate returns the records in key order. Add must not be called after.
func (s *sorter) iterate() (*sortIter, error) {
	first, second := s.sortRun()
	it := &sortIter{}
	for _, f := range s.runs {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return nil, fmt.Errorf("read sorted records: %w", err)
		}
		if err := it.push(&fileCursor{r: bufio.NewReaderSize(f, 128<<10)}); err != nil {
			return nil, err
		}
	}
	for _, refs := range [][]sortRef{first, second} {
		if err := it.push(&memCursor{run: s.run, refs: refs}); err != nil {
			return nil, err
		}
	}
	heap.Init(it)
	return it, nil
}

// A cursor is one run being read.
type cursor interface {
	// advance moves to the next record; io.EOF after the last.
	advance() error
	record() (key, value []byte) // valid until the next advance
}

type memCursor struct {
	run  []byte
	refs []sortRef
	cur  sortRef
}

func (c *memCursor) advance() error {
	if len(c.refs) == 0 {
		return io.EOF
	}
	c.cur, c.refs = c.refs[0], c.refs[1:]
	return nil
}

func (c *memCursor) record() ([]byte, []byte) { return c.cur.record(c.run) }

type fileCursor struct {
	r    *bufio.Reader
	buf  []byte
	klen int
}

func (c *fileCursor) advance() error {
	klen, err := binary.ReadUvarint(c.r)
	if err != nil {
		return err // io.EOF at the end of the run
	}
	vlen, err := binary.ReadUvarint(c.r)
	if err != nil {
		return unexpected(err)
	}
	n := int(klen + vlen)
	if cap(c.buf) < n {
		c.buf = make([]byte, n, n*2)
	}
	c.buf, c.klen = c.buf[:n], int(klen)
	_, err = io.ReadFull(c.r, c.buf)
	return unexpected(err)
}

func (c *fileCursor) record() ([]byte, []byte) { return c.buf[:c.klen], c.buf[c.klen:] }

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// sortIter merges runs: a heap of cursors, smallest key on top, and of
// equal keys the one from the run added first (cursors are pushed in the
// order their runs were added).
type sortIter struct {
	cursors []cursor
	keys    [][]byte // each cursor's current key, for Less
	seq     []int    // each cursor's place in the order of runs
	moved   bool     // the top cursor's record was returned: advance it first
}

func (it *sortIter) push(c cursor) error {
	switch err := c.advance(); {
	case err == io.EOF:
		return nil
	case err != nil:
		return fmt.Errorf("read sorted records: %w", err)
	}
	k, _ := c.record()
	it.cursors, it.keys, it.seq = append(it.cursors, c), append(it.keys, k), append(it.seq, len(it.seq))
	return nil
}

// next returns the next record in key order, valid until the next call, or
// ok false at the end.
func (it *sortIter) next() (key, value []byte, ok bool, err error) {
	if it.moved {
		it.moved = false
		switch err := it.cursors[0].advance(); {
		case err == io.EOF:
			heap.Pop(it)
		case err != nil:
			return nil, nil, false, fmt.Errorf("read sorted records: %w", err)
		default:
			it.keys[0], _ = it.cursors[0].record()
			heap.Fix(it, 0)
		}
	}
	if len(it.cursors) == 0 {
		return nil, nil, false, nil
	}
	it.moved = true
	key, value = it.cursors[0].record()
	return key, value, true, nil
}

func (it *sortIter) Len() int { return len(it.cursors) }
func (it *sortIter) Less(i, j int) bool {
	if c := bytes.Compare(it.keys[i], it.keys[j]); c != 0 {
		return c < 0
	}
	return it.seq[i] < it.seq[j]
}

func (it *sortIter) Swap(i, j int) {
	it.cursors[i], it.cursors[j] = it.cursors[j], it.cursors[i]
	it.keys[i], it.keys[j] = it.keys[j], it.keys[i]
	it.seq[i], it.seq[j] = it.seq[j], it.seq[i]
}
func (it *sortIter) Push(x any) { panic("sortIter: push through it.push") }
func (it *sortIter) Pop() any {
	n := len(it.cursors) - 1
	c := it.cursors[n]
	it.cursors, it.keys, it.seq = it.cursors[:n], it.keys[:n], it.seq[:n]
	return c
}
