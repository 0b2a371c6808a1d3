/*
 * test_blocking_regs.c: what the blocking-region stubs of runtime/stw.c
 * record (internal suite).
 *
 * While a thread is inside gc_blocking_begin/end its roots are its stack
 * from the caller's stack pointer up and the caller's callee-saved
 * registers, stored by an assembly stub at the entry (t->blocking_regs) and
 * again at the exit (the thread-local record t->blocking_exit_regs points
 * to).  test_threads_gc ("blocking") checks that objects survive; whether a
 * lost register shows there depends on the compiler's register choices.
 * Here each callee-saved register holds a known value when the stub is
 * called (call_with_marks, a few lines of assembly per architecture), and
 * the records must hold exactly those values, in the order thread.h gives,
 * with the stack pointer the caller had.  Without stubs (other
 * architectures) the suite is skipped.
 */
#include <check.h>
#include <stdint.h>
#include <string.h>

#include "mgc.h"

#include "gctest.h"
#include "runtime/thread.h"

#if MGC_BLOCKING_STUBS

/* Calls fn with every callee-saved register set to mark + its index in
 * struct blocking_regs (the zero word of AArch64's record left out), and
 * returns the stack pointer it had at the call: what the stub should
 * record as the caller's.  The registers are restored before it returns. */
uintptr_t call_with_marks(void (*fn)(void), uintptr_t mark);

#if defined(__x86_64__)
/* Record order: rbx, rbp, r12, r13, r14, r15.  Six pushes and 8 bytes keep
 * the call 16-byte aligned; the stub sees rsp + 8 after the return. */
__asm__(".pushsection .text\n"
        ".globl call_with_marks\n"
        ".type call_with_marks, @function\n"
        "call_with_marks:\n"
        "  pushq %rbx\n"
        "  pushq %rbp\n"
        "  pushq %r12\n"
        "  pushq %r13\n"
        "  pushq %r14\n"
        "  pushq %r15\n"
        "  subq $8, %rsp\n"
        "  movq %rdi, %rax\n"
        "  leaq 0(%rsi), %rbx\n"
        "  leaq 1(%rsi), %rbp\n"
        "  leaq 2(%rsi), %r12\n"
        "  leaq 3(%rsi), %r13\n"
        "  leaq 4(%rsi), %r14\n"
        "  leaq 5(%rsi), %r15\n"
        "  call *%rax\n"
        "  movq %rsp, %rax\n"
        "  addq $8, %rsp\n"
        "  popq %r15\n"
        "  popq %r14\n"
        "  popq %r13\n"
        "  popq %r12\n"
        "  popq %rbp\n"
        "  popq %rbx\n"
        "  ret\n"
        ".size call_with_marks, .-call_with_marks\n"
        ".popsection\n");
#define MARKED_REGS 6
#elif defined(__aarch64__)
/* Record order: x19-x28, x29, d8-d15 (then the zero word). */
__asm__(".pushsection .text\n"
        ".globl call_with_marks\n"
        ".type call_with_marks, %function\n"
        "call_with_marks:\n"
        "  hint #34\n"
        "  stp x29, x30, [sp, #-176]!\n"
        "  mov x29, sp\n"
        "  stp x19, x20, [sp, #16]\n"
        "  stp x21, x22, [sp, #32]\n"
        "  stp x23, x24, [sp, #48]\n"
        "  stp x25, x26, [sp, #64]\n"
        "  stp x27, x28, [sp, #80]\n"
        "  stp d8, d9, [sp, #96]\n"
        "  stp d10, d11, [sp, #112]\n"
        "  stp d12, d13, [sp, #128]\n"
        "  stp d14, d15, [sp, #144]\n"
        "  mov x9, x0\n"
        "  add x19, x1, #0\n"
        "  add x20, x1, #1\n"
        "  add x21, x1, #2\n"
        "  add x22, x1, #3\n"
        "  add x23, x1, #4\n"
        "  add x24, x1, #5\n"
        "  add x25, x1, #6\n"
        "  add x26, x1, #7\n"
        "  add x27, x1, #8\n"
        "  add x28, x1, #9\n"
        "  add x10, x1, #11\n"
        "  fmov d8, x10\n"
        "  add x10, x1, #12\n"
        "  fmov d9, x10\n"
        "  add x10, x1, #13\n"
        "  fmov d10, x10\n"
        "  add x10, x1, #14\n"
        "  fmov d11, x10\n"
        "  add x10, x1, #15\n"
        "  fmov d12, x10\n"
        "  add x10, x1, #16\n"
        "  fmov d13, x10\n"
        "  add x10, x1, #17\n"
        "  fmov d14, x10\n"
        "  add x10, x1, #18\n"
        "  fmov d15, x10\n"
        "  add x29, x1, #10\n"
        "  blr x9\n"
        "  mov x0, sp\n"
        "  ldp d8, d9, [sp, #96]\n"
        "  ldp d10, d11, [sp, #112]\n"
        "  ldp d12, d13, [sp, #128]\n"
        "  ldp d14, d15, [sp, #144]\n"
        "  ldp x19, x20, [sp, #16]\n"
        "  ldp x21, x22, [sp, #32]\n"
        "  ldp x23, x24, [sp, #48]\n"
        "  ldp x25, x26, [sp, #64]\n"
        "  ldp x27, x28, [sp, #80]\n"
        "  ldp x29, x30, [sp], #176\n"
        "  ret\n"
        ".size call_with_marks, .-call_with_marks\n"
        ".popsection\n");
