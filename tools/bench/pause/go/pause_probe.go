// pause_probe.go: the Go counterpart of ../pause_probe.c, with the same
// workload, histogram and output keys (see that file's opening comment).
//
// 56-byte nodes (Go's 64-byte size class) in lists of listLen, heads in a
// spine slice reachable from a global; each iteration allocates
// garbagePerIter short-lived objects of 64 to 1024 bytes (pointer slices,
// scanned like the C probe's, chained through their first word) and
// replaces replacePerIter live nodes.
// Pointer stores get Go's own write barrier.  The collector's own view
// ("self_*") is MemStats.PauseNs, the stop-the-world time per cycle, read
// once before and once after the loop (ReadMemStats stops the world).
//
// usage: pause_probe_go [LIVE_MIB [SECONDS]]     GOGC etc. as usual
package main

import (
	"fmt"
	"math/bits"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"time"
	"unsafe"
)

type node struct {
	next    *node
	payload [6]uint64
}

const (
	nodeSlotBytes   = 64
	listLen         = 16
	garbagePerIter  = 12
	garbageMinWords = 8 // object g has garbageMinWords << (g % garbageSizes) words
	garbageSizes    = 5
	replacePerIter  = 4
)

var (
	spine    []*node
	rngState uint64 = 0x9e3779b97f4a7c15
	sink     uint64
)

func rngNext() uint64 {
	x := rngState
	x ^= x >> 12
	x ^= x << 25
	x ^= x >> 27
	rngState = x
	return x * 0x2545f4914f6cdd1d
}

func liveBuild(liveMiB int) {
	nodes := liveMiB * 1024 * 1024 / nodeSlotBytes
	spine = make([]*node, nodes/listLen)
	for i := range spine {
		var head *node
		for k := 0; k < listLen; k++ {
			n := &node{next: head}
			n.payload[0] = uint64(i*listLen + k)
			head = n
		}
		spine[i] = head
	}
}

//go:noinline
func mutateOnce() {
	var chain unsafe.Pointer
	for g := 0; g < garbagePerIter; g++ {
		o := make([]unsafe.Pointer, garbageMinWords<<(g%garbageSizes))
		o[0] = chain
		chain = unsafe.Pointer(&o[0])
	}
	var sum uint64
	for ; chain != nil; chain = *(*unsafe.Pointer)(chain) {
		sum++
	}
	sink += sum

	nl := uint64(len(spine))
	for r := 0; r < replacePerIter; r++ {
		x := rngNext()
		slot := &spine[x%nl]
		for k := (x >> 40) % listLen; k > 0; k-- {
			slot = &(*slot).next
		}
		old := *slot
		n := &node{next: old.next, payload: old.payload}
		*slot = n
	}
}

// Histogram: the same log-linear buckets as the C probe.
const (
	histSubBits = 5
	histSub     = 1 << histSubBits
	histMaxExp  = 40
	histBuckets = 2*histSub + (histMaxExp-histSubBits)*histSub
)

var hist [histBuckets]uint64

func histBucket(v uint64) int {
	if v < 2*histSub {
		return int(v)
	}
	e := 63 - bits.LeadingZeros64(v)
	if e >= histMaxExp {
		return histBuckets - 1
	}
	shift := e - histSubBits
	return 2*histSub + (shift-1)*histSub + int((v>>shift)-histSub)
}

func histBucketTop(b int) uint64 {
	if b < 2*histSub {
		return uint64(b)
	}
	shift := (b-2*histSub)/histSub + 1
	mant := uint64(histSub + (b-2*histSub)%histSub)
	return ((mant + 1) << shift) - 1
}

func histQuantile(n uint64, q float64, max uint64) uint64 {
	rank := uint64(q * float64(n))
	if rank >= n {
		rank = n - 1
	}
	var seen uint64
	for b := 0; b < histBuckets; b++ {
		seen += hist[b]
		if seen > rank {
			if t := histBucketTop(b); t < max {
				return t
			}
			return max
		}
	}
	return max
}

func argInt(s, what string, lo, hi int) int {
	v, err := strconv.Atoi(s)
	if err != nil || v < lo || v > hi {
		fmt.Fprintf(os.Stderr, "pause_probe: bad %s %q, expected an integer from %d to %d\n", what, s, lo, hi)
		os.Exit(2)
	}
	return v
}

