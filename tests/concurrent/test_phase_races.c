/*
 * test_phase_races.c: threads start, store, allocate and exit in a tight
 * loop while another thread runs collections back to back (MGC_VERIFY=1,
 * concurrent marking), so thread registration, unregistration, barrier
 * buffers and allocation caches change hands at every phase of a cycle:
 * during mark setup, concurrent marking, termination and sweeping (public
 * API only; suite "stress").
 *
 * Data: NBOXES mailboxes, the slots of one gc_alloc'd object hung from a
 * global, each guarded by a mutex.  A mailbox holds a self-describing list
 * (every node carries its list's id and length, its index and a payload
 * derived from both), so any reader can check any list.  Ephemeral threads
 * build a list privately, splice fresh nodes into it (GC_WRITE on `next`),
 * check the list they take out of a mailbox and publish theirs; a shuffler
 * swaps lists between mailboxes; a checker walks every mailbox.  All heap
 * pointer stores go through GC_WRITE.
 *
 * Ephemeral threads end in one of EXIT_KINDS ways: return from a
 * gc_pthread_create start routine; pthread_exit from one (skipping the
 * trampoline's unregister: the thread-exit destructor unregisters);
 * gc_thread_unregister then return from a plain pthread after
 * gc_thread_register; return from a plain pthread without unregistering;
 * return from a plain pthread never registered explicitly (its first
 * allocation registers it).
 *
 * Settings: MGC_RACE_CYCLES (collections to run, default 2000).
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conctest.h"
#include "gctest.h"
#include "mgc.h"

#define NBOXES 16
#define MAX_LIST 24
#define SPLICES 8
#define ROUNDS 3
#define SPAWNERS 2
#define ALIVE_PER_SPAWNER 3
#define EXIT_KINDS 5
#define GARBAGE_BYTES 200
#define PAYLOAD_WORDS 3
#define NODE_MAGIC 0x6d67636e6f6465ull
#define DEFAULT_CYCLES 2000
#define MSG_MAX 256

struct lnode {
  uint64_t magic;
  uint64_t list_id;
  uint32_t index, len;
  struct lnode *next;
  uint64_t payload[PAYLOAD_WORDS];
};

struct boxes {
  struct lnode *head[NBOXES];
};

static struct boxes *volatile boxes;
static pthread_mutex_t box_lock[NBOXES];
static atomic_bool stop;
static atomic_int failed;
static char failure[MSG_MAX];
static atomic_ullong next_list_id, threads_run, lists_checked;
static atomic_ullong exits[EXIT_KINDS];

static void report_failure(const char *what, uint64_t list_id, uint64_t index) {
  if (atomic_exchange(&failed, 1)) return;
  snprintf(failure, sizeof(failure), "%s (list %llu, node %llu)", what, (unsigned long long)list_id,
           (unsigned long long)index);
  atomic_store(&stop, true);
}

static uint64_t payload_word(uint64_t list_id, uint32_t index, int k) {
  return (list_id * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)index << 8) ^ (uint64_t)k;
}

static struct lnode *new_node(uint64_t list_id, uint32_t index, uint32_t len) {
  struct lnode *n = gc_alloc(sizeof(struct lnode));
  if (!n) {
    report_failure("gc_alloc failed", list_id, index);
    return NULL;
  }
  n->magic = NODE_MAGIC;
  n->list_id = list_id;
  n->index = index;
  n->len = len;
  for (int k = 0; k < PAYLOAD_WORDS; k++) n->payload[k] = payload_word(list_id, index, k);
  return n;
}

static void check_list(const struct lnode *head) {
  if (!head) return;
  uint64_t id = head->list_id;
  uint32_t len = head->len, i = 0;
  for (const struct lnode *n = head; n; n = n->next, i++) {
    if (n->magic != NODE_MAGIC || n->list_id != id || n->len != len || n->index != i) {
      report_failure("list node damaged", id, i);
      return;
    }
    for (int k = 0; k < PAYLOAD_WORDS; k++)
      if (n->payload[k] != payload_word(id, i, k)) report_failure("payload damaged", id, i);
  }
  if (i != len) report_failure("list length changed", id, i);
  atomic_fetch_add(&lists_checked, 1);
}

static struct lnode *build_list(uint64_t *rng) {
  uint64_t id = atomic_fetch_add(&next_list_id, 1) + 1;
  uint32_t len = 1 + (uint32_t)conc_below(rng, MAX_LIST);
  struct lnode *head = NULL;
  for (uint32_t i = len; i-- > 0;) {
    struct lnode *n = new_node(id, i, len);
    if (!n) return head;
    GC_WRITE(&n->next, head);
    head = n;
  }
  return head;
}

/* Replace a random node by a fresh copy: two barriered stores. */
static void splice(struct lnode *head, uint64_t *rng) {
  uint32_t at = 1 + (uint32_t)conc_below(rng, head->len);
  if (at >= head->len) return;
  struct lnode *prev = head;
  while (prev->index + 1 < at) prev = prev->next;
  struct lnode *old = prev->next;
  struct lnode *fresh = new_node(head->list_id, at, head->len);
  if (!fresh) return;
  GC_WRITE(&fresh->next, old->next);
  GC_WRITE(&prev->next, fresh);
  GC_WRITE(&old->next, NULL);
}

