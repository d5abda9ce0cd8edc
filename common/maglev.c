// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Building Maglev lookup tables (see include/mbvisor/maglev.h). Built into
 * mbstate.ko (through mbstate/maglev.c) and into the unit tests.
 */
#include <mbvisor/maglev.h>

/* Bijective 32-bit mixer (Chris Wellons' lowbias32). */
static __u32 mb_maglev_mix(__u32 x)
{
	x ^= x >> 16;
	x *= 0x7feb352dU;
	x ^= x >> 15;
	x *= 0x846ca68bU;
	x ^= x >> 16;
	return x;
}

static int mb_maglev_is_prime(__u32 n)
{
	__u32 d;

	if (n < 2)
		return 0;
	for (d = 2; d <= n / d; d++)
		if (n % d == 0)
			return 0;
	return 1;
}

int mb_maglev_build(__u16 *table, __u32 size,
		    const struct mb_maglev_backend *be, __u32 n,
		    struct mb_maglev_scratch *s)
{
	__u32 i, j, filled = 0, max_w = 0;

	if (size > (1U << 20) || !mb_maglev_is_prime(size) ||
	    n > MB_MAGLEV_MAX_BACKENDS)
		return -1;
	for (i = 0; i < n; i++) {
		for (j = 0; j < i; j++)
			if (be[j].key == be[i].key)
				return -1;
		if (be[i].weight > 0x7fffffffU)
			return -1;
		if (be[i].weight > max_w)
			max_w = be[i].weight;
		s->pos[i] = mb_maglev_mix(be[i].key ^ 0x9e3779b9U) % size;
		s->skip[i] = mb_maglev_mix(be[i].key ^ 0x85ebca6bU) %
			     (size - 1) + 1;
		s->credit[i] = 0;
	}
	for (i = 0; i < size; i++)
		table[i] = MB_MAGLEV_NONE;
	if (!max_w)
		return 0;

	/*
	 * Each round claims at least one entry (the heaviest backend's turn
	 * comes every round), so there are at most @size rounds. A backend's
	 * permutation visits every entry once in @size steps (@size is prime
	 * and 0 < skip < size), so the inner search ends on a free entry.
	 */
	for (;;) {
		for (i = 0; i < n; i++) {
			__u32 c;

			if (!be[i].weight)
				continue;
			s->credit[i] += be[i].weight;
			if (s->credit[i] < max_w)
				continue;
			s->credit[i] -= max_w;
			do {
				c = s->pos[i];
				s->pos[i] += s->skip[i];
				if (s->pos[i] >= size)
					s->pos[i] -= size;
			} while (table[c] != MB_MAGLEV_NONE);
			table[c] = (__u16)i;
			if (++filled == size)
				return 0;
		}
	}
}
