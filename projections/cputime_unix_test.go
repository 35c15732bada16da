//go:build unix

package projections

import (
	"syscall"
	"time"
)

// processCPU is the CPU time this process has used (user and system, every
// thread: the embedded NATS server's too). On a shared machine it measures
// work where wall time measures the neighbours.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
