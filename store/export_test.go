package store

// SetLoadChunk makes Finish apply a user's events n at a time, so that tests
// reach the several-steps path with small histories. It returns the undo.
func SetLoadChunk(n int) (undo func()) {
	old := loadChunk
	loadChunk = n
	return func() { loadChunk = old }
}
