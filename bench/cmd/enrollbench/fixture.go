package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/enrollstatus/enrollstatus/projection"
	"github.com/enrollstatus/enrollstatus/store"
)

// fixtureParams describe a synthetic projection. They key its cache entry,
// so a projection is built once per set of parameters.
type fixtureParams struct {
	Users       int    `json:"users"`
	Courses     int    `json:"courses"`
	Enrollments int    `json:"enrollments_per_user"`
	Completions int    `json:"completions_per_user"`
	Seed        uint64 `json:"seed"`
}

// fixtureVersion changes when the generated content changes, so that stale
// cache entries are not reused.
const fixtureVersion = 1

func (p fixtureParams) key() string {
	return fmt.Sprintf("proj-v%d-u%d-c%d-e%d-k%d-s%d", fixtureVersion, p.Users, p.Courses, p.Enrollments, p.Completions, p.Seed)
}

// fixtureInfo is what building a projection measured; it is stored next to
// the file and marks the entry complete.
type fixtureInfo struct {
	Params       fixtureParams `json:"params"`
	Events       int64         `json:"events"`
	BuildSeconds float64       `json:"build_seconds"`
	FileBytes    int64         `json:"file_bytes"`
	EventsPerSec float64       `json:"events_per_second"`
	PeakRSSAnon  int64         `json:"peak_rss_anon_bytes"`
}

// fixtureBase is the time the synthetic history ends at.
var fixtureBase = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// courseKey is a realistic Open edX course key (about 30 bytes).
func courseKey(i int) string {
	orgs := []string{"edX", "MITx", "HarvardX", "UQx", "DelftX", "BerkeleyX"}
	return fmt.Sprintf("course-v1:%s+CS%04d+%d_T%d", orgs[i%len(orgs)], i, 2023+i%4, 1+i%3)
}

func courseName(i int) string {
	subjects := []string{"Introduction to Computer Science", "Data Structures and Algorithms", "Linear Algebra",
		"Histoire de l'art moderne", "Физика для всех", "Machine Learning Foundations", "Statistics 101", "Astronomy"}
	return fmt.Sprintf("%s %d", subjects[i%len(subjects)], i)
}

// username is the username of a synthetic user; it is as long as typical
// LMS usernames.
func username(id int) string { return fmt.Sprintf("learner%07d", id) }

// fixturePath returns the projection file for p under cacheDir, building it
// through store.Apply in large user-sorted batches when it is not cached.
func fixturePath(cacheDir string, p fixtureParams, log io.Writer) (string, fixtureInfo, error) {
	dir := filepath.Join(cacheDir, p.key())
	path := filepath.Join(dir, store.FileName)
	infoPath := filepath.Join(dir, "fixture.json")
	var info fixtureInfo
	if b, err := os.ReadFile(infoPath); err == nil {
		if json.Unmarshal(b, &info) == nil {
			return path, info, nil
		}
	}
	os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", info, err
	}
	fmt.Fprintf(log, "building projection %s (cached afterwards)...\n", p.key())
	rss := startRSSSampler(os.Getpid(), 200*time.Millisecond)
	start := time.Now()
	events, err := buildFixture(path, p, log)
	if err != nil {
		return "", info, err
	}
	info = fixtureInfo{Params: p, Events: events, BuildSeconds: time.Since(start).Seconds(), PeakRSSAnon: rss.stop().PeakAnon}
	info.EventsPerSec = float64(events) / info.BuildSeconds
	if fi, err := os.Stat(path); err == nil {
		info.FileBytes = fi.Size()
	}
	b, _ := json.MarshalIndent(info, "", "  ")
	if err := os.WriteFile(infoPath, b, 0o640); err != nil {
		return "", info, err
	}
	fmt.Fprintf(log, "built %s: %d events in %.1fs (%.0f events/s), %d MiB\n", p.key(), events,
		info.BuildSeconds, info.EventsPerSec, info.FileBytes>>20)
	return path, info, nil
}

// usersPerBatch bounds one transaction of the build: about 120k events.
const usersPerBatch = 2000

