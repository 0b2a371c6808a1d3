/*
 * os_linux.c: os.h on Linux (mmap, mprotect, madvise, clock_gettime,
 * pthread_getattr_np).
 */
#include "runtime/os.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static void *map_none(void *hint, size_t size) {
  void *p = mmap(hint, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

void *os_reserve_aligned(void *hint, size_t size, size_t align) {
  void *p = map_none(hint, size);
  if (p && ((uintptr_t)p & (align - 1)) == 0) return p;
  if (p) munmap(p, size);
  /* Over-reserve and trim to the alignment. */
  uint8_t *raw = map_none(NULL, size + align);
  if (!raw) return NULL;
  uintptr_t start = ((uintptr_t)raw + align - 1) & ~(uintptr_t)(align - 1);
  size_t head = start - (uintptr_t)raw;
  size_t tail = align - head;
  if (head) munmap(raw, head);
  if (tail) munmap((void *)(start + size), tail);
  return (void *)start;
}

void *os_alloc_metadata(size_t size) {
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

void os_free_metadata(void *p, size_t size) { munmap(p, size); }

int os_commit(void *p, size_t size) {
  return mprotect(p, size, PROT_READ | PROT_WRITE) == 0 ? 0 : errno;
}

int os_release(void *p, size_t size) {
  return madvise(p, size, MADV_DONTNEED) == 0 ? 0 : errno;
}

size_t os_page_size(void) {
  long n = sysconf(_SC_PAGESIZE);
  return n > 0 ? (size_t)n : 4096;
}

int os_cpu_count(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (int)n : 1;
}

static uint64_t clock_ns(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t os_nanotime(void) { return clock_ns(CLOCK_MONOTONIC); }
uint64_t os_thread_cpu_ns(void) { return clock_ns(CLOCK_THREAD_CPUTIME_ID); }
uint64_t os_process_cpu_ns(void) { return clock_ns(CLOCK_PROCESS_CPUTIME_ID); }

int os_thread_stack_bounds(uintptr_t *lo, uintptr_t *hi) {
  pthread_attr_t attr;
  int err = pthread_getattr_np(pthread_self(), &attr);
  if (err) return err;
  void *addr;
  size_t size;
  err = pthread_attr_getstack(&attr, &addr, &size);
  pthread_attr_destroy(&attr);
  if (err) return err;
  *lo = (uintptr_t)addr;
  *hi = (uintptr_t)addr + size;
  /* The main thread's stack grows on demand down to RLIMIT_STACK below its
   * top; glibc reports less when another mapping lies close below the part
   * mapped so far (as under Valgrind), and a deeper stopped frame would
   * then look like no stack at all (runtime/roots.c, gc/verify.c). */
  struct rlimit rl;
  if ((pid_t)syscall(SYS_gettid) == getpid() && getrlimit(RLIMIT_STACK, &rl) == 0 &&
      rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < *hi && *hi - rl.rlim_cur < *lo)
    *lo = *hi - rl.rlim_cur;
  return 0;
}

size_t os_rss_bytes(void) {
  int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[128];
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n <= 0) return 0;
  buf[n] = '\0';
  const char *s = buf;
  while (*s && *s != ' ') s++; /* skip total size */
  while (*s == ' ') s++;
  size_t pages = 0;
  while (*s >= '0' && *s <= '9') pages = pages * 10 + (size_t)(*s++ - '0');
  return pages * os_page_size();
}

void os_lower_thread_priority(int nice) {
  /* Failure leaves the thread at the process's priority: harmless. */
  (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), nice);
}

void os_name_thread(const char *name) { (void)pthread_setname_np(pthread_self(), name); }

void os_yield_if_due(uint64_t *last_ns, uint64_t interval_ns) {
  uint64_t now = os_nanotime();
  if (now - *last_ns < interval_ns) return;
  sched_yield();
  *last_ns = os_nanotime();
}

int os_start_background_thread(void *(*fn)(void *), void *arg) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_t t;
  int err = pthread_create(&t, NULL, fn, arg);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (!err) pthread_detach(t);
  return err;
}
