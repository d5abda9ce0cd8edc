/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * The firewall classifier: tuple space search, as Open vSwitch's classifier
 * does it. Every rule becomes one or more (mask, masked key) entries; the
 * entries that share a mask form a subtable, a hash table of masked keys. A
 * lookup masks the frame's key once per subtable and probes one bucket, so
 * its cost grows with the number of distinct masks, not with the number of
 * rules. Port ranges are expanded into prefix-masked ports (a 16-bit range
 * needs at most 30 of them), and a T rule without a protocol into one entry
 * for TCP and one for UDP.
 *
 * A table is built once from a rule array and never changed: the kernel
 * publishes a new table with rcu_assign_pointer() and frees the old one after
 * a grace period, so every frame sees either the old or the new rule set.
 *
 * This file and common/classifier.c build both in the kernel (mbstate.ko,
 * mbfw.ko) and in userspace (unit tests, fuzzing, benchmarks).
 */
#ifndef _MBVISOR_CLASSIFIER_H
#define _MBVISOR_CLASSIFIER_H

#include <mbvisor/rule.h>

#ifdef __KERNEL__
#include <linux/types.h>
#include <linux/string.h>
#else
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#endif

/* What the classifier looks at in a frame; 32 bytes, compared as 4 words. */
struct mb_key {
	union {
		struct {
			__u8 dmac[MB_ETH_ALEN];
			__u8 smac[MB_ETH_ALEN];
			__u16 ethertype;	/* host order */
			__u8 tos;
			__u8 proto;
			__be32 saddr;
			__be32 daddr;
			__u16 sport;		/* host order */
			__u16 dport;
			__u8 l4;		/* 1: sport/dport are valid */
			__u8 pad[3];
		};
		__u64 w[4];
	};
};

#define MB_ETH_P_IP	0x0800
#define MB_IPPROTO_TCP	6
#define MB_IPPROTO_UDP	17

/* Entries one rule may expand to, and its worst case (30 * 30 * 2). */
#define MBC_MAX_RULE_ENTRIES	1800

struct mbc_subtable {
	struct mb_key mask;
	__u32 bucket_mask;	/* buckets - 1 */
	__u32 bucket_off;	/* first bucket in mbc_table.buckets */
};

struct mbc_entry {
	struct mb_key key;	/* already masked with its subtable's mask */
	__u32 next;		/* index + 1 of the next entry in the bucket */
	__u32 rule;		/* index of the rule in the array built from */
};

struct mbc_table {
	__u32 n_subtables;
	__u32 n_entries;
	__u32 n_buckets;
	__u32 seed;
	struct mbc_subtable *subtables;
	__u32 *buckets;		/* index + 1 of the first entry, 0: empty */
	struct mbc_entry *entries;
	/* one allocation: the arrays follow the header */
};

static inline __u32 mbc_hash(const struct mb_key *k, __u32 seed)
{
	__u64 h = seed ^ 0x9e3779b97f4a7c15ULL;
	int i;

	for (i = 0; i < 4; i++) {
		h ^= k->w[i];
		h *= 0xff51afd7ed558ccdULL;
		h ^= h >> 33;
	}
	return (__u32)(h ^ (h >> 29));
}

/*
 * Returns the index of a rule that matches @key, or -1. Runs on the packet
 * path under rcu_read_lock(): no allocation, no lock, bounded by the table.
 */
static inline int mbc_lookup(const struct mbc_table *t, const struct mb_key *key)
{
	__u32 s;

	for (s = 0; s < t->n_subtables; s++) {
		const struct mbc_subtable *st = &t->subtables[s];
		struct mb_key m;
		__u32 idx;
		int i;

		for (i = 0; i < 4; i++)
			m.w[i] = key->w[i] & st->mask.w[i];
		idx = t->buckets[st->bucket_off +
				 (mbc_hash(&m, t->seed) & st->bucket_mask)];
		while (idx) {
			const struct mbc_entry *e = &t->entries[idx - 1];

			if (e->key.w[0] == m.w[0] && e->key.w[1] == m.w[1] &&
			    e->key.w[2] == m.w[2] && e->key.w[3] == m.w[3])
				return (int)e->rule;
			idx = e->next;
		}
	}
	return -1;
}

/*
 * Fills @key from a frame, through @hdr, which returns a pointer to @len
 * bytes at offset @off of the frame's network header (copied into @buf if
 * need be) or NULL past the end: skb_header_pointer() in the kernel, a
 * plain buffer in userspace. MACs and @ethertype come from the caller.
 * Only IPv4 is looked into; other EtherTypes leave the L3/L4 fields zero.
 */
typedef const void *(*mb_hdr_fn)(const void *ctx, unsigned int off,
				 unsigned int len, void *buf);

static inline void mb_key_parse_l3(struct mb_key *key, mb_hdr_fn hdr,
				   const void *ctx)
{
	__u8 ipbuf[20], l4buf[4];
	const __u8 *ip, *l4;
	unsigned int ihl;
	__u16 frag;

	if (key->ethertype != MB_ETH_P_IP)
		return;
	ip = hdr(ctx, 0, sizeof(ipbuf), ipbuf);
	if (!ip || (ip[0] >> 4) != 4)
		return;
	ihl = (ip[0] & 0xf) * 4u;
	if (ihl < 20)
		return;
	key->tos = ip[1];
	key->proto = ip[9];
	memcpy(&key->saddr, ip + 12, 4);
	memcpy(&key->daddr, ip + 16, 4);
	frag = (__u16)((ip[6] & 0x1f) << 8 | ip[7]);
	if (frag || (key->proto != MB_IPPROTO_TCP &&
		     key->proto != MB_IPPROTO_UDP))
		return;
	l4 = hdr(ctx, ihl, sizeof(l4buf), l4buf);
	if (!l4)
		return;
	key->sport = (__u16)(l4[0] << 8 | l4[1]);
	key->dport = (__u16)(l4[2] << 8 | l4[3]);
	key->l4 = 1;
}

/* Userspace and tests: a key from a whole Ethernet frame in a buffer. */
void mb_key_from_frame(struct mb_key *key, const void *frame, unsigned int len);

/* Normalise a rule (unused values zero, valued = fields) and check it. */
const char *mb_rule_normalize(struct mb_rule *r);

/* Number of classifier entries @r expands to (1..MBC_MAX_RULE_ENTRIES). */
unsigned int mbc_rule_entries(const struct mb_rule *r);

/* The semantics of D: does selector @sel pick rule @r? */
bool mb_rule_selects(const struct mb_rule *sel, const struct mb_rule *r);

/*
 * Bounds on one table. Memory grows with the entries; the cost of a lookup
 * grows with the subtables (one masked hash probe each), and distinct
 * masks are what a hostile rule set multiplies ("tuple space explosion",
 * docs/SECURITY.md W1): one T rule with two full port ranges alone needs
 * 225 of them.
 */
struct mbc_limits {
	__u32 max_entries;
	__u32 max_subtables;
};

enum mbc_over {
	MBC_OVER_NONE,
	MBC_OVER_ENTRIES,
	MBC_OVER_SUBTABLES,
};

/*
 * Builds a table for @n rules. Returns NULL on allocation failure (then
 * *@over is MBC_OVER_NONE), or if the table would pass a bound of @lim
 * (then *@over says which).
 */
struct mbc_table *mbc_build(const struct mb_rule *const *rules, __u32 n,
			    __u32 seed, const struct mbc_limits *lim,
			    enum mbc_over *over);
void mbc_free(struct mbc_table *t);

#endif /* _MBVISOR_CLASSIFIER_H */
