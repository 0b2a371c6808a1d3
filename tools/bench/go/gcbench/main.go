// gcbench: the Go variant of tools/bench/gcbench.c, a GCBench-style
// workload (same phases, node layout and output; see that file).
//
// Usage: gcbench [scale]     (default 1)
package main

import (
	"fmt"
	"os"
	"strconv"

	"mgc/tools/bench/go/internal/gcreport"
)

const (
	stretchDepth   = 18
	longLivedDepth = 16
	arrayLen       = 500000
	minDepth       = 4
	maxDepth       = 16
)

// gnode matches the C struct: two pointers and two int32s, 24 bytes.
type gnode struct {
	left, right *gnode
	i, j        int32
}

func treeSize(depth int) int64 { return int64(1)<<uint(depth+1) - 1 }

func populate(depth int, n *gnode) {
	if depth <= 0 {
		return
	}
	n.left = &gnode{i: int32(depth - 1)}
	n.right = &gnode{i: int32(depth - 1)}
	populate(depth-1, n.left)
	populate(depth-1, n.right)
}

func makeTree(depth int) *gnode {
	if depth <= 0 {
		return &gnode{}
	}
	l := makeTree(depth - 1)
	r := makeTree(depth - 1)
	return &gnode{left: l, right: r, i: int32(depth)}
}

func count(n *gnode, depth int) int64 {
	if int(n.i) != depth {
		fmt.Fprintf(os.Stderr, "gcbench: node of depth %d says %d: heap corrupted\n", depth, n.i)
		os.Exit(1)
	}
	if n.left == nil {
		return 1
	}
	return 1 + count(n.left, depth-1) + count(n.right, depth-1)
}

func oneTopDown(depth int) int64 {
	t := &gnode{i: int32(depth)}
	populate(depth, t)
	return count(t, depth)
}

func oneBottomUp(depth int) int64 { return count(makeTree(depth), depth) }

func main() {
	scale := int64(1)
	if len(os.Args) > 1 {
		v, err := strconv.ParseInt(os.Args[1], 10, 64)
		if err != nil || v < 1 {
			fmt.Fprintln(os.Stderr, "gcbench: scale must be a positive integer")
			os.Exit(2)
		}
		scale = v
	}

	fmt.Printf("stretch tree of depth %d\t check: %d\n", stretchDepth, oneBottomUp(stretchDepth))

	longLived := &gnode{i: longLivedDepth}
	populate(longLivedDepth, longLived)
	array := make([]float64, arrayLen)
	for i := 0; i < arrayLen/2; i++ {
		array[i] = 1.0 / float64(i+1)
	}

	for d := minDepth; d <= maxDepth; d += 2 {
		iters := scale * 2 * treeSize(stretchDepth) / treeSize(d)
		var td, bu int64
		for k := int64(0); k < iters; k++ {
			td += oneTopDown(d)
		}
		for k := int64(0); k < iters; k++ {
			bu += oneBottomUp(d)
		}
		fmt.Printf("%d\t trees of depth %d\t top-down check: %d\t bottom-up check: %d\n",
			iters, d, td, bu)
	}

	fmt.Printf("long lived tree of depth %d\t check: %d\n", longLivedDepth, count(longLived, longLivedDepth))
	ok := "CORRUPTED"
	if array[1000] == 1.0/1001 && array[arrayLen/2-1] == 1.0/(arrayLen/2) {
		ok = "ok"
	}
	fmt.Printf("long lived array\t %s\n", ok)
	gcreport.Report()
}
