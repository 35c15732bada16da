package main

import (
	"fmt"
	"os"
	"testing"

	"github.com/cairn-dev/cairn/fnrun/js"
)

// TestMain makes the test binary a JavaScript worker when a server under
// test starts it as one (as the cairn binary does), or a fan-out benchmark
// server (BenchmarkRealtimeFanout).
func TestMain(m *testing.M) {
	if os.Getenv(js.WorkerEnv) == "1" {
		js.WorkerMain()
	}
	if mode := os.Getenv(fanoutServerEnv); mode != "" {
		if err := fanoutServerMain(mode); err != nil {
			fmt.Fprintln(os.Stderr, "fan-out server:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}
