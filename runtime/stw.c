/*
 * stw.c: stopping the world with a POSIX signal (see stw.h).
 *
 * Protocol.  `world` is a word holding the stop epoch in its upper bits and
 * a STOPPED flag in bit 0.  To stop:
 *   1. world = epoch | STOPPED (sequentially consistent);
 *   2. for each registered thread other than the caller that is not parked
 *      in a blocking region: t->stop_signalled = this stop's number,
 *      pthread_kill(stop signal), and count it;
 *   3. wait until that many threads have acknowledged (acks counter,
 *      futex).
 * A thread acknowledges a stop when it parks for it: it stores its stack
 * pointer in its record (its registers lie above it: the signal frame, or
 * a context saved in the parking frame), then, if stop_signalled is newer
 * than stop_acked, moves stop_acked up to it and increments acks, waking
 * the stopper.  It futex-waits while world still reads epoch | STOPPED;
 * stw_start clears STOPPED (with a new epoch) and wakes every waiter.
 *
 * Parking happens in the stop handler, and also in the restart wait of a
 * thread entering or leaving a blocking region: such a thread may have
 * been signalled just before it set (or just after it cleared) `blocking`,
 * and it acknowledges the stop there rather than leave the stopper
 * waiting for the handler.  The per-thread numbers make every signalled
 * stop acknowledged exactly once, whichever of the two parks first, and a
 * late handler (whose stop was acknowledged already) acknowledge nothing
 * and return without parking: the next stop may have begun and not yet
 * signalled the thread, and its signal cannot come in while the handler
 * runs.
 * A stop ends only after all its acknowledgements, so at most one stop is
 * ever outstanding for a thread, and it is the stop in progress.
 *
 * Blocking regions.  Entering sets t->blocking = 1 after saving the
 * caller's registers and stack pointer (see stw_blocking_begin_saved);
 * leaving sets it to 0 and then, if the world is stopped, waits.  Both
 * sides use full fences between their store and their load (store
 * blocking / load world versus store world / load blocking), so either
 * the stopper sees blocking == 0 and signals the thread, or the thread
 * sees STOPPED and waits.
 *
 * Everything the handler calls is async-signal-safe: atomics, the futex
 * syscall, and errno is saved and restored.
 *
 * ThreadSanitizer.  TSan runs the handler of an asynchronous signal late:
 * only when the thread next passes one of TSan's own points (an intercepted
 * libc call returning, an atomic operation, or the start of a call TSan
 * knows may block, such as nanosleep or pthread_cond_wait).  A thread
 * waiting in pthread_mutex_lock or in a raw futex call passes none, so it
 * never acknowledges and the stop never ends.  Hence: mgc's locks wait for
 * a contended lock inside a blocking region (runtime/lock.c), so the
 * stopper does not count on the waiter; and a TSan build waits for a
 * restart on entering or leaving a blocking region with nanosleep rather
 * than the futex, where a queued stop signal of a stopper that already
 * counted the thread can run.  Even there TSan may not run it (seen as a
 * rare hang: the thread polled on and the stopper waited); the thread
 * acknowledges the stop itself while it polls (see Parking above).  The
 * handler itself is instrumented: its atomics are what tells TSan that the
 * stop orders the thread's accesses before the collector's.
 */
#include "runtime/stw.h"

#include <errno.h>
#include <linux/futex.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "mgc.h"

#include "runtime/config.h"
#include "runtime/os.h"
#include "runtime/throw.h"

#define WORLD_STOPPED 1u
#define WORLD_EPOCH_STEP 2u
/* TSan builds poll for the restart this often (short against a pause). */
#define STW_TSAN_POLL_NS 20000

/* Futex words must be 32-bit; these are only touched through the helpers. */
static volatile uint32_t world;     /* epoch | WORLD_STOPPED */
static volatile uint32_t acks;      /* handlers that have parked */

static long futex(volatile uint32_t *addr, int op, uint32_t val) {
  return syscall(SYS_futex, addr, op, val, NULL, NULL, 0);
}

