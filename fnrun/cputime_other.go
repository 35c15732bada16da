//go:build !linux

package fnrun

import "time"

// ProcessCPU returns 0: CPU time is measured on Linux only.
func ProcessCPU() time.Duration { return 0 }

// ThreadCPU returns 0: CPU time is measured on Linux only.
func ThreadCPU() time.Duration { return 0 }
