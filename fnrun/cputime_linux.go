package fnrun

import (
	"syscall"
	"time"
)

// ProcessCPU returns the CPU time (user and system) this process has used.
func ProcessCPU() time.Duration { return rusage(syscall.RUSAGE_SELF) }

// ThreadCPU returns the CPU time the calling OS thread has used: with
// runtime.LockOSThread around an execution, what that execution used.
func ThreadCPU() time.Duration { return rusage(1) } // RUSAGE_THREAD

func rusage(who int) time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(who, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