static uint32_t load32(volatile uint32_t *p) { return __atomic_load_n(p, __ATOMIC_SEQ_CST); }

int stw_world_stopped(void) { return load32(&world) & WORLD_STOPPED; }

static void wait_while_stopped(uint32_t stopped_value) {
  while (load32(&world) == stopped_value)
    futex(&world, FUTEX_WAIT_PRIVATE, stopped_value);
}

/* Acknowledge the stop t was signalled for, unless that is done already.
 * The handler may interrupt this (on the same thread, outside a handler)
 * anywhere; t->acking tells it to return at once and leave the rest to
 * the code it interrupted: had it parked, a claim made here but not yet
 * counted would never be counted (TSan runs handlers inside atomic
 * operations, the count's included). */
static void acknowledge_stop(struct mthread *t) {
  atomic_store_relaxed(&t->acking, 1);
  __asm__ __volatile__("" ::: "memory");
  uintptr_t signalled = atomic_load_acquire(&t->stop_signalled);
  uintptr_t acked = atomic_load_relaxed(&t->stop_acked);
  if (signalled != acked && atomic_cas(&t->stop_acked, acked, signalled)) {
    __atomic_add_fetch(&acks, 1, __ATOMIC_SEQ_CST);
    futex(&acks, FUTEX_WAKE_PRIVATE, 1);
  }
  __asm__ __volatile__("" ::: "memory");
  atomic_store_relaxed(&t->acking, 0);
}

/* Stop owed: t was signalled for a stop it has not acknowledged. */
static bool stop_owed(struct mthread *t) {
  return atomic_load_acquire(&t->stop_signalled) != atomic_load_relaxed(&t->stop_acked);
}

/* Park for the stop `w` with the stack scanned from sp up. */
static void park(struct mthread *t, uint32_t w, uintptr_t sp) {
  atomic_store_release(&t->stopped_sp, sp);
  /* Again while stop w signalled the thread meanwhile: outside a handler
   * (park_here), the signalled number read may predate the stopper's
   * store, and the stop's signal, coming in while acking was set, found
   * the handler returning at once; parked without a claim, the thread
   * waited for a restart that needed it (conc_phase_races'
   * stray_signals test hung so).  Not for a later stop (world no longer
   * w): the caller parks again for that one, with its own world value.
   * (park_here may have read w before the stop it parks for ended, and
   * the claim made here be the next stop's; the thread then runs from
   * here to its next park while that stopper may scan it, only in
   * wait_for_restart, its registers and stack saved in blocking_sp.) */
  for (;;) {
    acknowledge_stop(t);
    atomic_fence();
    if (!stop_owed(t) || load32(&world) != w) break;
  }
  wait_while_stopped(w);
  atomic_store_release(&t->stopped_sp, 0);
}

static void stop_handler(int sig, siginfo_t *info, void *uctx) {
  (void)sig;
  (void)info;
  (void)uctx; /* the register file it points to lies on this stack, above sp */
  int saved_errno = errno;
  struct mthread *t = thread_current;
  /* Only for a stop that signalled this thread and has no acknowledgement
   * from it yet.  A late signal (its stop acknowledged in park_here) or a
   * stray one may come while the next stop has begun but not yet
   * signalled the thread: parked, the handler would wait for a restart
   * that needs this thread's acknowledgement, with that stop's signal
   * blocked until it returns, and the stopper would wait for ever (seen
   * in conc_phase_races).  Returned, the signal comes in.
   * The signalled number is read before world: a stop owed cannot end
   * before this thread acknowledges it, so world then still reads that
   * stop's value (read the other way round, world could be a stop that
   * ended meanwhile, and the claim made in park the next one's). */
  if (!t || atomic_load_relaxed(&t->acking) || !stop_owed(t)) {
    errno = saved_errno;
    return;
  }
  uint32_t w = load32(&world);
  if (w & WORLD_STOPPED) park(t, w, (uintptr_t)__builtin_frame_address(0));
  errno = saved_errno;
}

