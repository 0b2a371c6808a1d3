/*
 * table.c: hash tables, strong and weak.
 *
 * A table (struct table) holds a vector of buckets; a bucket is a chain of
 * entries (struct entry).  Keys are compared with eqv?, except that strings
 * compare by contents; they hash by value for numbers, characters and
 * strings, and by address for other objects (mgc never moves objects, so
 * an address is a stable hash).
 *
 * Weak tables (make-weak-hash-table): an entry whose key is a heap object
 * holds an mgc ephemeron (gc_ephemeron_new(key, value)) instead of the key
 * and value themselves, so the table keeps neither alive: the value lives
 * as long as the key is reachable from outside, even when the value refers
 * back to its key.  Once the collector finds the key unreachable, the
 * ephemeron reads NULL and the entry is dead; dead entries are unlinked
 * lazily, by any walk of their bucket.  Keys that are not heap objects
 * (fixnums, characters, booleans) are never collected, so their entries
 * are ordinary strong entries even in a weak table.
 *
 * Invariants: t->n >= number of live entries (it counts dead entries not
 * yet unlinked; hash-table-count prunes everything and makes it exact).
 * Every store of a chain link, key, value or ephemeron goes through
 * set_field.
 */
#include <string.h>

#include "scheme.h"

#define UNUSED_ARGC (void)argc
#define TABLE_INITIAL_BUCKETS 16

static size_t mix(uint64_t x) {   /* a 64-bit finaliser, spreading addresses' zero low bits */
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  return (size_t)x;
}

static size_t hash_key(val k) {
  if (is_string(k)) {
    size_t h = 1469598103934665603u;
    for (size_t i = 0; i < string_length(k); i++) h = (h ^ (unsigned char)AS(string, k)->bytes[i]) * 1099511628211u;
    return h;
  }
  if (is_flonum(k)) {
    double d = flonum_value(k);
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    return mix(bits);
  }
  return mix(k);
}

static bool key_equal(val a, val b) {
  if (is_string(a) && is_string(b)) return equal(a, b);
  return eqv(a, b);
}

static bool is_weak_entry(val e) { return HDR_COUNT(AS(entry, e)->hdr) & ENTRY_EPHEMERON; }

/* The entry's key, or 0 when its ephemeron has been cleared. */
static val entry_key(val e) {
  if (!is_weak_entry(e)) return AS(entry, e)->a;
  return (val)gc_ephemeron_key((const gc_ephemeron *)AS(entry, e)->a);
}

static val entry_value(val e) {
  if (!is_weak_entry(e)) return AS(entry, e)->b;
  return (val)gc_ephemeron_value((const gc_ephemeron *)AS(entry, e)->a);
}

static val new_ephemeron(val key, val value) {
  gc_ephemeron *eph = gc_ephemeron_new((void *)key, (void *)value);
  if (!eph) scheme_error("hash-table-set!: out of memory");
  return (val)eph;
}

static val check_table(const char *who, val t) {
  if (!has_kind(t, K_TABLE)) type_error(who, "a hash table", t);
  return t;
}

static val *bucket_of(val t, val key) {
  val b = AS(table, t)->buckets;
  return &AS(vector, b)->items[hash_key(key) % vector_length(b)];
}

/* Find key's entry, unlinking dead entries met on the way.  Returns the
 * link (bucket slot or previous entry's next field) that points to the
 * entry, or NULL. */
static val *find_link(val t, val key) {
  val *link = bucket_of(t, key);
  while (*link != NIL) {
    val e = *link;
    val k = entry_key(e);
    if (!k) {                                   /* key collected */
      set_field(link, AS(entry, e)->next);
      AS(table, t)->n--;
      continue;
    }
    if (key_equal(k, key)) return link;
    link = &AS(entry, e)->next;
  }
  return NULL;
}

/* Walk every live entry (pruning dead ones); fn(key, value, ctx). */
static void table_walk(val t, void (*fn)(val key, val value, void *ctx), void *ctx) {
  val b = AS(table, t)->buckets;
  size_t live = 0;
  for (size_t i = 0; i < vector_length(b); i++) {
    val *link = &AS(vector, b)->items[i];
    while (*link != NIL) {
      val e = *link;
      val k = entry_key(e);
      if (!k) {
        set_field(link, AS(entry, e)->next);
        continue;
      }
      live++;
      if (fn) fn(k, entry_value(e), ctx);
      link = &AS(entry, e)->next;
    }
  }
  AS(table, t)->n = live;
}

