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

#define MGC_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define MGC_ROUND_UP(x, a) (((x) + (a) - 1) & ~((a) - 1))
#define MGC_ROUND_DOWN(x, a) ((x) & ~((a) - 1))

#endif /* MGC_COMPILER_H */