int stw_init(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_sigaction = stop_handler;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigfillset(&sa.sa_mask); /* no other handler runs on top of ours */
  sigdelset(&sa.sa_mask, SIGSEGV);
  sigdelset(&sa.sa_mask, SIGBUS);
  sigdelset(&sa.sa_mask, SIGILL);
  sigdelset(&sa.sa_mask, SIGFPE);
  if (sigaction(config.stop_signal, &sa, NULL) != 0) return errno;
  return 0;
}

/* Park for one stop outside the handler, as the handler would: the
 * registers spilled into this frame, the stack scanned from them up. */
MGC_NOINLINE static void park_here(struct mthread *t, uint32_t w) {
  ucontext_t regs;
  getcontext(&regs);
#if MGC_TSAN
  /* A futex wait would hold a stop signal TSan queued (see the top):
   * poll instead, acknowledging each time in case a stopper counted us. */
  atomic_store_release(&t->stopped_sp, (uintptr_t)&regs);
  const struct timespec poll = {0, STW_TSAN_POLL_NS};
  while (load32(&world) == w) {
    acknowledge_stop(t);
    nanosleep(&poll, NULL);
  }
  atomic_store_release(&t->stopped_sp, 0);
#else
  park(t, w, (uintptr_t)&regs);
#endif
  __asm__ __volatile__("" : : "r"(&regs) : "memory"); /* regs lives until here */
}

/* On entering or leaving a blocking region: wait until no stop is in
 * progress, acknowledging one this thread was signalled for. */
static void wait_for_restart(struct mthread *t) {
  uint32_t w;
  while ((w = load32(&world)) & WORLD_STOPPED) park_here(t, w);
}

uint64_t stw_last_stop_latency_ns;
static uintptr_t stops_started;   /* under threads_lock; numbers the stops */

void stw_stop(void) {
  lock_assert_held(&threads_lock);
  uint64_t t0 = os_nanotime();
  uint32_t epoch = load32(&world) + WORLD_EPOCH_STEP;
  uint32_t stopped = (epoch & ~WORLD_STOPPED) | WORLD_STOPPED;
  __atomic_store_n(&acks, 0, __ATOMIC_SEQ_CST);
  __atomic_store_n(&world, stopped, __ATOMIC_SEQ_CST);
  struct mthread *self = thread_current;
  uint32_t signalled = 0;
  stops_started++;
  for (struct mthread *t = threads_head; t; t = t->next) {
    if (t == self) continue;
    atomic_fence();
    if (atomic_load_acquire(&t->blocking)) continue;
    atomic_store_release(&t->stop_signalled, stops_started);
    int err = pthread_kill(t->pthread, config.stop_signal);
    if (err == 0) signalled++;
    else mgc_throw("cannot signal a registered thread (did it exit without gc_thread_unregister?)");
  }
  for (;;) {
    uint32_t n = load32(&acks);
    if (n >= signalled) break;
    futex(&acks, FUTEX_WAIT_PRIVATE, n);
  }
  stw_last_stop_latency_ns = os_nanotime() - t0;
}

uint64_t stw_start(void) {
  uint64_t released_at = os_nanotime();
  uint32_t w = load32(&world);
  __atomic_store_n(&world, (w + WORLD_EPOCH_STEP) & ~WORLD_STOPPED, __ATOMIC_SEQ_CST);
  futex(&world, FUTEX_WAKE_PRIVATE, INT32_MAX);
  return released_at;
}

