/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * Maglev consistent hashing (Eisenbud et al., "Maglev: A Fast and Reliable
 * Software Network Load Balancer", NSDI 2016), with weights the way Katran
 * fills its table.
 *
 * A lookup table of a prime number M of entries maps a flow's hash to a
 * backend. Every backend has its own permutation of the M entries, derived
 * from two hashes of its key (its IPv4 address): offset = h1 % M and
 * skip = h2 % (M - 1) + 1, entry j = (offset + j * skip) % M. Backends take
 * turns claiming the next free entry of their permutation until the table is
 * full. With weights, a backend's turn comes in proportion to its weight: in
 * each round every backend adds its weight to a counter and claims one entry
 * each time the counter reaches the largest weight. So:
 *
 *  - a backend gets about M * weight / (sum of weights) entries; equal
 *    weights give counts that differ by at most one;
 *  - adding or removing a backend changes few entries of the others, because
 *    every backend keeps walking its own fixed permutation;
 *  - the table depends only on the backends' keys, weights and order.
 *
 * The table is built when the configuration changes, never per packet, and
 * the kernel publishes it with RCU. This file and common/maglev.c build both
 * in the kernel (mbstate.ko) and in userspace (tests/unit/test_maglev.c).
 */
#ifndef _MBVISOR_MAGLEV_H
#define _MBVISOR_MAGLEV_H

#ifdef __KERNEL__
#include <linux/types.h>
#else
#include <linux/types.h>
#include <stddef.h>
#endif

/* The table size mbvisor uses: a prime, as Cilium's default. */
#define MB_MAGLEV_SIZE		16381
/* Backends one table can hold (entries are 16-bit indices). */
#define MB_MAGLEV_MAX_BACKENDS	256
/* An entry that maps to no backend: every weight is zero. */
#define MB_MAGLEV_NONE		0xffff

struct mb_maglev_backend {
	__u32 key;	/* identity, e.g. the IPv4 address in host order */
	__u32 weight;	/* 0: takes no entry */
};

/* Work space of mb_maglev_build(), provided by the caller. */
struct mb_maglev_scratch {
	__u32 pos[MB_MAGLEV_MAX_BACKENDS];
	__u32 skip[MB_MAGLEV_MAX_BACKENDS];
	__u32 credit[MB_MAGLEV_MAX_BACKENDS];
};

/*
 * Fills @table (@size entries; @size a prime of at least 2 and at most
 * 2^20) with indices into @be[0..n). Entries are MB_MAGLEV_NONE only if no
 * backend has a weight. Returns 0, or -1 if @size is not a prime in range,
 * n > MB_MAGLEV_MAX_BACKENDS, a weight is 2^31 or more, or two backends
 * have the same key.
 */
int mb_maglev_build(__u16 *table, __u32 size,
		    const struct mb_maglev_backend *be, __u32 n,
		    struct mb_maglev_scratch *scratch);

/* The entry a flow hash selects: an even split of the 32-bit hash space. */
static inline __u16 mb_maglev_lookup(const __u16 *table, __u32 size,
				     __u32 hash)
{
	return table[(__u32)(((__u64)hash * size) >> 32)];
}

#endif /* _MBVISOR_MAGLEV_H */
