package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// The "ceiling ladder" ran each server on one core and the load on
// the other, so that the throughput ratio shows the servers and not the
// load generator (64 JSON clients cost ~100 µs of CPU per request
// themselves). -pin does the same: every server on pinServerCPU, this process
// (the clients) on pinLoadCPU.
const pinServerCPU, pinLoadCPU = 0, 1

// pinSelf moves every thread of this process to cpu and runs Go on one
// processor. Threads started later inherit the affinity of the thread that
// starts them, so all of them stay there.
func pinSelf(cpu int) error {
	runtime.GOMAXPROCS(1)
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return fmt.Errorf("list threads: %w", err)
	}
	var set unix.CPUSet
	set.Set(cpu)
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		// A thread may have exited since the listing.
		if err := unix.SchedSetaffinity(tid, &set); err != nil && err != unix.ESRCH {
			return fmt.Errorf("pin thread %d to CPU %d: %w", tid, cpu, err)
		}
	}
	return nil
}

// startOn starts cmd with its affinity set to cpu (none when cpu < 0): a
// child inherits the affinity of the thread that forks it, so this thread
// takes cpu's affinity just for the fork, and the server's runtime sees one
// processor from its first instruction (GOMAXPROCS 1, like the ladder's).
func startOn(start func() error, cpu int) error {
	if cpu < 0 {
		return start()
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var old, set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		return fmt.Errorf("read affinity: %w", err)
	}
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return fmt.Errorf("pin to CPU %d: %w", cpu, err)
	}
	err := start()
	if rerr := unix.SchedSetaffinity(0, &old); rerr != nil && err == nil {
		err = fmt.Errorf("restore affinity: %w", rerr)
	}
	return err
}

// cpusAllowed is the CPU list a process may run on, as /proc shows it.
func cpusAllowed(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return "?"
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}