/* Entering a blocking region.  Until it ends the thread runs on without
 * stopping for collections, and its roots are what it held at the call:
 * its stack from the caller's stack pointer up, and the callee-saved
 * registers as the caller left them (the caller may keep heap pointers in
 * them through the region; whatever runs in the region, a system call
 * say, may spill them below that stack pointer, where nobody scans).
 *
 * Both must be taken at the entry, before any C code runs.  A C function
 * saves the caller's registers it needs in its own frame, below the
 * caller's stack pointer and gone once it returns, and then changes them:
 * stw_blocking_begin used to be C, read the registers with getcontext and
 * took its own frame address for the stack pointer, so the caller's values
 * of the registers it used (rbp and others, depending on the build) were
 * not roots, and objects only they named were freed while the thread
 * blocked (test_threads_gc, "blocking": lists held in locals across
 * gc_blocking_begin).  So the entry is a few instructions of assembly that
 * store the callee-saved registers (x86-64: rbx, rbp, r12-r15; AArch64:
 * x19-x29 and d8-d15, where a compiler may park an integer) and pass them
 * with the stack pointer the caller will have after the return to this
 * function; gc_blocking_begin enters the same way with t = NULL (the
 * calling thread, if registered).  Elsewhere a C fallback keeps the old,
 * weaker capture. */
void stw_blocking_begin_saved(struct mthread *t, const struct blocking_regs *regs, uintptr_t caller_sp)
    __attribute__((used));
void stw_blocking_end_saved(struct mthread *t) __attribute__((used));

/* Leaving a blocking region has the same problem the other way round:
 * until `blocking` is cleared the thread is not stopped, and the roots
 * are still the stack above blocking_sp and the saved registers, while
 * the caller may already hold its values elsewhere.  A caller that ends
 * with the call (a tail call: lock_mutex, gc_collect's wait, a program's
 * function whose last statement is gc_blocking_end) restores its
 * caller's callee-saved registers from its frame and jumps; the stack
 * slots they came from are then overwritten by whatever runs next, and
 * the values were in registers only (a review's stress program lost
 * objects held in r13 and r14 across gc_collect this way, about once a
 * second).  So the exit stub first stores the registers, before it
 * writes to the stack, into a thread-local copy that the root scan reads
 * after the stack: a scan that saw a slot overwritten sees the copy (x86
 * makes stores visible in program order; AArch64 needs a store barrier
 * after the copy, and the scan a load barrier between the two reads). */
#if MGC_BLOCKING_STUBS
MGC_TLS struct blocking_regs blocking_exit_regs __attribute__((used));
#endif

void stw_blocking_begin_saved(struct mthread *t, const struct blocking_regs *regs, uintptr_t caller_sp) {
  if (!t) t = thread_current;
  if (!t || t->blocking_depth++ > 0) return;
  t->blocking_regs = *regs;
#if MGC_BLOCKING_STUBS
  memset(&blocking_exit_regs, 0, sizeof blocking_exit_regs); /* an older exit's: no roots now */
  t->blocking_exit_regs = &blocking_exit_regs;
#endif
  atomic_store_release(&t->blocking_sp, caller_sp);
  /* Release: what the thread did before parking happens before whatever
   * a stopper that acquire-loads blocking == 1 then reads or writes. */
  atomic_store_release(&t->blocking, 1);
  atomic_fence();
  /* A stopper that saw blocking == 0 has signalled us (or is about to)
   * and waits for the handler: let the signal land in this wait, not in
   * the call the region is for (nanosleep, poll, select: the kernel does
   * not restart those after a handler, so they would fail with EINTR).
   * Under TSan the handler runs only at a point like the nanosleep here. */
  wait_for_restart(t);
}

#if MGC_BLOCKING_STUBS && defined(__x86_64__)
/* The frame: the six registers and 8 bytes of padding, so that the call
 * is made with the stack 16-byte aligned (it is 8 off at the entry). */
