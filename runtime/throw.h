/*
 * throw.h: how mgc reports trouble.
 *
 * Two kinds of trouble, never mixed:
 *  - a broken internal invariant: mgc_throw("...") prints "mgc: fatal: ..."
 *    and aborts.  It never allocates, so it works with the heap corrupt and
 *    from a signal handler.  mgc_assert(cond) throws in debug builds
 *    (MGC_DEBUG >= 1); mgc_assert_heavy is for whole-heap checks
 *    (MGC_DEBUG >= 2).
 *  - a user mistake (a bad free, a bad environment value): mgc_report()
 *    prints one line "mgc: ..." naming what was wrong and what was expected;
 *    the caller then carries on safely.
 */
#ifndef MGC_THROW_H
#define MGC_THROW_H

#include "runtime/compiler.h"

MGC_NORETURN MGC_COLD void mgc_throw(const char *msg);
MGC_NORETURN MGC_COLD void mgc_throw_at(const char *file, int line, const char *msg);
MGC_COLD MGC_PRINTF(1, 2) void mgc_report(const char *fmt, ...);
/* Like mgc_report, but async-signal-safe and without formatting. */
void mgc_write_stderr(const char *s);

#ifndef MGC_DEBUG
#define MGC_DEBUG 0
#endif

#if MGC_DEBUG >= 1
#define mgc_assert(cond) \
  do { if (unlikely(!(cond))) mgc_throw_at(__FILE__, __LINE__, "assertion failed: " #cond); } while (0)
#else
#define mgc_assert(cond) do { (void)sizeof(cond); } while (0)
#endif

#if MGC_DEBUG >= 2
#define mgc_assert_heavy(cond) mgc_assert(cond)
#else
#define mgc_assert_heavy(cond) do { (void)sizeof(cond); } while (0)
#endif

#endif /* MGC_THROW_H */
