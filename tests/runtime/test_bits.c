/*
 * test_bits.c: the bit helpers of runtime/compiler.h.
 *
 * mgc_popcount64 counts in registers on the x86-64 baseline (no popcnt
 * instruction) and is what the sweep, the held frees and the statistics
 * count bitmap words with: a wrong count there shows up much later, as
 * heap statistics that drift or a span freed while it still holds
 * objects.  It is checked against a bit-by-bit count on the edge values
 * and on pseudo-random words of every density.
 */
#include <check.h>
#include <stdint.h>

#include "gctest.h"
#include "runtime/compiler.h"

static unsigned count_bits_slowly(uint64_t x) {
  unsigned n = 0;
  for (; x; x >>= 1) n += (unsigned)(x & 1);
  return n;
}

static uint64_t xorshift(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

START_TEST(test_popcount_matches_a_bit_by_bit_count) {
  static const uint64_t edges[] = {0, 1, 2, 3, 0x8000000000000000ull, 0xffffffffffffffffull,
                                   0x5555555555555555ull, 0xaaaaaaaaaaaaaaaaull, 0x00000000ffffffffull,
                                   0xffffffff00000000ull, 0x0101010101010101ull, 0x7fffffffffffffffull};
  for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++)
    ck_assert_uint_eq(mgc_popcount64(edges[i]), count_bits_slowly(edges[i]));
  for (unsigned k = 0; k <= 64; k++) {
    uint64_t low = k == 64 ? ~0ull : (1ull << k) - 1;
    ck_assert_uint_eq(mgc_popcount64(low), k);
    ck_assert_uint_eq(mgc_popcount64(~low), 64 - k);
  }
  uint64_t s = 0x9e3779b97f4a7c15ull;
  for (int i = 0; i < 200000; i++) {
    /* AND/OR of several draws: sparse and dense words, not only half full. */
    uint64_t a = xorshift(&s), b = xorshift(&s), c = xorshift(&s);
    uint64_t words[] = {a, a & b, a & b & c, a | b, a | b | c};
    for (size_t j = 0; j < sizeof(words) / sizeof(words[0]); j++)
      if (mgc_popcount64(words[j]) != count_bits_slowly(words[j]))
        ck_abort_msg("popcount of %#llx: %u, expected %u", (unsigned long long)words[j],
                     mgc_popcount64(words[j]), count_bits_slowly(words[j]));
  }
}
END_TEST

int main(void) {
  Suite *suite = suite_create("bits");
  TCase *tc = tcase_create("popcount");
  tcase_add_test(tc, test_popcount_matches_a_bit_by_bit_count);
  suite_add_tcase(suite, tc);
  return run_suite(suite);
}