__asm__(".pushsection .text\n"
        ".globl gc_blocking_begin\n"
        ".type gc_blocking_begin, @function\n"
        "gc_blocking_begin:\n"
        "  .cfi_startproc\n"
        "  endbr64\n"
        "  xorl %edi, %edi\n"
        "  jmp stw_blocking_begin\n"
        "  .cfi_endproc\n"
        ".size gc_blocking_begin, .-gc_blocking_begin\n"
        ".globl stw_blocking_begin\n"
        ".hidden stw_blocking_begin\n"
        ".type stw_blocking_begin, @function\n"
        "stw_blocking_begin:\n"
        "  .cfi_startproc\n"
        "  endbr64\n"
        "  subq $56, %rsp\n"
        "  .cfi_def_cfa_offset 64\n"
        "  movq %rbx, 0(%rsp)\n"
        "  movq %rbp, 8(%rsp)\n"
        "  movq %r12, 16(%rsp)\n"
        "  movq %r13, 24(%rsp)\n"
        "  movq %r14, 32(%rsp)\n"
        "  movq %r15, 40(%rsp)\n"
        "  movq %rsp, %rsi\n"
        "  leaq 64(%rsp), %rdx\n" /* the caller's stack pointer after the return */
        "  call stw_blocking_begin_saved\n"
        "  addq $56, %rsp\n"
        "  .cfi_def_cfa_offset 8\n"
        "  ret\n"
        "  .cfi_endproc\n"
        ".size stw_blocking_begin, .-stw_blocking_begin\n"
        /* The exit: registers to the thread-local copy, then the C part
         * (t still in rdi). */
        ".globl gc_blocking_end\n"
        ".type gc_blocking_end, @function\n"
        "gc_blocking_end:\n"
        "  .cfi_startproc\n"
        "  endbr64\n"
        "  xorl %edi, %edi\n"
        "  jmp stw_blocking_end\n"
        "  .cfi_endproc\n"
        ".size gc_blocking_end, .-gc_blocking_end\n"
        ".globl stw_blocking_end\n"
        ".hidden stw_blocking_end\n"
        ".type stw_blocking_end, @function\n"
        "stw_blocking_end:\n"
        "  .cfi_startproc\n"
        "  endbr64\n"
        "  movq blocking_exit_regs@gottpoff(%rip), %rax\n"
        "  movq %rbx, %fs:0(%rax)\n"
        "  movq %rbp, %fs:8(%rax)\n"
        "  movq %r12, %fs:16(%rax)\n"
        "  movq %r13, %fs:24(%rax)\n"
        "  movq %r14, %fs:32(%rax)\n"
        "  movq %r15, %fs:40(%rax)\n"
        "  jmp stw_blocking_end_saved\n"
        "  .cfi_endproc\n"
        ".size stw_blocking_end, .-stw_blocking_end\n"
        ".popsection\n");
_Static_assert(sizeof(struct blocking_regs) == 48, "the entry stub stores six registers");
#elif MGC_BLOCKING_STUBS && defined(__aarch64__)
/* The frame: the frame record (x29, x30) at sp, then the record of
 * registers at sp + 16: x19-x28, the caller's x29 (taken back from the
 * frame record), d8-d15 and a zero word, 176 bytes in all.  `hint #34` is
 * BTI's landing pad (a no-op where BTI is absent). */
