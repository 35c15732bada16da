package js

import (
	"context"
	"encoding/gob"
	"errors"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/fnrun"
)

const hangEnv = "CAIRN_TEST_HANGING_WORKER"

// A hanging worker says it is ready, then never answers: the parent must
// kill it at the deadline plus grace.
func init() {
	if os.Getenv(hangEnv) == "1" {
		_ = gob.NewEncoder(os.Stdout).Encode(reply{Kind: kindReady})
		select {}
	}
}

func TestHangingWorkerIsKilled(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPool(PoolOptions{Command: func() *exec.Cmd {
		c := exec.Command(exe)
		c.Env = []string{hangEnv + "=1", "GORACE=atexit_sleep_ms=0"}
		return c
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	lim := fnrun.Limits{Timeout: 200 * time.Millisecond}
	for range 2 {
		start := time.Now()
		_, err := p.Run(context.Background(), []byte("module.exports = () => 1"), fnrun.Request{}, lim)
		if !errors.Is(err, fnrun.ErrTimeout) {
			t.Fatalf("err = %v, want ErrTimeout", err)
		}
		if took := time.Since(start); took < lim.Timeout+grace || took > lim.Timeout+grace+time.Second {
			t.Errorf("took %v", took)
		}
	}
}

func TestNewPoolFailsWithoutAWorker(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// The test binary without the worker variable runs no test and prints
	// PASS: not a worker.
	_, err = NewPool(PoolOptions{Command: func() *exec.Cmd {
		c := exec.Command(exe, "-test.run=^$")
		c.Env = []string{"GORACE=atexit_sleep_ms=0"}
		return c
	}})
	if err == nil {
		t.Fatal("NewPool succeeded")
	}
	t.Log(err)
}
