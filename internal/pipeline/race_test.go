//go:build race

package pipeline_test

// raceDetector reports whether the tests run under the race detector,
// which makes ingest about ten times slower.
const raceDetector = true
