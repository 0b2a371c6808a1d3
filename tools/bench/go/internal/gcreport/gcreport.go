// Package gcreport prints the one stderr line that run_gc_bench reads from
// every garbage-collection benchmark:
//
//	bench-gc: collections <n> max_pause_ms <x> heap_mb <y>
//
// from runtime.ReadMemStats: NumGC, the longest of the (at most 256) most
// recent stop-the-world pauses, and HeapSys.
package gcreport

import (
	"fmt"
	"os"
	"runtime"
)

// Report writes the bench-gc line to stderr.
func Report() {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	var max uint64
	for _, p := range m.PauseNs {
		if p > max {
			max = p
		}
	}
	fmt.Fprintf(os.Stderr, "bench-gc: collections %d max_pause_ms %.2f heap_mb %.1f\n",
		m.NumGC, float64(max)/1e6, float64(m.HeapSys)/1048576)
}
