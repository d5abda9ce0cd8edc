// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Unit tests of the Maglev table builder (common/maglev.c), the code
 * mbstate.ko builds its load-balancer tables with: shares by weight, minimal
 * disruption when a backend goes or comes, determinism, refusals.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <mbvisor/maglev.h>

#define M MB_MAGLEV_SIZE

static __u16 t1[M], t2[M];
static struct mb_maglev_scratch scratch;

/* A fixed pseudo-random sequence (xorshift32), so that failures repeat. */
static uint32_t rnd_state = 2463534242U;

static uint32_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 17;
	rnd_state ^= rnd_state << 5;
	return rnd_state;
}

/* n distinct keys in 10.0.0.0/8, weight 1 */
static void backends(struct mb_maglev_backend *be, unsigned int n)
{
	unsigned int i, j;

	for (i = 0; i < n; i++) {
		do {
			be[i].key = 0x0a000000U | (rnd() & 0xffffff);
			for (j = 0; j < i && be[j].key != be[i].key; j++)
				;
		} while (j < i);
		be[i].weight = 1;
	}
}

static void count(const __u16 *t, unsigned int *c, unsigned int n)
{
	unsigned int e;

	memset(c, 0, n * sizeof(*c));
	for (e = 0; e < M; e++) {
		assert_true(t[e] < n);
		c[t[e]]++;
	}
}

static void test_empty(void **state)
{
	struct mb_maglev_backend be[2] = { { 1, 0 }, { 2, 0 } };
	unsigned int e;

	(void)state;
	assert_int_equal(mb_maglev_build(t1, M, NULL, 0, &scratch), 0);
	for (e = 0; e < M; e++)
		assert_int_equal(t1[e], MB_MAGLEV_NONE);
	/* only zero weights: nothing to choose either */
	assert_int_equal(mb_maglev_build(t1, M, be, 2, &scratch), 0);
	for (e = 0; e < M; e++)
		assert_int_equal(t1[e], MB_MAGLEV_NONE);
}

static void test_one(void **state)
{
	struct mb_maglev_backend be = { 0x0a000009, 5 };
	unsigned int e;

	(void)state;
	assert_int_equal(mb_maglev_build(t1, M, &be, 1, &scratch), 0);
	for (e = 0; e < M; e++)
		assert_int_equal(t1[e], 0);
}

/* Equal weights: every count is floor or ceil of M / n. */
static void test_equal_shares(void **state)
{
	struct mb_maglev_backend be[64];
	unsigned int c[64], n, i;

	(void)state;
	for (n = 2; n <= 64; n++) {
		backends(be, n);
		assert_int_equal(mb_maglev_build(t1, M, be, n, &scratch), 0);
		count(t1, c, n);
		for (i = 0; i < n; i++) {
			assert_true(c[i] >= M / n);
			assert_true(c[i] <= M / n + 1);
		}
	}
}

/* Weights: every count within 2 entries of M * w / sum(w). */
static void test_weighted_shares(void **state)
{
	static const __u32 w[][4] = {
		{ 1, 2, 3, 0 }, { 1, 1000, 7, 0 }, { 3, 1, 0, 0 },
		{ 10, 10, 10, 1 }, { 0, 5, 0, 5 }, { 1000, 999, 1, 500 },
	};
	struct mb_maglev_backend be[4];
	unsigned int c[4], k, i;

	(void)state;
	for (k = 0; k < sizeof(w) / sizeof(w[0]); k++) {
		double sum = 0;

		backends(be, 4);
		for (i = 0; i < 4; i++) {
			be[i].weight = w[k][i];
			sum += w[k][i];
		}
		assert_int_equal(mb_maglev_build(t1, M, be, 4, &scratch), 0);
		count(t1, c, 4);
		for (i = 0; i < 4; i++) {
			double want = M * (double)w[k][i] / sum;

			if (!w[k][i])
				assert_int_equal(c[i], 0);
			assert_true(c[i] + 2.0 >= want && c[i] <= want + 2.0);
		}
	}
}

/* Random weights 1..1000: shares within 0.1 % of the table. */
static void test_random_weights(void **state)
{
	struct mb_maglev_backend be[64];
	unsigned int c[64], round, n, i;

	(void)state;
	for (round = 0; round < 50; round++) {
		double sum = 0;

		n = 2 + rnd() % 63;
		backends(be, n);
		for (i = 0; i < n; i++) {
			be[i].weight = 1 + rnd() % 1000;
			sum += be[i].weight;
		}
		assert_int_equal(mb_maglev_build(t1, M, be, n, &scratch), 0);
		count(t1, c, n);
		for (i = 0; i < n; i++) {
			double want = M * (double)be[i].weight / sum;

			assert_true(c[i] + 0.001 * M >= want &&
				    c[i] <= want + 0.001 * M);
		}
	}
}

/*
 * Removing one of n backends: its entries go to the others, and at most 3 %
 * of the other entries change hands (Maglev's promise: few, not none; a
 * modulo hash would move about (n-1)/n of them). Measured worst case over
 * these seeds is about 1.8 %.
 */