static void ephemeral_work(uint64_t seq) {
  uint64_t rng = seq * 0x2545F4914F6CDD1Dull + 17;
  for (int round = 0; round < ROUNDS && !atomic_load(&stop); round++) {
    struct lnode *mine = build_list(&rng);
    for (int s = 0; s < SPLICES && mine; s++) {
      splice(mine, &rng);
      void *volatile g = gc_alloc(1 + conc_below(&rng, GARBAGE_BYTES));
      (void)g;
    }
    check_list(mine);
    unsigned b = (unsigned)conc_below(&rng, NBOXES);
    conc_mutex_lock(&box_lock[b]);
    check_list(boxes->head[b]);
    GC_WRITE(&boxes->head[b], mine);
    pthread_mutex_unlock(&box_lock[b]);
  }
  atomic_fetch_add(&threads_run, 1);
}

static void *ephemeral_gc_thread(void *arg) {
  uint64_t seq = (uint64_t)(uintptr_t)arg;
  ephemeral_work(seq);
  atomic_fetch_add(&exits[seq % EXIT_KINDS], 1);
  if (seq % EXIT_KINDS == 1) pthread_exit(NULL);
  return NULL;
}

static void *ephemeral_plain_thread(void *arg) {
  uint64_t seq = (uint64_t)(uintptr_t)arg;
  unsigned kind = (unsigned)(seq % EXIT_KINDS);
  if (kind != 4) gc_thread_register();
  ephemeral_work(seq);
  atomic_fetch_add(&exits[kind], 1);
  if (kind == 2) gc_thread_unregister();
  return NULL;
}

static void *spawner_main(void *arg) {
  uint64_t seq = (uint64_t)(uintptr_t)arg;
  pthread_t alive[ALIVE_PER_SPAWNER];
  while (!atomic_load(&stop)) {
    for (int i = 0; i < ALIVE_PER_SPAWNER; i++, seq += SPAWNERS) {
      void *a = (void *)(uintptr_t)seq;
      int err = seq % EXIT_KINDS < 2 ? gc_pthread_create(&alive[i], NULL, ephemeral_gc_thread, a)
                                     : pthread_create(&alive[i], NULL, ephemeral_plain_thread, a);
      if (err) {
        report_failure("thread creation failed", seq, (uint64_t)err);
        return NULL;
      }
    }
    gc_blocking_begin();
    for (int i = 0; i < ALIVE_PER_SPAWNER; i++) pthread_join(alive[i], NULL);
    gc_blocking_end();
  }
  return NULL;
}

