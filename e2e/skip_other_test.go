//go:build !linux

package e2e

import "testing"

// The suite drives bash scripts, process groups and PR_SET_PDEATHSIG: Linux only.
func TestEndToEnd(t *testing.T) {
	t.Skip("the end-to-end suite runs on Linux: scripts/e2e.sh")
}
