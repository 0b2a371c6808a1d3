// binarytrees: the Benchmarks Game "binary-trees" program, the Go variant of
// tools/bench/binarytrees.c (same phases, same output; see that file).
//
// Usage: binarytrees [max_depth [threads]]    (defaults 10 and 1)
//
// With threads > 1 each depth's trees are split evenly between that many
// goroutines; with 1, all work stays on the main goroutine (the collector's
// background workers may still use other cores, as they do in any Go
// program).
package main

import (
	"fmt"
	"os"
	"strconv"
	"sync"

	"mgc/tools/bench/go/internal/gcreport"
)

const minDepth = 4

type node struct {
	left, right *node
}

func bottomUpTree(depth int) *node {
	if depth <= 0 {
		return &node{}
	}
	return &node{bottomUpTree(depth - 1), bottomUpTree(depth - 1)}
}

func (n *node) itemCheck() int64 {
	if n.left == nil {
		return 1
	}
	return 1 + n.left.itemCheck() + n.right.itemCheck()
}

func oneTree(depth int) int64 { return bottomUpTree(depth).itemCheck() }

func treesOfDepth(depth int, iterations int64, threads int) int64 {
	if threads == 1 {
		var c int64
		for i := int64(0); i < iterations; i++ {
			c += oneTree(depth)
		}
		return c
	}
	checks := make([]int64, threads)
	var wg sync.WaitGroup
	for t := 0; t < threads; t++ {
		n := iterations / int64(threads)
		if int64(t) < iterations%int64(threads) {
			n++
		}
		wg.Add(1)
		go func(t int, n int64) {
			defer wg.Done()
			var c int64
			for i := int64(0); i < n; i++ {
				c += oneTree(depth)
			}
			checks[t] = c
		}(t, n)
	}
	wg.Wait()
	var c int64
	for _, x := range checks {
		c += x
	}
	return c
}

func atoi(args []string, i, def int) int {
	if len(args) <= i {
		return def
	}
	v, err := strconv.Atoi(args[i])
	if err != nil {
		fmt.Fprintf(os.Stderr, "binarytrees: bad number %q\n", args[i])
		os.Exit(2)
	}
	return v
}

func main() {
	n := atoi(os.Args, 1, 10)
	threads := atoi(os.Args, 2, 1)
	if threads < 1 || threads > 64 {
		fmt.Fprintln(os.Stderr, "binarytrees: threads must be 1..64")
		os.Exit(2)
	}
	maxDepth := n
	if maxDepth < minDepth+2 {
		maxDepth = minDepth + 2
	}
	stretch := maxDepth + 1
	fmt.Printf("stretch tree of depth %d\t check: %d\n", stretch, oneTree(stretch))

	longLived := bottomUpTree(maxDepth)
	for d := minDepth; d <= maxDepth; d += 2 {
		iterations := int64(1) << uint(maxDepth-d+minDepth)
		c := treesOfDepth(d, iterations, threads)
		fmt.Printf("%d\t trees of depth %d\t check: %d\n", iterations, d, c)
	}
	fmt.Printf("long lived tree of depth %d\t check: %d\n", maxDepth, longLived.itemCheck())
	gcreport.Report()
}
