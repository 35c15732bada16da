package js_test

import (
	"runtime"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/fnrun"
	"github.com/cairn-dev/cairn/fnrun/js"
)

// TestCPUTime: an execution that computes reports the worker's CPU time
// for it (what usage bills), and one that waits reports little.
func TestCPUTime(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("CPU time is measured on Linux only")
	}
	p := newPool(t, js.PoolOptions{})
	busy := cjs(`async ({ res }) => { let x = 0; for (let i = 0; i < 1e6; i++) { x += i % 7; } return res.text(String(x)); }`)
	start := time.Now()
	resp := mustRun(t, p, busy, fnrun.Request{})
	wall := time.Since(start)
	if resp.CPUTime < 5*time.Millisecond || resp.CPUTime > wall+50*time.Millisecond {
		t.Fatalf("busy execution: CPU time %v (wall %v)", resp.CPUTime, wall)
	}
	idle := mustRun(t, p, cjs(`async ({ res }) => { await new Promise(r => setTimeout(r, 300)); return res.text('ok'); }`), fnrun.Request{})
	if idle.CPUTime >= 250*time.Millisecond {
		t.Fatalf("waiting execution: CPU time %v, want far below its 300 ms wait", idle.CPUTime)
	}
	t.Logf("busy: %v CPU in %v wall; waiting 300 ms: %v CPU", resp.CPUTime, wall, idle.CPUTime)
}
