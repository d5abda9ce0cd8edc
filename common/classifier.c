// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Building the tuple-space classifier (see include/mbvisor/classifier.h).
 * Built into mbstate.ko (through mbstate/classifier.c) and into userspace.
 */
#ifdef __KERNEL__
#include <linux/kernel.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/sort.h>
/* charged to the requester's memory cgroup, as all of mbstate's state */
#define mbc_zalloc(size)	kvzalloc(size, GFP_KERNEL_ACCOUNT)
#define mbc_release(p)		kvfree(p)
#define mbc_sort(base, n, size, cmp) sort(base, n, size, cmp, NULL)
#define mbc_htonl(x)		cpu_to_be32(x)
#else
#include <arpa/inet.h>
#include <stdlib.h>
#define mbc_zalloc(size)	calloc(1, size)
#define mbc_release(p)		free(p)
#define mbc_sort(base, n, size, cmp) qsort(base, n, size, cmp)
#define mbc_htonl(x)		htonl(x)
#endif

#include <mbvisor/classifier.h>

static __be32 mbc_plen_mask(unsigned int plen)
{
	return mbc_htonl(plen ? ~0U << (32 - plen) : 0);
}

const char *mb_rule_normalize(struct mb_rule *r)
{
	struct mb_rule n = *r;
	const char *why;

	n.valued = n.fields;	/* a rule to add has a value for every field */
	why = mb_rule_check(&n);
	if (why)
		return why;
	memset(&n, 0, sizeof(n));
	n.cls = r->cls;
	n.fields = r->fields;
	n.valued = r->fields;
	switch (r->cls) {
	case MBSTATE_CLASS_IP:
		if (r->fields & MBSTATE_FIELD_S) {
			n.src_plen = r->src_plen;
			n.src_ip = r->src_ip;
			if (r->src_ip & ~mbc_plen_mask(r->src_plen))
				return "source address has bits set past its prefix length";
		}
		if (r->fields & MBSTATE_FIELD_D) {
			n.dst_plen = r->dst_plen;
			n.dst_ip = r->dst_ip;
			if (r->dst_ip & ~mbc_plen_mask(r->dst_plen))
				return "destination address has bits set past its prefix length";
		}
		if (r->fields & MBSTATE_FIELD_T)
			n.tos = r->tos;
		if (r->fields & MBSTATE_FIELD_P)
			n.proto = r->proto;
		break;
	case MBSTATE_CLASS_MAC:
		if (r->fields & MBSTATE_FIELD_S)
			memcpy(n.src_mac, r->src_mac, MB_ETH_ALEN);
		if (r->fields & MBSTATE_FIELD_D)
			memcpy(n.dst_mac, r->dst_mac, MB_ETH_ALEN);
		if (r->fields & MBSTATE_FIELD_P)
			n.ethertype = r->ethertype;
		break;
	case MBSTATE_CLASS_TP:
		if (r->fields & MBSTATE_FIELD_S) {
			n.sport_min = r->sport_min;
			n.sport_max = r->sport_max;
		}
		if (r->fields & MBSTATE_FIELD_D) {
			n.dport_min = r->dport_min;
			n.dport_max = r->dport_max;
		}
		if (r->fields & MBSTATE_FIELD_P)
			n.proto = r->proto;
		break;
	}
	*r = n;
	return NULL;
}

/*
 * Splits [lo, hi] into prefix-aligned blocks: value/mask pairs such that a
 * port p is in the range iff (p & mask) == value for one pair. At most 30.
 */
static unsigned int mbc_range_split(__u16 lo, __u16 hi, __u16 *val, __u16 *msk)
{
	__u32 cur = lo, end = hi;
	unsigned int n = 0;

	while (cur <= end) {
		__u32 size = 1;

		/* grow the block while it stays aligned and inside the range */
		while (size < 0x10000 && !(cur & (size * 2 - 1)) &&
		       cur + size * 2 - 1 <= end)
			size *= 2;
		if (val) {
			val[n] = (__u16)cur;
			msk[n] = (__u16)~(size - 1);
		}
		n++;
		cur += size;
	}
	return n;
}

unsigned int mbc_rule_entries(const struct mb_rule *r)
{
	unsigned int n = 1;

	if (r->cls != MBSTATE_CLASS_TP)
		return 1;
	if (r->fields & MBSTATE_FIELD_S)
		n *= mbc_range_split(r->sport_min, r->sport_max, NULL, NULL);
	if (r->fields & MBSTATE_FIELD_D)
		n *= mbc_range_split(r->dport_min, r->dport_max, NULL, NULL);
	if (!(r->fields & MBSTATE_FIELD_P))
		n *= 2;
	return n;
}

static bool mbc_mac_eq(const __u8 *a, const __u8 *b)
{
	return !memcmp(a, b, MB_ETH_ALEN);
}

