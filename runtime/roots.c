/*
 * roots.c: root enumeration (see roots.h).
 *
 * The segment list and the explicit roots live in metadata memory grown by
 * doubling (os_alloc_metadata), never in the heap and never with malloc,
 * so enumerating them with the world stopped takes no lock a stopped
 * thread could hold.  roots_lock (rank LOCK_ROOTS) protects both lists;
 * the collector holds it across the stopped-world scan.
 */
#include "runtime/roots.h"

#include <elf.h>
#include <errno.h>
#include <link.h>
#include <string.h>

#include "runtime/lock.h"
#include "runtime/os.h"
#include "runtime/stw.h"
#include "runtime/thread.h"
#include "runtime/throw.h"

struct range {
  uintptr_t lo, hi;
};

struct range_list {
  struct range *items;
  size_t len, cap;
};

static struct mgc_lock roots_lock = MGC_LOCK_INITIALIZER(LOCK_ROOTS);
static struct range_list segments;   /* under roots_lock */
static struct range_list explicit_roots;
static uintptr_t own_data_base;      /* load address of libmgc.so, 0 if static */

static bool range_list_push(struct range_list *l, uintptr_t lo, uintptr_t hi) {
  if (l->len == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 64;
    struct range *items = os_alloc_metadata(cap * sizeof(*items));
    if (!items) return false;
    if (l->items) {
      memcpy(items, l->items, l->len * sizeof(*items));
      os_free_metadata(l->items, l->cap * sizeof(*items));
    }
    l->items = items;
    l->cap = cap;
  }
  l->items[l->len++] = (struct range){lo, hi};
  return true;
}

/* Finds the loaded object holding roots_init: if it is not the main
 * program (the first object dl_iterate_phdr reports), mgc is a shared
 * object whose load address goes into own_data_base. */
static int find_own_object(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size;
  int *index = arg;
  uintptr_t self = (uintptr_t)&roots_init;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD) continue;
    uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
    if (self >= lo && self < lo + ph->p_memsz) {
      if (*index > 0) own_data_base = info->dlpi_addr;
      return 1;
    }
  }
  (*index)++;
  return 0;
}

int roots_init(void) {
  /* When mgc is a shared object, its own writable data holds only
   * metadata and a few heap addresses (arena bounds) that must not keep
   * objects alive: skip it. */
  int index = 0;
  dl_iterate_phdr(find_own_object, &index);
  return 0;
}

struct phdr_ctx {
  struct range_list *out;
};

static int collect_segment(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size;
  struct phdr_ctx *ctx = arg;
  if (own_data_base && info->dlpi_addr == own_data_base) return 0;
  uintptr_t relro_lo = 0, relro_hi = 0;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type == PT_GNU_RELRO) {
      relro_lo = info->dlpi_addr + ph->p_vaddr;
      relro_hi = relro_lo + ph->p_memsz;
    }
  }
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_W)) continue;
    uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
    uintptr_t hi = lo + ph->p_memsz;
    if (relro_hi > lo && relro_lo < hi) {
      /* RELRO is read-only after relocation: no heap pointers there. */
      if (relro_lo > lo) range_list_push(ctx->out, lo, relro_lo);
      if (relro_hi < hi) range_list_push(ctx->out, relro_hi, hi);
    } else {
      range_list_push(ctx->out, lo, hi);
    }
  }
  return 0;
}

void roots_capture_segments(void) {
  lock_acquire(&roots_lock);
  segments.len = 0;
  struct phdr_ctx ctx = {&segments};
  dl_iterate_phdr(collect_segment, &ctx);
  lock_release(&roots_lock);
}

static void visit_list(const struct range_list *l, roots_visit_fn visit, void *ctx) {
  for (size_t i = 0; i < l->len; i++)
    if (l->items[i].hi > l->items[i].lo) visit(l->items[i].lo, l->items[i].hi, ctx);
}

void roots_lock_for_stw(void) { lock_acquire(&roots_lock); }
void roots_unlock_after_stw(void) { lock_release(&roots_lock); }

