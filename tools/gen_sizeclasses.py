#!/usr/bin/env python3
"""gen_sizeclasses.py: generate mgc's small-object size classes.

Writes alloc/sizeclasses.h and alloc/sizeclasses.c.  Run it from anywhere:

    python3 tools/gen_sizeclasses.py          # regenerate both files
    python3 tools/gen_sizeclasses.py --check  # exit 1 if they are stale

A small request (1..SMALL_SIZE_MAX bytes) is rounded up to a size class.
Every object of a class comes from a span of the same number of pages,
carved into equal slots.  Two kinds of waste follow, and both are held to
at most 1/8 (12.5%):

  tail waste   class size - request, as a share of the class size.  Bounded
               for every request larger than 112 bytes; below that, the
               16-byte step between classes is itself more than 1/8 of the
               class, so no table of 16-aligned classes can meet it there
               (a 97-byte request in the 112-byte class wastes 13.4%).
  span waste   span bytes - nelems * size, the room left at the end of the
               span, as a share of the span.

How the classes are chosen:

  1. Ladder of candidate sizes.  8 (one word), 16 and 24, then in every
     power-of-two band [p, 2p) from 32 up the steps are p/8, but never less
     than 16, so objects of 32 bytes or more stay 16-byte aligned.  The
     24-byte class is only 8-byte aligned (all the API promises): three
     words is a common node (two pointers and a key, a cons cell with a
     tag), and without it each took a 32-byte slot; GCBench's 24-byte
     nodes made mgc run 207 collections where Go, with a 24-byte class,
     runs 157.  A step of at most 1/8 of the
     band's floor is what keeps the tail waste under 1/8.  From 1024 up the
     step is at least 128 (fewer classes; the tail waste bound holds).
     Every class size is a multiple of 8, so the lookup table needs one
     entry per 8 bytes.
  2. Span layout.  Each candidate takes the fewest pages (1..MAX_SPAN_PAGES)
     whose span waste is at most 1/8 and that hold at least
     MIN_SPAN_OBJECTS objects (or, for objects over 256 bytes, take at
     least MIN_OBJECTS_PAGES pages); nelems is how many objects fit.  A thread
     takes a span from its class's central list (a lock) every nelems
     allocations, and its frees into other spans are applied per span: at
     two 4 KiB objects to the page, a ring of 4 KiB allocations and frees
     ran at 145 ns per pair, and at eight to a 4-page span at 99 ns (a
     batch of them 620 -> 325 ns).  From 8 to 32 objects, a ring of 1000
     live objects of 1 KiB went from 84 to 51 ns per pair (mimalloc's
     calloc: 36), of 2 KiB 108 -> 78, of 4 KiB (16 to an 8-page span)
     189 -> 137.  The price: three classes more (70), and spans of 2 to 11
     pages for objects from 288 bytes up, so a thread's cached span of such
     a class holds up to 88 KiB (64 KiB for most).  A collected workload of
     mixed sizes up to 32 KiB kept the same peak RSS (medians of 4 runs,
     188 against 191 MB).  From 32 to 64 objects (classes of 144 to 1792
     bytes, spans of 2 to 8 pages instead of 1 to 7), gc_alloc_atomic +
     gc_free of 256-byte objects took 161.7 instead of 188.2 instructions
     per pair in a ring and 176.3 instead of 215.2 in a batch
     (callgrind), 0.85 and 0.81 of the time (medians of 6 interleaved
     rounds); four threads keeping rings of collected objects of 8 to
     2047 bytes peaked at 142 MB of RSS instead of 137 (5 rounds, same
     time).  A thread's cached spans of all those classes now come to
     1.15 MiB instead of 0.7.  From 64 to 256 objects (classes of 48 to
     896 bytes, spans of 2 to 8 pages instead of 1 to 7): the per-span
     work came 1.1 to 4 times less often (4 for 64 to 256 bytes), and gc_alloc_atomic + gc_free of
     256-byte objects took 0.80 of the time in a ring and 0.79 in a batch,
     of 64-byte objects 0.93 and 0.87 (medians of 5 interleaved rounds of
     alloc_bench); four threads keeping rings of collected objects of 8 to
     2047 bytes peaked at 361 MB of RSS instead of 356 (4 rounds), one
     thread at 91.8 against 90.7, binary-trees and GCBench the same.  A
     span of these classes pinned by one live object holds up to 64 KiB,
     as a small page of mimalloc's does.  And whatever the size, a span
     holds at least MIN_SPAN_OBJECTS_ANY (4) objects: the classes from
     20 KiB up had 2 or 3 to a span of 8 to 11 pages, and a program
     keeping a few of them alive traded spans with mcentral (two lock
     holds, and the held frees applied in a third) every second or third
     allocation of the class.  With 4, those classes take spans of 10 to
     16 pages (and a 30720-byte class earns its place); alloc_bench's
     ring_mix changed spans 1553 times in 300,000 operations instead of
     2726, batch_mix 3995 instead of 4894; gc_alloc_atomic + gc_free took
     130.6 instead of 136.5 instructions per pair in ring_mix and 149.6
     instead of 156.3 in batch_mix (callgrind), 0.92 and 0.88 of the time
     (medians of 6 interleaved rounds).  The slots of a thread's cached
     spans of every class, scanned and atomic, grow from 7.9 to 8.4 MiB.
     Eight objects would need spans over 16 pages, where the 32-bit
     divmul is no longer exact at every offset (30720 bytes at offset
     184319).
  3. Merge, walking down from the largest class.  A class earns its place
     only if it packs objects more densely than the class above it, that is
     spends fewer span bytes per object (npages * PAGE_SIZE / nelems);
     otherwise its objects take as much span room as the bigger ones and
     its smaller size saves nothing.  The plain case is two classes with the
     same (npages, nelems).  Such a class is, in order of preference:
       a. merged into the class above (dropped, the larger size kept), if
          that class still meets the tail bound over the wider range of
          requests it then serves;
       b. kept, with the smallest span that meets the span-waste bound and
          packs more densely;
       c. moved: replaced by the largest size, on the grid of step 1, that
          keeps the tail bound for itself (measured from the candidate
          below) and for the class above, and has such a span.
     If none applies the generator fails.

Finally every invariant the allocator relies on is checked here, loudly:
sizes aligned and increasing, the last one SMALL_SIZE_MAX, both waste
bounds, distinct layouts, lookup tables giving the smallest class that
fits, and the reciprocal `divmul` giving exact division for every byte
offset of every span.  The script is deterministic: same input, same bytes.
"""