static void test_remove_disruption(void **state)
{
	struct mb_maglev_backend be[64], rest[64];
	unsigned int round, n, gone, i, e, others, changed;
	int map[64];

	(void)state;
	for (round = 0; round < 100; round++) {
		n = 3 + rnd() % 62;
		backends(be, n);
		for (i = 0; i < n; i++)
			be[i].weight = 1 + (round & 1) * (rnd() % 10);
		gone = rnd() % n;
		for (i = 0, e = 0; i < n; i++) {
			map[i] = i == gone ? -1 : (int)e;
			if (i != gone)
				rest[e++] = be[i];
		}
		assert_int_equal(mb_maglev_build(t1, M, be, n, &scratch), 0);
		assert_int_equal(mb_maglev_build(t2, M, rest, n - 1, &scratch),
				 0);
		others = changed = 0;
		for (e = 0; e < M; e++) {
			assert_int_not_equal(t2[e], MB_MAGLEV_NONE);
			if (t1[e] == gone)
				continue;
			others++;
			changed += map[t1[e]] != t2[e];
		}
		assert_true(changed * 100 <= others * 3);
	}
}

/* Adding a backend: it takes about M / (n + 1) entries, few more move. */
static void test_add_disruption(void **state)
{
	struct mb_maglev_backend be[64];
	unsigned int round, n, e, moved, taken;

	(void)state;
	for (round = 0; round < 100; round++) {
		n = 2 + rnd() % 62;
		backends(be, n + 1);
		assert_int_equal(mb_maglev_build(t1, M, be, n, &scratch), 0);
		assert_int_equal(mb_maglev_build(t2, M, be, n + 1, &scratch),
				 0);
		moved = taken = 0;
		for (e = 0; e < M; e++) {
			moved += t1[e] != t2[e];
			taken += t2[e] == n;
		}
		assert_true(taken >= M / (n + 1) && taken <= M / (n + 1) + 1);
		assert_true(moved - taken <= M * 3 / 100);
	}
}

/* Same input, same table; the table does not depend on anything else. */
static void test_deterministic(void **state)
{
	struct mb_maglev_backend be[10];

	(void)state;
	backends(be, 10);
	be[3].weight = 7;
	assert_int_equal(mb_maglev_build(t1, M, be, 10, &scratch), 0);
	memset(&scratch, 0xa5, sizeof(scratch));
	assert_int_equal(mb_maglev_build(t2, M, be, 10, &scratch), 0);
	assert_memory_equal(t1, t2, sizeof(t1));
}

/* Keys and lookups: the hash space is split evenly over the entries. */
static void test_lookup(void **state)
{
	__u16 t[5] = { 0, 1, 2, 3, 4 };

	(void)state;
	assert_int_equal(mb_maglev_lookup(t, 5, 0), 0);
	assert_int_equal(mb_maglev_lookup(t, 5, 0xffffffffU), 4);
	assert_int_equal(mb_maglev_lookup(t, 5, 0x33333333U), 0);
	assert_int_equal(mb_maglev_lookup(t, 5, 0x33333334U), 1);
	assert_int_equal(mb_maglev_lookup(t, 5, 0x80000000U), 2);
}

static void test_small_prime(void **state)
{
	struct mb_maglev_backend be[3] = { { 1, 1 }, { 2, 1 }, { 3, 1 } };
	__u16 t[7];
	unsigned int c[3] = { 0 }, e;

	(void)state;
	assert_int_equal(mb_maglev_build(t, 7, be, 3, &scratch), 0);
	for (e = 0; e < 7; e++) {
		assert_true(t[e] < 3);
		c[t[e]]++;
	}
	assert_int_equal(c[0] + c[1] + c[2], 7);
	assert_true(c[0] >= 2 && c[1] >= 2 && c[2] >= 2);
}

static void test_refusals(void **state)
{
	struct mb_maglev_backend be[3] = { { 1, 1 }, { 2, 1 }, { 1, 1 } };
	static struct mb_maglev_backend many[MB_MAGLEV_MAX_BACKENDS + 1];
	unsigned int i;

	(void)state;
	assert_int_equal(mb_maglev_build(t1, 16383, be, 2, &scratch), -1);
	assert_int_equal(mb_maglev_build(t1, 1, be, 2, &scratch), -1);
	assert_int_equal(mb_maglev_build(t1, 0, be, 2, &scratch), -1);
	assert_int_equal(mb_maglev_build(t1, M, be, 3, &scratch), -1);
	be[2].key = 3;
	be[2].weight = 0x80000000U;
	assert_int_equal(mb_maglev_build(t1, M, be, 3, &scratch), -1);
	for (i = 0; i <= MB_MAGLEV_MAX_BACKENDS; i++) {
		many[i].key = i + 1;
		many[i].weight = 1;
	}
	assert_int_equal(mb_maglev_build(t1, M, many,
					 MB_MAGLEV_MAX_BACKENDS + 1, &scratch),
			 -1);
	assert_int_equal(mb_maglev_build(t1, M, many, MB_MAGLEV_MAX_BACKENDS,
					 &scratch), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_one),
		cmocka_unit_test(test_equal_shares),
		cmocka_unit_test(test_weighted_shares),
		cmocka_unit_test(test_random_weights),
		cmocka_unit_test(test_remove_disruption),
		cmocka_unit_test(test_add_disruption),
		cmocka_unit_test(test_deterministic),
		cmocka_unit_test(test_lookup),
		cmocka_unit_test(test_small_prime),
		cmocka_unit_test(test_refusals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
