package main

import (
	"os"
	"testing"

	"github.com/cairn-dev/cairn/fnrun/js"
)

// TestMain makes the test binary a JavaScript worker when a server under
// test starts it as one (as the cairn binary does).
func TestMain(m *testing.M) {
	if os.Getenv(js.WorkerEnv) == "1" {
		js.WorkerMain()
	}
	os.Exit(m.Run())
}