__asm__(".pushsection .text\n"
        ".globl gc_blocking_begin\n"
        ".type gc_blocking_begin, %function\n"
        "gc_blocking_begin:\n"
        "  .cfi_startproc\n"
        "  hint #34\n"
        "  mov x0, #0\n"
        "  b stw_blocking_begin\n"
        "  .cfi_endproc\n"
        ".size gc_blocking_begin, .-gc_blocking_begin\n"
        ".globl stw_blocking_begin\n"
        ".hidden stw_blocking_begin\n"
        ".type stw_blocking_begin, %function\n"
        "stw_blocking_begin:\n"
        "  .cfi_startproc\n"
        "  hint #34\n"
        "  stp x29, x30, [sp, #-176]!\n"
        "  .cfi_def_cfa_offset 176\n"
        "  .cfi_offset 29, -176\n"
        "  .cfi_offset 30, -168\n"
        "  mov x29, sp\n"
        "  stp x19, x20, [sp, #16]\n"
        "  stp x21, x22, [sp, #32]\n"
        "  stp x23, x24, [sp, #48]\n"
        "  stp x25, x26, [sp, #64]\n"
        "  stp x27, x28, [sp, #80]\n"
        "  ldr x9, [sp]\n"
        "  str x9, [sp, #96]\n"
        "  stp d8, d9, [sp, #104]\n"
        "  stp d10, d11, [sp, #120]\n"
        "  stp d12, d13, [sp, #136]\n"
        "  stp d14, d15, [sp, #152]\n"
        "  str xzr, [sp, #168]\n"
        "  add x1, sp, #16\n"
        "  add x2, sp, #176\n" /* the caller's stack pointer after the return */
        "  bl stw_blocking_begin_saved\n"
        "  ldp x29, x30, [sp], #176\n"
        "  .cfi_def_cfa_offset 0\n"
        "  .cfi_restore 29\n"
        "  .cfi_restore 30\n"
        "  ret\n"
        "  .cfi_endproc\n"
        ".size stw_blocking_begin, .-stw_blocking_begin\n"
        /* The exit: registers to the thread-local copy (initial-exec TLS,
         * as on x86-64), a store barrier, then the C part (t in x0). */
        ".globl gc_blocking_end\n"
        ".type gc_blocking_end, %function\n"
        "gc_blocking_end:\n"
        "  .cfi_startproc\n"
        "  hint #34\n"
        "  mov x0, #0\n"
        "  b stw_blocking_end\n"
        "  .cfi_endproc\n"
        ".size gc_blocking_end, .-gc_blocking_end\n"
        ".globl stw_blocking_end\n"
        ".hidden stw_blocking_end\n"
        ".type stw_blocking_end, %function\n"
        "stw_blocking_end:\n"
        "  .cfi_startproc\n"
        "  hint #34\n"
        "  mrs x9, tpidr_el0\n"
        "  adrp x10, :gottprel:blocking_exit_regs\n"
        "  ldr x10, [x10, #:gottprel_lo12:blocking_exit_regs]\n"
        "  add x9, x9, x10\n"
        "  stp x19, x20, [x9, #0]\n"
        "  stp x21, x22, [x9, #16]\n"
        "  stp x23, x24, [x9, #32]\n"
        "  stp x25, x26, [x9, #48]\n"
        "  stp x27, x28, [x9, #64]\n"
        "  str x29, [x9, #80]\n"
        "  stp d8, d9, [x9, #88]\n"
        "  stp d10, d11, [x9, #104]\n"
        "  stp d12, d13, [x9, #120]\n"
        "  stp d14, d15, [x9, #136]\n"
        "  dmb ishst\n"
        "  b stw_blocking_end_saved\n"
        "  .cfi_endproc\n"
        ".size stw_blocking_end, .-stw_blocking_end\n"
        ".popsection\n");
_Static_assert(sizeof(struct blocking_regs) == 160, "the entry stub stores twenty words");
#else
/* Registers as getcontext finds them here, after this function's prologue
 * may have saved and changed some of the caller's: weaker than the stubs'
 * entry (see above). */
MGC_NOINLINE void stw_blocking_begin(struct mthread *t) {
  struct blocking_regs regs;
  getcontext(&regs.context);
  stw_blocking_begin_saved(t, &regs, (uintptr_t)__builtin_frame_address(0));
}

GC_API void gc_blocking_begin(void) { stw_blocking_begin(NULL); }

/* No copy of the registers here: the fallback keeps the weakness the exit
 * stub removes (see above). */
void stw_blocking_end(struct mthread *t) { stw_blocking_end_saved(t); }

GC_API void gc_blocking_end(void) { stw_blocking_end_saved(NULL); }
#endif

void stw_blocking_end_saved(struct mthread *t) {
  if (!t) t = thread_current;
  if (!t) return;
  mgc_assert(t->blocking_depth > 0);
  if (--t->blocking_depth > 0) return;
  atomic_store_relaxed(&t->blocking, 0);
  atomic_fence();
  wait_for_restart(t);
  atomic_store_release(&t->blocking_sp, 0);
}