bool mb_rule_selects(const struct mb_rule *sel, const struct mb_rule *r)
{
	__u8 v = sel->valued & sel->fields;

	if (r->cls != sel->cls || (r->fields & sel->fields) != sel->fields)
		return false;
	switch (r->cls) {
	case MBSTATE_CLASS_IP:
		if ((v & MBSTATE_FIELD_S) && (r->src_ip != sel->src_ip ||
					      r->src_plen != sel->src_plen))
			return false;
		if ((v & MBSTATE_FIELD_D) && (r->dst_ip != sel->dst_ip ||
					      r->dst_plen != sel->dst_plen))
			return false;
		if ((v & MBSTATE_FIELD_T) && r->tos != sel->tos)
			return false;
		if ((v & MBSTATE_FIELD_P) && r->proto != sel->proto)
			return false;
		return true;
	case MBSTATE_CLASS_MAC:
		if ((v & MBSTATE_FIELD_S) && !mbc_mac_eq(r->src_mac, sel->src_mac))
			return false;
		if ((v & MBSTATE_FIELD_D) && !mbc_mac_eq(r->dst_mac, sel->dst_mac))
			return false;
		if ((v & MBSTATE_FIELD_P) && r->ethertype != sel->ethertype)
			return false;
		return true;
	case MBSTATE_CLASS_TP:
		if ((v & MBSTATE_FIELD_S) && (r->sport_min != sel->sport_min ||
					      r->sport_max != sel->sport_max))
			return false;
		if ((v & MBSTATE_FIELD_D) && (r->dport_min != sel->dport_min ||
					      r->dport_max != sel->dport_max))
			return false;
		if ((v & MBSTATE_FIELD_P) && r->proto != sel->proto)
			return false;
		return true;
	}
	return false;
}

/* One expanded entry while building: its mask, its key, its rule. */
struct mbc_tmp {
	struct mb_key mask;
	struct mb_key key;
	__u32 rule;
};

static int mbc_key_cmp(const struct mb_key *a, const struct mb_key *b)
{
	int i;

	for (i = 0; i < 4; i++)
		if (a->w[i] != b->w[i])
			return a->w[i] < b->w[i] ? -1 : 1;
	return 0;
}

static int mbc_tmp_cmp(const void *a, const void *b)
{
	const struct mbc_tmp *x = a, *y = b;
	int c = mbc_key_cmp(&x->mask, &y->mask);

	if (c)
		return c;
	return x->rule < y->rule ? -1 : x->rule > y->rule;
}

/* Writes the entries of rule @idx into @out; returns how many. */
static unsigned int mbc_expand(const struct mb_rule *r, __u32 idx,
			       struct mbc_tmp *out)
{
	__u16 sv[32], sm[32], dv[32], dm[32];
	unsigned int ns = 1, nd = 1, np = 1, i, j, k, n = 0;
	struct mbc_tmp base;

	memset(&base, 0, sizeof(base));
	base.rule = idx;
	switch (r->cls) {
	case MBSTATE_CLASS_MAC:
		if (r->fields & MBSTATE_FIELD_S) {
			memcpy(base.key.smac, r->src_mac, MB_ETH_ALEN);
			memset(base.mask.smac, 0xff, MB_ETH_ALEN);
		}
		if (r->fields & MBSTATE_FIELD_D) {
			memcpy(base.key.dmac, r->dst_mac, MB_ETH_ALEN);
			memset(base.mask.dmac, 0xff, MB_ETH_ALEN);
		}
		if (r->fields & MBSTATE_FIELD_P) {
			base.key.ethertype = r->ethertype;
			base.mask.ethertype = 0xffff;
		}
		out[0] = base;
		return 1;
	case MBSTATE_CLASS_IP:
		base.key.ethertype = MB_ETH_P_IP;
		base.mask.ethertype = 0xffff;
		if (r->fields & MBSTATE_FIELD_S) {
			base.mask.saddr = mbc_plen_mask(r->src_plen);
			base.key.saddr = r->src_ip & base.mask.saddr;
		}
		if (r->fields & MBSTATE_FIELD_D) {
			base.mask.daddr = mbc_plen_mask(r->dst_plen);
			base.key.daddr = r->dst_ip & base.mask.daddr;
		}
		if (r->fields & MBSTATE_FIELD_T) {
			base.key.tos = r->tos;
			base.mask.tos = 0xff;
		}
		if (r->fields & MBSTATE_FIELD_P) {
			base.key.proto = r->proto;
			base.mask.proto = 0xff;
		}
		out[0] = base;
		return 1;
	case MBSTATE_CLASS_TP:
		break;
	default:
		return 0;
	}