#define MARKED_REGS 19
#else
#error "test_blocking_regs: MGC_BLOCKING_STUBS on an architecture without call_with_marks"
#endif

#define ENTRY_MARK ((uintptr_t)0x5e11000000000100)
#define EXIT_MARK ((uintptr_t)0x5e11000000000200)

static void check_record(const struct blocking_regs *r, uintptr_t mark, const char *which) {
  for (unsigned i = 0; i < BLOCKING_REGS; i++) {
    uintptr_t expected = i < MARKED_REGS ? mark + i : 0;
    ck_assert_msg(r->regs[i] == expected, "%s: word %u of the record is %#lx, expected %#lx", which, i,
                  (unsigned long)r->regs[i], (unsigned long)expected);
  }
}

START_TEST(test_entry_records_the_callers_registers_and_stack_pointer) {
  struct mthread *t = thread_current;
  ck_assert_ptr_nonnull(t);
  gc_blocking_begin(); /* an earlier region's exit fills the exit record */
  call_with_marks(gc_blocking_end, EXIT_MARK);
  uintptr_t caller_sp = call_with_marks(gc_blocking_begin, ENTRY_MARK);
  ck_assert_uint_eq(atomic_load_relaxed(&t->blocking), 1);
  ck_assert_uint_eq(atomic_load_relaxed(&t->blocking_sp), caller_sp);
  check_record(&t->blocking_regs, ENTRY_MARK, "entry");
  ck_assert_ptr_nonnull(t->blocking_exit_regs);
  static const struct blocking_regs cleared;
  ck_assert_msg(memcmp(t->blocking_exit_regs, &cleared, sizeof cleared) == 0,
                "the entry left an older exit's registers in the exit record");
  gc_blocking_end();
}
END_TEST

START_TEST(test_exit_copies_the_callers_registers_before_it_leaves) {
  struct mthread *t = thread_current;
  ck_assert_ptr_nonnull(t);
  gc_blocking_begin();
  call_with_marks(gc_blocking_end, EXIT_MARK);
  ck_assert_uint_eq(atomic_load_relaxed(&t->blocking), 0);
  ck_assert_ptr_nonnull(t->blocking_exit_regs);
  check_record(t->blocking_exit_regs, EXIT_MARK, "exit");
}
END_TEST

/* mgc starts in each test's child process (a checked fixture), not in
 * main before the runner forks: forked from a parent with mgc's threads
 * running, the child hung until Check's timeout in 10-16 runs of 150
 * under ASan, LeakSanitizer saying at its exit that it could not suspend
 * mgc's threads (0 of 150 since). */
static void start_mgc(void) { gc_init(); }

int main(void) {
  Suite *suite = suite_create("blocking_regs");
  TCase *tc = tcase_create("stubs");
  tcase_add_checked_fixture(tc, start_mgc, NULL);
  tcase_add_test(tc, test_entry_records_the_callers_registers_and_stack_pointer);
  tcase_add_test(tc, test_exit_copies_the_callers_registers_before_it_leaves);
  suite_add_tcase(suite, tc);
  return run_suite(suite);
}

#else
int main(void) { return 77; } /* meson: skipped (no stubs here) */
#endif
