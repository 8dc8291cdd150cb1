package store

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/enrollstatus/enrollstatus/projection"
)

// TestNoSyncUntilRename checks that a rebuild's file skips fsyncs only until
// it takes the live file's place, and keeps what it holds through the move.
func TestNoSyncUntilRename(t *testing.T) {
	dir := t.TempDir()
	opts := DefaultOptions()
	opts.NoSync = true
	s, err := Open(filepath.Join(dir, "next.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !s.db.NoSync {
		t.Fatal("NoSync was not applied")
	}
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := s.Apply(Batch{Events: []projection.Event{projection.Enrollment{UserID: 1, Username: "ann",
		CourseID: "course-v1:a+b+c", Mode: "audit", Active: true, Created: at, Time: at}}, Messages: 1}); err != nil {
		t.Fatal(err)
	}
	live := filepath.Join(dir, FileName)
	if err := s.Rename(live); err != nil {
		t.Fatal(err)
	}
	if s.db.NoSync {
		t.Fatal("commits after the rename would not be durable")
	}
	if s.Path() != live {
		t.Fatalf("path %s after rename, want %s", s.Path(), live)
	}
	if _, found, err := s.User(t.Context(), 1); err != nil || !found {
		t.Fatalf("user after rename: found %v, %v", found, err)
	}
}