func buildFixture(path string, p fixtureParams, log io.Writer) (int64, error) {
	if p.Enrollments > p.Courses {
		return 0, errors.New("more enrollments per user than courses")
	}
	opts := store.DefaultOptions()
	st, err := store.Open(path, opts)
	if err != nil {
		return 0, err
	}
	defer st.Close()
	rng := rand.New(rand.NewPCG(p.Seed, 0xf1c7))

	// The catalog first: course names and mobile availability, so that each
	// enrollment copies the course's view into the record as it joins.
	var catalog []projection.Event
	names := make([]string, p.Courses)
	keys := make([]string, p.Courses)
	for i := range p.Courses {
		keys[i], names[i] = courseKey(i), courseName(i)
		mobile := i%10 != 9
		catalog = append(catalog, projection.CourseInfo{CourseID: keys[i], Name: &names[i], MobileAvailable: &mobile,
			Time: fixtureBase.Add(-90 * 24 * time.Hour)})
	}
	if _, err := st.Apply(store.Batch{Events: catalog, Messages: len(catalog)}); err != nil {
		return 0, err
	}
	total := int64(len(catalog))

	ago := func(days int) time.Time {
		return fixtureBase.Add(-time.Duration(rng.Int64N(int64(days) * int64(24*time.Hour)))).Truncate(time.Microsecond)
	}
	modes := []string{"audit", "verified", "honor"}
	perUser := p.Enrollments + p.Completions
	events := make([]projection.Event, 0, usersPerBatch*perUser)
	picked := make([]int, 0, p.Enrollments)
	lastReport := time.Now()
	for first := 1; first <= p.Users; first += usersPerBatch {
		events = events[:0]
		for id := first; id < first+usersPerBatch && id <= p.Users; id++ {
			picked = picked[:0]
			for len(picked) < p.Enrollments {
				c := rng.IntN(p.Courses)
				dup := false
				for _, x := range picked {
					dup = dup || x == c
				}
				if !dup {
					picked = append(picked, c)
				}
			}
			name := username(id)
			for j, c := range picked {
				at := ago(365)
				events = append(events, projection.Enrollment{UserID: int64(id), Username: name, CourseID: keys[c],
					CourseName: &names[c], Mode: modes[rng.IntN(len(modes))], Active: j != 0 || rng.IntN(4) != 0,
					Created: at, Time: at})
			}
			for range p.Completions {
				c := picked[rng.IntN(len(picked))]
				at := ago(60)
				events = append(events, projection.Completion{UserID: int64(id), CourseID: keys[c],
					BlockID: fmt.Sprintf("block-v1:%s+type@problem+block@%08x", keys[c][len("course-v1:"):], rng.Uint32()),
					Created: at, Time: at})
			}
		}
		if _, err := st.Apply(store.Batch{Events: events, Messages: len(events)}); err != nil {
			return total, err
		}
		total += int64(len(events))
		if time.Since(lastReport) > 10*time.Second {
			lastReport = time.Now()
			fmt.Fprintf(log, "  %d/%d users\n", min(first+usersPerBatch-1, p.Users), p.Users)
		}
	}
	return total, nil
}

func cmdFixture(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("fixture", flag.ContinueOnError)
	p := defaultFixture()
	cache := fs.String("cache", ".cache/bench", "cache directory")
	fs.IntVar(&p.Users, "users", p.Users, "users")
	fs.IntVar(&p.Courses, "courses", p.Courses, "courses in the catalog")
	fs.IntVar(&p.Enrollments, "enrollments", p.Enrollments, "enrollments per user")
	fs.IntVar(&p.Completions, "completions", p.Completions, "completions per user")
	if err := fs.Parse(args); err != nil {
		return err
	}
	path, info, err := fixturePath(*cache, p, stderr)
	if err != nil {
		return err
	}
	b, _ := json.MarshalIndent(info, "", "  ")
	fmt.Fprintf(stdout, "%s\n%s\n", path, b)
	return nil
}

func defaultFixture() fixtureParams {
	return fixtureParams{Users: 1_000_000, Courses: 2000, Enrollments: 10, Completions: 50, Seed: 1}
}
