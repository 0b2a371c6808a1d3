/*
 * compiler.h: compiler attributes and branch hints, in one place so the rest
 * of mgc reads as plain C.
 */
#ifndef MGC_COMPILER_H
#define MGC_COMPILER_H

#define likely(x)       __builtin_expect(!!(x), 1)
#define unlikely(x)     __builtin_expect(!!(x), 0)
#define MGC_INLINE      static inline __attribute__((always_inline))
#define MGC_NOINLINE    __attribute__((noinline))
#define MGC_COLD        __attribute__((cold, noinline))
#define MGC_NORETURN    __attribute__((noreturn))
#define MGC_UNUSED      __attribute__((unused))
#define MGC_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define MGC_CACHELINE   64
#define MGC_ALIGNED(n)  __attribute__((aligned(n)))
#define MGC_TLS         __thread __attribute__((tls_model("initial-exec")))
#define MGC_EXPORT      __attribute__((visibility("default")))
/* On mgc's own extern data: -fvisibility=hidden hides the definitions,
 * but a declaration without this reads the variable through the GOT in
 * position-independent code, one more load on each use (gc_free reads
 * mheap_sweepgen and arena_index on every call). */
#define MGC_HIDDEN      __attribute__((visibility("hidden")))

#ifdef __has_feature
#define MGC_HAS_FEATURE(x) __has_feature(x)
#else
#define MGC_HAS_FEATURE(x) 0
#endif

/* 1 in a ThreadSanitizer build (GCC and clang spell it differently). */
#if defined(__SANITIZE_THREAD__) || MGC_HAS_FEATURE(thread_sanitizer)
#define MGC_TSAN 1
#else
#define MGC_TSAN 0
#endif

/* Scanning code reads other threads' stacks and arbitrary words on purpose;
 * these functions carry this attribute instead of silencing whole files. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define MGC_NO_SANITIZE_SCAN \
  __attribute__((no_sanitize_address, no_sanitize_thread, noinline))
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define MGC_NO_SANITIZE_SCAN \
  __attribute__((no_sanitize("address", "thread"), noinline))
#endif
#endif
#ifndef MGC_NO_SANITIZE_SCAN
#define MGC_NO_SANITIZE_SCAN
#endif

/* One read racing with a writer on purpose, where the value is confirmed
 * afterwards (a comment at each use says how): hidden from TSan only. */
#if MGC_TSAN
#define MGC_NO_SANITIZE_THREAD __attribute__((no_sanitize_thread))
#else
#define MGC_NO_SANITIZE_THREAD
#endif

/* The collector reads words of stacks and objects whatever their state,
 * and memcheck would report every test on a word nobody initialised.  In
 * a -Dvalgrind=true build MGC_SCANNED_WORD(v) marks the scanner's own copy
 * v as defined; the memory it was read from keeps its state, so the
 * program's own uses of uninitialised memory are still reported. */
#if defined(MGC_VALGRIND) && MGC_VALGRIND
#include <valgrind/memcheck.h>
#define MGC_SCANNED_WORD(v) ((void)VALGRIND_MAKE_MEM_DEFINED(&(v), sizeof(v)))
#else
#define MGC_SCANNED_WORD(v) ((void)0)
#endif

/* Bits set in x.  Without -mpopcnt (the x86-64 baseline) GCC turns
 * __builtin_popcountll into a call to libgcc's table-driven __popcountdi2;
 * the sweep, the held frees and the statistics count bitmap words often
 * enough for that call to show in profiles (1-2% of an allocation
 * benchmark), so the baseline build counts in registers instead. */
MGC_INLINE unsigned mgc_popcount64(unsigned long long x) {
#if defined(__POPCNT__) || !(defined(__x86_64__) || defined(__i386__))
  return (unsigned)__builtin_popcountll(x);
#else
  x -= (x >> 1) & 0x5555555555555555ull;
  x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
  x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0full;
  return (unsigned)((x * 0x0101010101010101ull) >> 56);
#endif
}

#define MGC_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define MGC_ROUND_UP(x, a) (((x) + (a) - 1) & ~((a) - 1))
#define MGC_ROUND_DOWN(x, a) ((x) & ~((a) - 1))

#endif /* MGC_COMPILER_H */