/* Swap two mailboxes' lists (locks in index order). */
static void *shuffler_main(void *arg) {
  uint64_t rng = (uint64_t)(uintptr_t)arg;
  while (!atomic_load(&stop)) {
    unsigned a = (unsigned)conc_below(&rng, NBOXES), b = (unsigned)conc_below(&rng, NBOXES);
    if (a == b) continue;
    if (a > b) {
      unsigned t = a;
      a = b;
      b = t;
    }
    conc_mutex_lock(&box_lock[a]);
    conc_mutex_lock(&box_lock[b]);
    struct lnode *x = boxes->head[a];
    GC_WRITE(&boxes->head[a], boxes->head[b]);
    GC_WRITE(&boxes->head[b], x);
    pthread_mutex_unlock(&box_lock[b]);
    pthread_mutex_unlock(&box_lock[a]);
  }
  return NULL;
}

static void check_all_boxes(void) {
  for (unsigned b = 0; b < NBOXES; b++) {
    conc_mutex_lock(&box_lock[b]);
    check_list(boxes->head[b]);
    pthread_mutex_unlock(&box_lock[b]);
  }
}

static void *checker_main(void *arg) {
  (void)arg;
  while (!atomic_load(&stop)) check_all_boxes();
  return NULL;
}

static const struct conc_env race_env[] = {
  {"MGC_CONCURRENT", "1", 1},
  {"MGC_VERIFY", "1", 0},
  {"MGC_GOGC", "50", 0},
};

START_TEST(test_threads_start_store_and_exit_during_every_phase) {
  conc_init(race_env, CONC_LEN(race_env));
  for (unsigned b = 0; b < NBOXES; b++) pthread_mutex_init(&box_lock[b], NULL);
  boxes = gc_alloc(sizeof(struct boxes));
  ck_assert_ptr_nonnull(boxes);
  uint64_t target = conc_env_ulong("MGC_RACE_CYCLES", DEFAULT_CYCLES);
  uint64_t cycles0 = cycles_now();
  double t0 = conc_seconds();

  pthread_t spawners[SPAWNERS], shuffler, checker;
  for (int i = 0; i < SPAWNERS; i++)
    ck_assert_int_eq(gc_pthread_create(&spawners[i], NULL, spawner_main, (void *)(uintptr_t)i), 0);
  ck_assert_int_eq(gc_pthread_create(&shuffler, NULL, shuffler_main, (void *)(uintptr_t)99), 0);
  ck_assert_int_eq(gc_pthread_create(&checker, NULL, checker_main, NULL), 0);
  while (!atomic_load(&stop) && cycles_now() - cycles0 < target) gc_collect();
  atomic_store(&stop, true);
  gc_blocking_begin();
  for (int i = 0; i < SPAWNERS; i++) pthread_join(spawners[i], NULL);
  pthread_join(shuffler, NULL);
  pthread_join(checker, NULL);
  gc_blocking_end();

  ck_assert_msg(!atomic_load(&failed), "%s", failure);
  gc_collect();
  check_all_boxes();
  ck_assert_msg(!atomic_load(&failed), "%s", failure);
  struct gc_stats st = stats_now();
  fprintf(stderr, "phase_races: %llu cycles, %llu threads (exits %llu/%llu/%llu/%llu/%llu), "
          "%llu lists checked, %.1f s, %llu verify misses\n",
          (unsigned long long)(st.cycles - cycles0), (unsigned long long)atomic_load(&threads_run),
          (unsigned long long)exits[0], (unsigned long long)exits[1], (unsigned long long)exits[2],
          (unsigned long long)exits[3], (unsigned long long)exits[4],
          (unsigned long long)atomic_load(&lists_checked), conc_seconds() - t0,
          (unsigned long long)st.verify_misses);
  for (int k = 0; k < EXIT_KINDS; k++) ck_assert_uint_gt(exits[k], 0);
  ck_assert_msg(st.verify_misses == 0, "the concurrent mark missed %llu objects",
                (unsigned long long)st.verify_misses);
}
END_TEST