static void table_grow(val t) {
  val old = AS(table, t)->buckets;
  size_t n = vector_length(old) * 2;
  val fresh = make_vector(n, NIL);
  for (size_t i = 0; i < vector_length(old); i++) {
    for (val e = AS(vector, old)->items[i], next; e != NIL; e = next) {
      next = AS(entry, e)->next;
      val k = entry_key(e);
      if (!k) { AS(table, t)->n--; continue; }
      val *slot = &AS(vector, fresh)->items[hash_key(k) % n];
      set_field(&AS(entry, e)->next, *slot);
      set_field(slot, e);
    }
  }
  set_field(&AS(table, t)->buckets, fresh);
}

static val p_make_hash_table(int argc, val *argv) { (void)argc; (void)argv; return make_table(false, TABLE_INITIAL_BUCKETS); }
static val p_make_weak_hash_table(int argc, val *argv) { (void)argc; (void)argv; return make_table(true, TABLE_INITIAL_BUCKETS); }

static val p_hash_table_set(int argc, val *argv) {
  UNUSED_ARGC;
  val t = check_table("hash-table-set!", argv[0]), key = argv[1], value = argv[2];
  bool weak = (HDR_COUNT(AS(table, t)->hdr) & TABLE_WEAK) && is_ptr(key);
  val *link = find_link(t, key);
  if (link) {
    val e = *link;
    if (is_weak_entry(e)) set_field(&AS(entry, e)->a, new_ephemeron(key, value));
    else set_field(&AS(entry, e)->b, value);
    return UNSPEC;
  }
  val *bucket = bucket_of(t, key);
  val e = weak ? make_entry(true, *bucket, new_ephemeron(key, value), FALSE_V)
               : make_entry(false, *bucket, key, value);
  set_field(bucket, e);   /* objects never move: bucket still points into the live vector */
  if (++AS(table, t)->n > 2 * vector_length(AS(table, t)->buckets)) table_grow(t);
  return UNSPEC;
}

static val p_hash_table_ref(int argc, val *argv) {
  val *link = find_link(check_table("hash-table-ref", argv[0]), argv[1]);
  if (!link) return argc > 2 ? argv[2] : FALSE_V;
  val value = entry_value(*link);
  /* The key is alive (we hold it in argv), so its ephemeron's value is
   * too; a 0 here would mean the library broke its contract. */
  return value ? value : FALSE_V;
}

static val p_hash_table_contains(int argc, val *argv) {
  UNUSED_ARGC;
  return make_bool(find_link(check_table("hash-table-contains?", argv[0]), argv[1]) != NULL);
}

static val p_hash_table_delete(int argc, val *argv) {
  UNUSED_ARGC;
  val t = check_table("hash-table-delete!", argv[0]);
  val *link = find_link(t, argv[1]);
  if (link) {
    set_field(link, AS(entry, *link)->next);
    AS(table, t)->n--;
  }
  return UNSPEC;
}

static val p_hash_table_count(int argc, val *argv) {
  UNUSED_ARGC;
  val t = check_table("hash-table-count", argv[0]);
  table_walk(t, NULL, NULL);
  return make_fixnum((intptr_t)AS(table, t)->n);
}

/* Collect (key . value) pairs or keys into a list held in *ctx (a C
 * local of the caller, so on the scanned stack). */
static void push_pair(val key, val value, void *ctx) { *(val *)ctx = cons(cons(key, value), *(val *)ctx); }
static void push_key(val key, val value, void *ctx) { (void)value; *(val *)ctx = cons(key, *(val *)ctx); }

static val p_hash_table_to_alist(int argc, val *argv) {
  UNUSED_ARGC;
  val out = NIL;
  table_walk(check_table("hash-table->alist", argv[0]), push_pair, &out);
  return out;
}
static val p_hash_table_keys(int argc, val *argv) {
  UNUSED_ARGC;
  val out = NIL;
  table_walk(check_table("hash-table-keys", argv[0]), push_key, &out);
  return out;
}
static val p_hash_tablep(int argc, val *argv) { UNUSED_ARGC; return make_bool(has_kind(argv[0], K_TABLE)); }

void table_init(void) {
  defprim("make-hash-table", p_make_hash_table, 0, 0);
  defprim("make-weak-hash-table", p_make_weak_hash_table, 0, 0);
  defprim("hash-table?", p_hash_tablep, 1, 1);
  defprim("hash-table-set!", p_hash_table_set, 3, 3);
  defprim("hash-table-ref", p_hash_table_ref, 2, 3);
  defprim("hash-table-contains?", p_hash_table_contains, 2, 2);
  defprim("hash-table-delete!", p_hash_table_delete, 2, 2);
  defprim("hash-table-count", p_hash_table_count, 1, 1);
  defprim("hash-table->alist", p_hash_table_to_alist, 1, 1);
  defprim("hash-table-keys", p_hash_table_keys, 1, 1);
}