import argparse
import os
import sys

# Geometry shared with the C side (emitted into sizeclasses.h).
PAGE_SHIFT = 13                  # 8 KiB pages, as Go's runtime
PAGE_SIZE = 1 << PAGE_SHIFT
SMALL_SIZE_MAX = 32768           # larger requests get their own span (class 0)
SMALL_SIZE_DIV = 8               # step of the lookup table, one word
SIZECLASS_LOOKUP_SHIFT = 6       # table entries hold class << this: the byte
                                 # offset of a pair of 32-byte mcache slots
SMALL_SIZE_MAX_FINE = 1024       # class sizes up to here on the fine grid
LARGE_SIZE_DIV = 128             # the grid of class sizes above that

# Choices of this generator.
WORD_SIZE = 8                    # class 1: the smallest object, one word
OBJECT_ALIGN = 16                # alignment kept by classes above ...
WORD_ALIGNED_MAX = 24            # ... this one (8, 16 and 24 are word-aligned)
BAND_STEPS = 8                   # ladder steps per power-of-two band
WASTE_DIV = 8                    # both waste bounds are 1/WASTE_DIV = 12.5%
MAX_SPAN_PAGES = 16              # longest span a small class may use
MIN_SPAN_OBJECTS = 256           # a span holds at least this many objects,
MIN_OBJECTS_PAGES = 8            # or takes at least this many pages (64 KiB)
MIN_SPAN_OBJECTS_ANY = 4         # and every span holds at least this many
DIVMUL_SHIFT = 32                # off / size == (off * divmul) >> DIVMUL_SHIFT
# Requests above this get the full tail-waste bound (see the docstring).
TAIL_WASTE_FLOOR = 112

# C types of the emitted tables; the generator checks every value fits.
UINT8_MAX = (1 << 8) - 1
UINT16_MAX = (1 << 16) - 1
UINT32_MAX = (1 << 32) - 1
LINE_WIDTH = 80                  # wrap emitted arrays at this column

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
HEADER_PATH = os.path.join("alloc", "sizeclasses.h")
SOURCE_PATH = os.path.join("alloc", "sizeclasses.c")
GENERATED_LINE = "generated by tools/gen_sizeclasses.py; do not edit"