/* A stop signal that arrives late (its stop was acknowledged already, in
 * a blocking region's wait) or stray may come while the next stop is in
 * progress but has not yet signalled the thread.  The handler must then
 * return rather than park: parked, it waits for a restart that needs the
 * thread's own acknowledgement, while that stop's signal stays blocked
 * until the handler returns, and the stopper waits for ever (a hang seen
 * once in the test above).  Here another thread sends the stop signal to
 * a mutator over and over while the main thread collects. */
#define STRAY_SECONDS 3.0
#define STRAY_MIN_CYCLES 100
#define STRAY_MAX_SECONDS 40.0 /* a slow machine (TSan) runs on to STRAY_MIN_CYCLES */

static atomic_bool stray_stop;
static atomic_ullong stray_sent, stray_allocs;

static void *stray_mutator_main(void *arg) {
  (void)arg;
  while (!atomic_load(&stray_stop)) {
    void *volatile p = gc_alloc(48);
    (void)p;
    atomic_fetch_add(&stray_allocs, 1);
  }
  return NULL;
}

static void *stray_sender_main(void *arg) {
  pthread_t target = *(pthread_t *)arg;
  while (!atomic_load(&stray_stop)) {
    pthread_kill(target, SIGPWR);
    atomic_fetch_add(&stray_sent, 1);
    for (volatile int spin = 0; spin < 200; spin++) {
    }
  }
  return NULL;
}

static const struct conc_env stray_env[] = {
  {"MGC_CONCURRENT", "1", 1},
};

START_TEST(test_stray_stop_signals_during_stops_do_not_hang_them) {
  unsetenv("MGC_STOP_SIGNAL"); /* the default, SIGPWR */
  conc_init(stray_env, CONC_LEN(stray_env));
  pthread_t mutator, sender;
  ck_assert_int_eq(gc_pthread_create(&mutator, NULL, stray_mutator_main, NULL), 0);
  ck_assert_int_eq(pthread_create(&sender, NULL, stray_sender_main, &mutator), 0);
  uint64_t cycles0 = cycles_now();
  double t0 = conc_seconds();
  for (;;) {
    double elapsed = conc_seconds() - t0;
    if (elapsed >= STRAY_MAX_SECONDS || (elapsed >= STRAY_SECONDS && cycles_now() - cycles0 >= STRAY_MIN_CYCLES)) break;
    gc_collect();
  }
  uint64_t cycles = cycles_now() - cycles0;
  atomic_store(&stray_stop, true);
  pthread_join(sender, NULL); /* before the mutator ends: it signals it */
  gc_blocking_begin();
  pthread_join(mutator, NULL);
  gc_blocking_end();
  fprintf(stderr, "stray stop signals: %llu sent, %llu collections, %llu allocations\n",
          (unsigned long long)atomic_load(&stray_sent), (unsigned long long)cycles,
          (unsigned long long)atomic_load(&stray_allocs));
  ck_assert_uint_ge(cycles, STRAY_MIN_CYCLES);
  ck_assert_uint_gt(atomic_load(&stray_sent), cycles);
}
END_TEST

static Suite *phase_races_suite(void) {
  Suite *s = suite_create("phase_races");
  TCase *tc = tcase_create("threads");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, test_threads_start_store_and_exit_during_every_phase);
  suite_add_tcase(s, tc);
  TCase *stray = tcase_create("stray_signals");
  tcase_set_timeout(stray, 60);
  tcase_add_test(stray, test_stray_stop_signals_during_stops_do_not_hang_them);
  suite_add_tcase(s, stray);
  return s;
}

int main(void) { return run_suite_in_children(phase_races_suite()); }