	base.key.ethertype = MB_ETH_P_IP;
	base.mask.ethertype = 0xffff;
	base.key.l4 = 1;
	base.mask.l4 = 0xff;
	base.mask.proto = 0xff;
	if (r->fields & MBSTATE_FIELD_S)
		ns = mbc_range_split(r->sport_min, r->sport_max, sv, sm);
	if (r->fields & MBSTATE_FIELD_D)
		nd = mbc_range_split(r->dport_min, r->dport_max, dv, dm);
	if (!(r->fields & MBSTATE_FIELD_P))
		np = 2;
	for (i = 0; i < ns; i++) {
		for (j = 0; j < nd; j++) {
			for (k = 0; k < np; k++) {
				struct mbc_tmp *e = &out[n++];

				*e = base;
				if (r->fields & MBSTATE_FIELD_S) {
					e->key.sport = sv[i];
					e->mask.sport = sm[i];
				}
				if (r->fields & MBSTATE_FIELD_D) {
					e->key.dport = dv[j];
					e->mask.dport = dm[j];
				}
				if (r->fields & MBSTATE_FIELD_P)
					e->key.proto = r->proto;
				else
					e->key.proto = k ? MB_IPPROTO_UDP :
							   MB_IPPROTO_TCP;
			}
		}
	}
	return n;
}

static __u32 mbc_pow2(__u32 n)
{
	__u32 p = 1;

	while (p < n)
		p <<= 1;
	return p;
}

struct mbc_table *mbc_build(const struct mb_rule *const *rules, __u32 n,
			    __u32 seed, const struct mbc_limits *lim,
			    enum mbc_over *over)
{
	struct mbc_tmp *tmp;
	struct mbc_table *t = NULL;
	__u64 total = 0;
	__u32 i, e, s, n_sub = 0, n_buckets = 0;
	size_t size;

	*over = MBC_OVER_NONE;
	for (i = 0; i < n; i++)
		total += mbc_rule_entries(rules[i]);
	if (total > lim->max_entries) {
		*over = MBC_OVER_ENTRIES;
		return NULL;
	}

	tmp = mbc_zalloc(sizeof(*tmp) * (total ? total : 1));
	if (!tmp)
		return NULL;
	for (i = 0, e = 0; i < n; i++)
		e += mbc_expand(rules[i], i, tmp + e);
	mbc_sort(tmp, total, sizeof(*tmp), mbc_tmp_cmp);

	/* count subtables and their buckets (load factor at most 1) */
	for (e = 0; e < total; e = i) {
		for (i = e + 1; i < total && !mbc_key_cmp(&tmp[i].mask, &tmp[e].mask); i++)
			;
		n_sub++;
		n_buckets += mbc_pow2(i - e);
	}
	if (n_sub > lim->max_subtables) {
		*over = MBC_OVER_SUBTABLES;
		goto out;
	}

	size = sizeof(*t) + n_sub * sizeof(struct mbc_subtable) +
	       (size_t)total * sizeof(struct mbc_entry) +
	       (size_t)n_buckets * sizeof(__u32);
	t = mbc_zalloc(size);
	if (!t)
		goto out;
	t->n_subtables = n_sub;
	t->n_entries = total;
	t->n_buckets = n_buckets;
	t->seed = seed;
	t->subtables = (struct mbc_subtable *)(t + 1);
	t->entries = (struct mbc_entry *)(t->subtables + n_sub);
	t->buckets = (__u32 *)(t->entries + total);

	n_buckets = 0;
	for (e = 0, s = 0; e < total; e = i, s++) {
		struct mbc_subtable *st = &t->subtables[s];
		__u32 j;

		for (i = e + 1; i < total && !mbc_key_cmp(&tmp[i].mask, &tmp[e].mask); i++)
			;
		st->mask = tmp[e].mask;
		st->bucket_off = n_buckets;
		st->bucket_mask = mbc_pow2(i - e) - 1;
		n_buckets += st->bucket_mask + 1;
		/* insert in reverse so that each chain keeps rule order */
		for (j = i; j-- > e;) {
			struct mbc_entry *ent = &t->entries[j];
			__u32 *head = &t->buckets[st->bucket_off +
				(mbc_hash(&tmp[j].key, seed) & st->bucket_mask)];

			ent->key = tmp[j].key;
			ent->rule = tmp[j].rule;
			ent->next = *head;
			*head = j + 1;
		}
	}
out:
	mbc_release(tmp);
	return t;
}

void mbc_free(struct mbc_table *t)
{
	mbc_release(t);
}

struct mbc_buf {
	const __u8 *p;
	unsigned int len;
};

static const void *mbc_buf_hdr(const void *ctx, unsigned int off,
			       unsigned int len, void *buf)
{
	const struct mbc_buf *b = ctx;

	(void)buf;
	if (off > b->len || len > b->len - off)
		return NULL;
	return b->p + off;
}

void mb_key_from_frame(struct mb_key *key, const void *frame, unsigned int len)
{
	const __u8 *f = frame;
	struct mbc_buf b;

	memset(key, 0, sizeof(*key));
	if (len < 14)
		return;
	memcpy(key->dmac, f, MB_ETH_ALEN);
	memcpy(key->smac, f + 6, MB_ETH_ALEN);
	key->ethertype = (__u16)(f[12] << 8 | f[13]);
	b.p = f + 14;
	b.len = len - 14;
	mb_key_parse_l3(key, mbc_buf_hdr, &b);
}