func main() {
	liveMiB, seconds := 256, 10
	if len(os.Args) > 3 {
		fmt.Fprintf(os.Stderr, "usage: %s [LIVE_MIB [SECONDS]]\n", os.Args[0])
		os.Exit(2)
	}
	if len(os.Args) > 1 {
		liveMiB = argInt(os.Args[1], "live size (MiB)", 1, 1<<20)
	}
	if len(os.Args) > 2 {
		seconds = argInt(os.Args[2], "duration (s)", 1, 86400)
	}

	t0 := time.Now()
	liveBuild(liveMiB)
	buildS := time.Since(t0).Seconds()

	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	base := time.Now() // monotonic; time.Since(base) reads the vDSO clock
	start := uint64(time.Since(base))
	prev := start
	end := start + uint64(seconds)*1e9
	var iters, maxGap, over1, over10, sumOver1 uint64
	for {
		mutateOnce()
		t := uint64(time.Since(base))
		gap := t - prev
		prev = t
		iters++
		hist[histBucket(gap)]++
		if gap > maxGap {
			maxGap = gap
		}
		if gap >= 1000000 {
			over1++
			sumOver1 += gap
			if gap >= 10000000 {
				over10++
			}
		}
		if t >= end {
			break
		}
	}
	loopS := float64(prev-start) / 1e9
	runtime.ReadMemStats(&ms1)

	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	fmt.Printf("variant go\n")
	fmt.Printf("live_mib %d\n", liveMiB)
	fmt.Printf("build_s %.2f\n", buildS)
	fmt.Printf("loop_s %.2f\n", loopS)
	fmt.Printf("iterations %d\n", iters)
	fmt.Printf("iters_per_s %.0f\n", float64(iters)/loopS)
	fmt.Printf("gap_p50_us %.2f\n", float64(histQuantile(iters, 0.5, maxGap))/1e3)
	fmt.Printf("gap_p99_us %.2f\n", float64(histQuantile(iters, 0.99, maxGap))/1e3)
	fmt.Printf("gap_p999_us %.2f\n", float64(histQuantile(iters, 0.999, maxGap))/1e3)
	fmt.Printf("gap_p9999_us %.2f\n", float64(histQuantile(iters, 0.9999, maxGap))/1e3)
	fmt.Printf("gap_max_us %.1f\n", float64(maxGap)/1e3)
	fmt.Printf("gaps_over_1ms %d\n", over1)
	fmt.Printf("gaps_over_10ms %d\n", over10)
	fmt.Printf("time_in_gaps_over_1ms_ms %.1f\n", float64(sumOver1)/1e6)
	fmt.Printf("peak_rss_mib %.1f\n", float64(ru.Maxrss)/1024)
	fmt.Printf("cpu_s %.2f\n", float64(ru.Utime.Nano()+ru.Stime.Nano())/1e9)
	fmt.Printf("ctx_involuntary %d\n", ru.Nivcsw)
	fmt.Printf("ctx_voluntary %d\n", ru.Nvcsw)

	cycles := ms1.NumGC - ms0.NumGC
	var maxPause uint64
	first := ms0.NumGC
	if cycles > 256 {
		first = ms1.NumGC - 256
	}
	for k := first; k < ms1.NumGC; k++ {
		if p := ms1.PauseNs[k%256]; p > maxPause {
			maxPause = p
		}
	}
	fmt.Printf("collections %d\n", cycles)
	fmt.Printf("self_stops %d\n", 2*cycles) // two stops per cycle, summed per cycle in PauseNs
	fmt.Printf("self_max_pause_us %.1f\n", float64(maxPause)/1e3)
	fmt.Printf("self_total_pause_ms %.2f\n", float64(ms1.PauseTotalNs-ms0.PauseTotalNs)/1e6)
	fmt.Printf("self_gc_cpu_fraction %.3f\n", ms1.GCCPUFraction)
	fmt.Printf("heap_sys_mib %.1f\n", float64(ms1.HeapSys)/1048576)
	fmt.Fprintf(os.Stderr, "pause_probe: sink %d\n", sink)
}
