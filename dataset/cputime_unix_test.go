//go:build unix

package dataset

import (
	"syscall"
	"time"
)

// processCPU is the CPU time this process has used: benchmarks report it per image because on
// a shared machine wall time measures the neighbours too.
func processCPU() time.Duration {
	var r syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &r); err != nil {
		return 0
	}
	return time.Duration(r.Utime.Nano() + r.Stime.Nano())
}
