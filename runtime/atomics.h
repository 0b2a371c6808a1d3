/*
 * atomics.h: the one door to libatomic_ops.  No other file includes
 * <atomic_ops.h>; everything atomic in mgc goes through these wrappers, which
 * name their memory order.
 *
 * Word-sized values only (AO_t is uintptr_t-sized).  Use `relaxed` for
 * counters and flags whose readers tolerate staleness, `acquire`/`release`
 * for publication, and the `_full` read-modify-writes where a total order is
 * needed (the stop-the-world handshake, work-pool counters).
 */
#ifndef MGC_ATOMICS_H
#define MGC_ATOMICS_H

#include <stdbool.h>
#include <stdint.h>

#include <atomic_ops.h>

#include "runtime/compiler.h"

typedef volatile AO_t atomic_word;

MGC_INLINE uintptr_t atomic_load_relaxed(const atomic_word *p) { return AO_load(p); }
MGC_INLINE uintptr_t atomic_load_acquire(const atomic_word *p) { return AO_load_acquire(p); }
MGC_INLINE void atomic_store_relaxed(atomic_word *p, uintptr_t v) { AO_store(p, v); }
MGC_INLINE void atomic_store_release(atomic_word *p, uintptr_t v) { AO_store_release(p, v); }
/* A one-byte flag written by two threads (mspan.needzero: the span's owner
 * and a sweeper holding the class lock), relaxed. */
MGC_INLINE uint8_t atomic_load_byte_relaxed(const uint8_t *p) { return AO_char_load((const volatile unsigned char *)p); }
MGC_INLINE void atomic_store_byte_relaxed(uint8_t *p, uint8_t v) { AO_char_store((volatile unsigned char *)p, v); }

/* Returns the value before the addition. */
MGC_INLINE uintptr_t atomic_fetch_add(atomic_word *p, uintptr_t v) { return AO_fetch_and_add_full(p, v); }
MGC_INLINE uintptr_t atomic_fetch_sub(atomic_word *p, uintptr_t v) { return AO_fetch_and_add_full(p, (AO_t)0 - v); }
MGC_INLINE void atomic_or(atomic_word *p, uintptr_t v) { AO_or_full(p, v); }
/* Clears the bits of mask in *p; returns the bits of mask that were set. */
MGC_INLINE uintptr_t atomic_clear_bits(atomic_word *p, uintptr_t mask) {
  uintptr_t old;
  do { old = AO_load(p); } while ((old & mask) && !AO_compare_and_swap_full(p, old, old & ~mask));
  return old & mask;
}
MGC_INLINE bool atomic_cas(atomic_word *p, uintptr_t expect, uintptr_t desired) {
  return AO_compare_and_swap_full(p, expect, desired) != 0;
}
/* Returns the previous value. */
MGC_INLINE uintptr_t atomic_exchange(atomic_word *p, uintptr_t v) {
  uintptr_t old;
  do { old = AO_load(p); } while (!AO_compare_and_swap_full(p, old, v));
  return old;
}
/* ThreadSanitizer does not model fences (GCC rejects one under
 * -fsanitize=thread, clang passes it through unmodelled), so a TSan build
 * issues the same hardware fence directly.  Most of mgc's fences sit
 * between an atomic store and an atomic load (the Dekker-style handshakes
 * of runtime/stw.c and of in_mark_work), which TSan still sees; those in
 * gc/types.c order a type's fields before its magic word, and the program
 * publishes the type to other threads itself. */
/* atomic_fence_loads: loads before it are done before loads after it (a
 * compiler barrier on x86, which keeps loads in order; a load barrier
 * where loads may be reordered).  atomic_fence_stores: the same for
 * stores. */
#if MGC_TSAN
MGC_INLINE void atomic_fence(void) {
#if defined(__x86_64__) || defined(__i386__)
  __asm__ __volatile__("mfence" ::: "memory");
#elif defined(__aarch64__)
  __asm__ __volatile__("dmb ish" ::: "memory");
#else
#error "atomic_fence: no hardware fence for this architecture under ThreadSanitizer"
#endif
}
MGC_INLINE void atomic_fence_loads(void) {
#if defined(__x86_64__) || defined(__i386__)
  __asm__ __volatile__("" ::: "memory");
#elif defined(__aarch64__)
  __asm__ __volatile__("dmb ishld" ::: "memory");
#else
#error "atomic_fence_loads: no hardware fence for this architecture under ThreadSanitizer"
#endif
}
MGC_INLINE void atomic_fence_stores(void) {
#if defined(__x86_64__) || defined(__i386__)
  __asm__ __volatile__("" ::: "memory");
#elif defined(__aarch64__)
  __asm__ __volatile__("dmb ishst" ::: "memory");
#else
#error "atomic_fence_stores: no hardware fence for this architecture under ThreadSanitizer"
#endif
}
#else
MGC_INLINE void atomic_fence(void) { AO_nop_full(); }
MGC_INLINE void atomic_fence_loads(void) { AO_nop_read(); }
MGC_INLINE void atomic_fence_stores(void) { AO_nop_write(); }
#endif

/* Sets bit `bit` of *p; returns true when it was already set. */
MGC_INLINE bool atomic_test_and_set_bit(atomic_word *p, unsigned bit) {
  uintptr_t mask = (uintptr_t)1 << bit;
  uintptr_t old = AO_load(p);
  while (!(old & mask)) {
    if (AO_compare_and_swap_full(p, old, old | mask)) return false;
    old = AO_load(p);
  }
  return true;
}

MGC_INLINE void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

#endif /* MGC_ATOMICS_H */