void roots_enumerate_stw(roots_visit_fn visit, void *ctx) {
  lock_assert_held(&roots_lock);
  visit_list(&segments, visit, ctx);
  visit_list(&explicit_roots, visit, ctx);
  struct mthread *self = thread_current;
  for (struct mthread *t = threads_head; t; t = t->next) {
    if (t == self) continue;
    /* Read once: a thread in a blocking region may park meanwhile (in the
     * region's entry or exit), and a second look that saw it parked would
     * skip the registers of a scan that started from blocking_sp. */
    uintptr_t parked_sp = atomic_load_acquire(&t->stopped_sp);
    uintptr_t lo = parked_sp ? parked_sp : atomic_load_acquire(&t->blocking_sp);
    if (!lo || lo < t->stack_lo || lo > t->stack_hi) {
      /* Stopped before it could record its stack pointer: cannot happen
       * once stw_stop has returned. */
      mgc_throw("stopped thread without a saved stack pointer");
    }
    visit(lo, t->stack_hi, ctx);
    /* Not parked: inside a blocking region, whose roots are also the
     * registers saved on entry and by the exit stub, read after the stack
     * (runtime/stw.c). */
    if (!parked_sp) {
      uintptr_t regs = (uintptr_t)&t->blocking_regs;
      visit(regs, regs + sizeof(t->blocking_regs), ctx);
      atomic_fence_loads(); /* the stack before the exit stub's copy */
      uintptr_t exit_regs = (uintptr_t)atomic_load_acquire((atomic_word *)&t->blocking_exit_regs);
      if (exit_regs) visit(exit_regs, exit_regs + sizeof(struct blocking_regs), ctx);
    }
  }
  if (self) {
    /* Our own callee-saved registers: spill them into this frame. */
    ucontext_t here;
    getcontext(&here);
    uintptr_t lo = (uintptr_t)&here;
    visit(lo < (uintptr_t)__builtin_frame_address(0) ? lo : (uintptr_t)__builtin_frame_address(0),
          self->stack_hi, ctx);
  }
}

int roots_add(uintptr_t lo, uintptr_t hi) {
  if (hi <= lo) return EINVAL;
  lock_acquire(&roots_lock);
  bool ok = range_list_push(&explicit_roots, lo, hi);
  lock_release(&roots_lock);
  return ok ? 0 : ENOMEM;
}

void roots_remove(uintptr_t lo, uintptr_t hi) {
  lock_acquire(&roots_lock);
  /* Keep the parts of each range outside [lo, hi): zero, one or two. */
  struct range_list kept = {0};
  for (size_t i = 0; i < explicit_roots.len; i++) {
    struct range r = explicit_roots.items[i];
    uintptr_t left_hi = r.hi < lo ? r.hi : lo;
    uintptr_t right_lo = r.lo > hi ? r.lo : hi;
    if (left_hi > r.lo) range_list_push(&kept, r.lo, left_hi);
    if (r.hi > right_lo) range_list_push(&kept, right_lo, r.hi);
  }
  if (explicit_roots.items) os_free_metadata(explicit_roots.items, explicit_roots.cap * sizeof(struct range));
  explicit_roots = kept;
  lock_release(&roots_lock);
}

size_t roots_global_bytes(void) {
  size_t n = 0;
  lock_acquire(&roots_lock);
  for (size_t i = 0; i < segments.len; i++) n += segments.items[i].hi - segments.items[i].lo;
  for (size_t i = 0; i < explicit_roots.len; i++) n += explicit_roots.items[i].hi - explicit_roots.items[i].lo;
  lock_release(&roots_lock);
  return n;
}

/* The prepare handler took roots_lock through lock_acquire: drop it from
 * the forking thread's held-lock record too, or the child's next
 * lock_acquire of a lower rank (gc_lock, threads_lock) throws. */
void roots_after_fork_child(void) {
  lock_rank_release(&roots_lock);
  lock_reinit_after_fork(&roots_lock);
}