class SizeClass:
    """One class: object size and the layout of its spans."""

    def __init__(self, size, npages, nelems):
        self.size = size
        self.npages = npages
        self.nelems = nelems
        self.divmul = 0

    def layout(self):
        return (self.npages, self.nelems)

    def span_bytes(self):
        return self.npages * PAGE_SIZE

    def span_waste(self):
        return self.span_bytes() - self.nelems * self.size


def fail(msg):
    sys.exit("gen_sizeclasses: " + msg)


def floor_pow2(n):
    return 1 << (n.bit_length() - 1)


def ladder():
    """Candidate sizes: WORD_SIZE, then BAND_STEPS steps per band."""
    sizes = [WORD_SIZE, 2 * WORD_SIZE, WORD_ALIGNED_MAX]
    size = 2 * OBJECT_ALIGN
    while size <= SMALL_SIZE_MAX:
        sizes.append(size)
        size += max(OBJECT_ALIGN, floor_pow2(size) // BAND_STEPS)
    return sizes


def layouts(size):
    """Every (npages, nelems) for `size` within the span-waste bound,
    fewest pages first."""
    for npages in range(1, MAX_SPAN_PAGES + 1):
        span = npages * PAGE_SIZE
        nelems = span // size
        if nelems < MIN_SPAN_OBJECTS_ANY:
            continue
        if nelems < MIN_SPAN_OBJECTS and npages < MIN_OBJECTS_PAGES:
            continue
        if nelems > 0 and (span - nelems * size) * WASTE_DIV <= span:
            yield (npages, nelems)


def tail_waste_ok(lower, size):
    """Whether requests in (lower, size] all round up to `size` within the
    tail bound; the worst one is lower + 1."""
    return (size - (lower + 1)) * WASTE_DIV <= size


def packs_denser(layout, above):
    """Whether `layout` spends fewer span bytes per object than `above`:
    npages / nelems < above.npages / above.nelems, in integers."""
    return layout[0] * above.nelems < above.npages * layout[1]


def size_grid(size):
    """Alignment of a class of `size` bytes (see the ladder)."""
    if size <= WORD_ALIGNED_MAX:
        return WORD_SIZE
    return OBJECT_ALIGN if size <= SMALL_SIZE_MAX_FINE else LARGE_SIZE_DIV


def denser_layout(size, above):
    """The fewest-pages layout of `size` that packs denser than `above`."""
    for layout in layouts(size):
        if packs_denser(layout, above):
            return layout
    return None


def moved_class(lower, above):
    """Rule 3c: the largest grid size in (lower, above) whose own requests
    and those of `above` stay within the tail bound, with a layout denser
    than `above`; None if there is none."""
    for s in range(above.size - 1, lower, -1):
        if s % size_grid(s) or not tail_waste_ok(s, above.size):
            continue
        if not tail_waste_ok(lower, s):
            continue
        layout = denser_layout(s, above)
        if layout:
            return SizeClass(s, layout[0], layout[1])
    return None


def choose_classes():
    """Steps 2 and 3 of the docstring; returns classes 1.. in size order."""
    sizes = ladder()
    chosen = []  # built from the largest class down
    for i in reversed(range(len(sizes))):
        size = sizes[i]
        lower = sizes[i - 1] if i > 0 else 0
        layout = next(layouts(size), None)
        if layout is None:
            fail("no span of 1..%d pages holds %d-byte objects within the "
                 "span-waste bound" % (MAX_SPAN_PAGES, size))
        if not chosen or packs_denser(layout, chosen[-1]):
            chosen.append(SizeClass(size, layout[0], layout[1]))
            continue
        above = chosen[-1]
        if lower >= TAIL_WASTE_FLOOR and tail_waste_ok(lower, above.size):
            continue  # 3a: merged into the class above
        layout = denser_layout(size, above)
        if layout:
            chosen.append(SizeClass(size, layout[0], layout[1]))  # 3b
            continue
        cls = moved_class(lower, above)  # 3c
        if cls is None:
            fail("class %d packs no denser than class %d and can be neither "
                 "merged, respanned nor moved" % (size, above.size))
        chosen.append(cls)
    chosen.reverse()
    return chosen


def compute_divmul(cls):
    """Set cls.divmul and prove, by trying every byte offset of the span,
    (off * divmul) >> 32 == off // size, and that the low 32 bits of the
    product are below divmul exactly when off is a slot's start (gc_free
    tests a pointer's alignment so, span_slot_of in alloc/mspan.h)."""
    cls.divmul = UINT32_MAX // cls.size + 1
    for off in range(cls.span_bytes()):
        if (off * cls.divmul) >> DIVMUL_SHIFT != off // cls.size:
            fail("divmul %d is inexact for size %d at offset %d"
                 % (cls.divmul, cls.size, off))
        if ((off * cls.divmul) & UINT32_MAX < cls.divmul) != (off % cls.size == 0):
            fail("divmul %d's low bits misjudge a slot start for size %d at offset %d"
                 % (cls.divmul, cls.size, off))


def max_tail_waste(classes, i):
    """Worst tail waste of class i (index into `classes`, 0 = class 1), as a
    fraction: the request one byte above the previous class."""
    lower = classes[i - 1].size if i > 0 else 0
    return (classes[i].size - (lower + 1)) / classes[i].size


def verify_classes(classes):
    if classes[-1].size != SMALL_SIZE_MAX:
        fail("last class is %d, not %d" % (classes[-1].size, SMALL_SIZE_MAX))
    if classes[0].size != WORD_SIZE:
        fail("class 1 is %d, not %d" % (classes[0].size, WORD_SIZE))
    if len(classes) + 1 > UINT8_MAX:
        fail("%d classes do not fit the uint8_t lookup tables" % len(classes))
    seen = {}
    lower = 0
    prev = None
    for c in classes:
        if c.size % size_grid(c.size):
            fail("size %d is not a multiple of %d (its grid; above %d that "
                 "is the grid above SMALL_SIZE_MAX_FINE)"
                 % (c.size, size_grid(c.size), SMALL_SIZE_MAX_FINE))
        if c.size <= lower:
            fail("sizes not increasing at %d" % c.size)
        if lower >= TAIL_WASTE_FLOOR and not tail_waste_ok(lower, c.size):
            fail("tail waste of class %d over (%d, %d] exceeds 1/%d"
                 % (c.size, lower, c.size, WASTE_DIV))
        if not 1 <= c.npages <= MAX_SPAN_PAGES or c.npages > UINT8_MAX:
            fail("size %d: npages %d out of range" % (c.size, c.npages))
        if (not 1 <= c.nelems <= UINT16_MAX
                or c.nelems != c.span_bytes() // c.size):
            fail("size %d: nelems %d is wrong" % (c.size, c.nelems))
        if c.nelems < MIN_SPAN_OBJECTS_ANY:
            fail("size %d: %d objects to a span, fewer than %d"
                 % (c.size, c.nelems, MIN_SPAN_OBJECTS_ANY))
        if c.span_waste() * WASTE_DIV > c.span_bytes():
            fail("size %d: span waste %d exceeds 1/%d of the span"
                 % (c.size, c.span_waste(), WASTE_DIV))
        if c.layout() in seen:
            fail("sizes %d and %d share the layout %r"
                 % (seen[c.layout()], c.size, c.layout()))
        seen[c.layout()] = c.size
        if prev is not None and not packs_denser(prev.layout(), c):
            fail("class %d packs no denser than class %d" % (prev.size, c.size))
        compute_divmul(c)
        lower = c.size
        prev = c


def class_of(sizes, n):
    """Reference answer: the smallest class (1-based) whose size is >= n."""
    for i, size in enumerate(sizes):
        if size >= n:
            return i + 1
    fail("no class holds %d bytes" % n)


def lookup_tables(classes):
    """size_to_class8, each entry being the class of the largest request its
    index covers; checked against class_of for every request using the same
    indexing as sizeclass_of() in the header."""
    sizes = [c.size for c in classes]
    table8 = [class_of(sizes, max(1, i * SMALL_SIZE_DIV))
              for i in range(SMALL_SIZE_MAX // SMALL_SIZE_DIV + 1)]
    for n in range(1, SMALL_SIZE_MAX + 1):
        got = table8[(n + SMALL_SIZE_DIV - 1) // SMALL_SIZE_DIV]
        if got != class_of(sizes, n):
            fail("lookup gives class %d for %d bytes, want %d"
                 % (got, n, class_of(sizes, n)))
    return table8


def table_comment(classes):
    lines = [" * class  bytes/obj  pages  objects  span waste (bytes, %)"
             "  max tail waste"]
    for i, c in enumerate(classes):
        lines.append(" * %5d  %9d  %5d  %7d  %10d %6.2f%%  %13.2f%%" % (
            i + 1, c.size, c.npages, c.nelems, c.span_waste(),
            100.0 * c.span_waste() / c.span_bytes(),
            100.0 * max_tail_waste(classes, i)))
    return "\n".join(lines)


def render_header(classes):
    count = len(classes) + 1
    max_nelems = max(c.nelems for c in classes)
    words_sum = sum((c.nelems + 63) // 64 for c in classes)
    worst_tail = max(max_tail_waste(classes, i) for i, c in enumerate(classes)
                     if i > 0 and classes[i - 1].size >= TAIL_WASTE_FLOOR)
    worst_span = max(c.span_waste() / c.span_bytes() for c in classes)
    return """\
/* %(generated)s */
/*
 * sizeclasses.h: the size classes of small objects.
 *
 * A request of 1..SMALL_SIZE_MAX bytes is rounded up to the smallest class
 * that holds it; larger requests are class 0 and get a span of their own.
 * Each class has a fixed span layout: npages pages holding nelems objects
 * of sizeclass_size bytes, packed from the start of the span.
 *
 * Invariants (checked by the generator and tests/alloc/test_sizeclasses.c):
 *   sizes are multiples of 8, of 16 from 16 up, of %(large_div)d above
 *   %(small_fine)d, strictly increasing, and the last is SMALL_SIZE_MAX;
 *   nelems == npages * PAGE_SIZE / size (integer division), so the span
 *   waste npages * PAGE_SIZE - nelems * size is < size, and it is at most
 *   1/8 of the span (worst here: %(worst_span).2f%%);
 *   a request n above 112 bytes wastes (size - n) / size <= 1/8 (worst here:
 *   %(worst_tail).2f%%); below that the classes are at most 16 bytes apart;
 *   each class spends fewer span bytes per object than the next, so no two
 *   classes share (npages, nelems);
 *   for 0 <= off < npages * PAGE_SIZE,
 *     (off * (uint64_t)divmul) >> 32 == off / size,
 *   so an interior pointer finds its object index without a division.
 *
 * How the classes are chosen is explained in tools/gen_sizeclasses.py.
 *
%(table)s
 */
#ifndef MGC_SIZECLASSES_H
#define MGC_SIZECLASSES_H

#include <stddef.h>
#include <stdint.h>

/* 8 KiB pages: large enough that one-page spans of small objects waste
 * little at their end, small enough that a span held by a rarely used class
 * costs little.  Spans of small classes are 1..%(max_pages)d pages. */
#define PAGE_SHIFT %(page_shift)d
#define PAGE_SIZE ((uintptr_t)1 << PAGE_SHIFT)

/* Small objects are those up to four pages; larger ones are rare enough that
 * each gets a span of its own (class 0), which keeps the classes, and the
 * spans each thread caches per class, few.  The lookup is one table, an
 * entry per 8 bytes (every class is a multiple of 8): 8 KiB, indexed by a
 * shift, where a finer table for small requests and a coarser one above
 * took a branch that mispredicted on every fifth allocation of a program
 * whose sizes straddle the two (tools/bench's ring_mix).  An entry holds
 * the class shifted left by SIZECLASS_LOOKUP_SHIFT: the byte offset of the
 * class's pair of mcache slots (scan, noscan; alloc/mcache.h asserts the
 * size), which the allocation fast paths add to the mcache's address
 * without a shift of their own. */
#define SIZECLASS_COUNT %(count)d          /* number of classes including class 0 */
#define SMALL_SIZE_MAX %(small_max)d         /* largest small object */
#define SMALL_SIZE_DIV %(small_div)d             /* step of the lookup table */
#define SIZECLASS_MAX_NELEMS %(max_nelems)d    /* largest nelems; used to size bitmaps */
#define SIZECLASS_LOOKUP_SHIFT %(lookup_shift)d     /* size_to_class8 holds class << this */
/* Sum over the classes of one bitmap's words, ceil(nelems / 64): room for
 * one bitmap per class (alloc/mcache.h, held frees). */
#define SIZECLASS_BITMAP_WORDS_SUM %(words_sum)d

extern const uint32_t sizeclass_size[SIZECLASS_COUNT];   /* object size; [0] = 0 */
extern const uint8_t  sizeclass_npages[SIZECLASS_COUNT]; /* pages per span; [0] = 0 */
extern const uint16_t sizeclass_nelems[SIZECLASS_COUNT]; /* objects per span; [0] = 0 */
extern const uint32_t sizeclass_divmul[SIZECLASS_COUNT]; /* see above; [0] = 0 */
/* Index (n + 7) >> 3 for n <= SMALL_SIZE_MAX, class << SIZECLASS_LOOKUP_SHIFT
 * (see above); [0] is class 1's, so a zero-byte request gets the smallest
 * class. */
extern const uint16_t size_to_class8[SMALL_SIZE_MAX / SMALL_SIZE_DIV + 1];

/* The class of an n-byte request, 0 <= n <= SMALL_SIZE_MAX, shifted left by
 * SIZECLASS_LOOKUP_SHIFT; the caller sends larger requests to the
 * large-object path. */
static inline size_t sizeclass_of_shifted(size_t n) {
  return size_to_class8[(n + SMALL_SIZE_DIV - 1) / SMALL_SIZE_DIV];
}

/* The class of an n-byte request, 0 <= n <= SMALL_SIZE_MAX. */
static inline unsigned sizeclass_of(size_t n) {
  return (unsigned)(sizeclass_of_shifted(n) >> SIZECLASS_LOOKUP_SHIFT);
}

#endif /* MGC_SIZECLASSES_H */
""" % {
        "generated": GENERATED_LINE,
        "worst_span": 100.0 * worst_span,
        "worst_tail": 100.0 * worst_tail,
        "table": table_comment(classes),
        "page_shift": PAGE_SHIFT,
        "max_pages": MAX_SPAN_PAGES,
        "count": count,
        "small_max": SMALL_SIZE_MAX,
        "small_div": SMALL_SIZE_DIV,
        "small_fine": SMALL_SIZE_MAX_FINE,
        "large_div": LARGE_SIZE_DIV,
        "max_nelems": max_nelems,
        "lookup_shift": SIZECLASS_LOOKUP_SHIFT,
        "words_sum": words_sum,
    }


def c_array(ctype, name, dim, values):
    """A const array definition, values wrapped to LINE_WIDTH columns."""
    rows, row = [], "  "
    for v in values:
        item = "%d," % v
        if len(row) + 1 + len(item) > LINE_WIDTH:
            rows.append(row)
            row = "  "
        row += item if row == "  " else " " + item
    rows.append(row)
    return "const %s %s[%s] = {\n%s\n};\n" % (ctype, name, dim,
                                              "\n".join(rows))


def render_source(classes, table8):
    pad = [0]  # class 0: large objects, no class
    parts = [
        "/* %s */\n" % GENERATED_LINE,
        "/*\n"
        " * sizeclasses.c: the tables declared in sizeclasses.h; see there\n"
        " * for their invariants and tools/gen_sizeclasses.py for how they\n"
        " * are made.\n"
        " */\n"
        "#include \"alloc/sizeclasses.h\"\n\n",
        c_array("uint32_t", "sizeclass_size", "SIZECLASS_COUNT",
                pad + [c.size for c in classes]),
        "\n",
        c_array("uint8_t", "sizeclass_npages", "SIZECLASS_COUNT",
                pad + [c.npages for c in classes]),
        "\n",
        c_array("uint16_t", "sizeclass_nelems", "SIZECLASS_COUNT",
                pad + [c.nelems for c in classes]),
        "\n",
        c_array("uint32_t", "sizeclass_divmul", "SIZECLASS_COUNT",
                pad + [c.divmul for c in classes]),
        "\n",
        c_array("uint16_t", "size_to_class8",
                "SMALL_SIZE_MAX / SMALL_SIZE_DIV + 1",
                [c << SIZECLASS_LOOKUP_SHIFT for c in table8]),
    ]
    return "".join(parts)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit 1 if the files are stale")
    args = parser.parse_args()

    classes = choose_classes()
    verify_classes(classes)
    table8 = lookup_tables(classes)
    outputs = {
        HEADER_PATH: render_header(classes),
        SOURCE_PATH: render_source(classes, table8),
    }

    stale = []
    for rel, text in sorted(outputs.items()):
        path = os.path.join(ROOT, rel)
        if args.check:
            try:
                with open(path, encoding="utf-8") as f:
                    if f.read() != text:
                        stale.append(rel)
            except FileNotFoundError:
                stale.append(rel)
        else:
            with open(path, "w", encoding="utf-8", newline="\n") as f:
                f.write(text)
    if stale:
        sys.exit("gen_sizeclasses: stale, rerun tools/gen_sizeclasses.py: "
                 + " ".join(stale))


if __name__ == "__main__":
    main()
