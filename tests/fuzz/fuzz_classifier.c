// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * libFuzzer target: the firewall classifier (common/classifier.c, the code
 * mbstate.ko builds its tables with and mbfw.ko looks frames up with),
 * checked against the naive matcher of tests/naive_classifier.h.
 *
 * Input (every part may be cut short; what is missing is left out):
 *
 *   byte 0        number of rule records, modulo MAX_RULES + 1
 *   bytes 1-4     hash seed of the table
 *   RULE_REC bytes per rule record (decode_rule() below), raw enough that
 *                 invalid rules occur, with flags that make valid ones easy
 *   the rest      frames: one length byte, then that many bytes
 *
 * Checks:
 *  - mb_rule_normalize() accepts exactly the rules naive_rule_valid() does,
 *    and is idempotent; mbc_rule_entries() is 1..MBC_MAX_RULE_ENTRIES;
 *  - mbc_build() over the valid rules refuses (with a reason) exactly when
 *    their entries exceed the limit, and otherwise holds all of them; with
 *    max_subtables one short of the subtables it built, it refuses;
 *  - for every frame (in a heap buffer of exactly its length):
 *    mbc_lookup() of mb_key_from_frame() returns a rule that the naive
 *    matcher says matches (checked on the rule as decoded, before it was
 *    normalized), or -1 and then no rule matches;
 *  - the same for one frame per valid rule built to match it (so every run
 *    checks the hit path, not only when the fuzzer finds a match);
 *  - mb_rule_selects(), the selection of D, agrees with naive_selects() for
 *    every pair of valid rules, the first one made a selector by keeping
 *    the values of the fields that the high nibble of its flags names.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbvisor/classifier.h>
#include "../naive_classifier.h"

#include "fuzz.h"

#define MAX_RULES	16
#define RULE_REC	38
/* Small enough to be reached by a few wide T rules (1800 entries each). */
#define MAX_ENTRIES	4000

/* Flags of a rule record. */
#define F_HOST_BITS	0x01	/* keep address bits past the prefix */
#define F_RAW_PORTS	0x02	/* keep ranges as given, low > high too */
#define F_RAW_PAD	0x04	/* copy byte 7 into the pad bytes */
/* flags >> 4: as a selector, the fields that keep their value */

struct input {
	const uint8_t *p;
	size_t left;
};

static const uint8_t *take(struct input *in, size_t n)
{
	const uint8_t *p = in->p;

	if (in->left < n)
		return NULL;
	in->p += n;
	in->left -= n;
	return p;
}

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/*
 *  0 class & 3    1 fields & 0x1f   2 flags          3 tos
 *  4 proto        5 src_plen % 34   6 dst_plen % 34  7 pad
 *  8 ethertype (2) 10 src_mac (6)   16 dst_mac (6)
 * 22 src_ip (4)   26 dst_ip (4)
 * 30 sport_min, sport_max, dport_min, dport_max (2 each, big endian)
 */
static void decode_rule(const uint8_t *b, struct mb_rule *r)
{
	uint8_t flags = b[2];

	memset(r, 0, sizeof(*r));
	r->cls = b[0] & 3;
	r->fields = b[1] & 0x1f;
	r->tos = b[3];
	r->proto = b[4];
	r->src_plen = b[5] % 34;
	r->dst_plen = b[6] % 34;
	if (flags & F_RAW_PAD)
		r->pad0 = r->pad1[0] = r->pad1[1] = b[7];
	r->ethertype = be16(b + 8);
	memcpy(r->src_mac, b + 10, 6);
	memcpy(r->dst_mac, b + 16, 6);
	memcpy(&r->src_ip, b + 22, 4);
	memcpy(&r->dst_ip, b + 26, 4);
	if (!(flags & F_HOST_BITS)) {
		if (r->src_plen <= 32)
			r->src_ip &= naive_netmask(r->src_plen);
		if (r->dst_plen <= 32)
			r->dst_ip &= naive_netmask(r->dst_plen);
	}
	r->sport_min = be16(b + 30);
	r->sport_max = be16(b + 32);
	r->dport_min = be16(b + 34);
	r->dport_max = be16(b + 36);
	if (!(flags & F_RAW_PORTS)) {
		uint16_t t;

		if (r->sport_min > r->sport_max) {
			t = r->sport_min;
			r->sport_min = r->sport_max;
			r->sport_max = t;
		}
		if (r->dport_min > r->dport_max) {
			t = r->dport_min;
			r->dport_min = r->dport_max;
			r->dport_max = t;
		}
	}
}

/* Looks up one frame, copied into a heap buffer of exactly @len bytes. */
static void classify(const struct mbc_table *t, const struct mb_rule *orig,
		     unsigned int n, const uint8_t *frame, size_t len,
		     int must_hit)
{
	uint8_t *copy = malloc(len ? len : 1);
	struct mb_key key;
	unsigned int i;
	int got, any = 0;

	CHECK(copy);
	if (len)
		memcpy(copy, frame, len);
	mb_key_from_frame(&key, copy, (unsigned int)len);
	free(copy);

	got = mbc_lookup(t, &key);
	for (i = 0; i < n; i++)
		any |= naive_match(&orig[i], &key);
	CHECK(got >= -1 && got < (int)n);
	if (got >= 0)
		CHECK(naive_match(&orig[got], &key));
	else
		CHECK(!any);
	if (must_hit)
		CHECK(got >= 0);
}

/* Puts @v in [lo, hi], keeping what it can of @v. */
static uint16_t in_range(uint16_t v, uint16_t lo, uint16_t hi)
{
	return (uint16_t)(lo + v % ((uint32_t)hi - lo + 1));
}

/*
 * A 64-byte frame that rule @r matches: the rule's values where its mask
 * has a field, @noise (the seed) everywhere else, so that other rules may
 * match it too.
 */
static void frame_for(const struct mb_rule *r, uint32_t noise, uint8_t *f)
{
	uint16_t sport = (uint16_t)noise, dport = (uint16_t)(noise >> 16);
	uint16_t type = MB_ETH_P_IP;
	uint8_t proto = (uint8_t)noise;
	__be32 host = htonl(noise);
	__be32 saddr = host, daddr = ~host;
	unsigned int i;

	for (i = 0; i < 64; i++)
		f[i] = (uint8_t)(noise >> (i % 4 * 8)) ^ (uint8_t)i;
	f[0] &= 0xfe;	/* unicast, as everything the hook hands over */
	switch (r->cls) {
	case MBSTATE_CLASS_MAC:
		if (r->fields & MBSTATE_FIELD_D)
			memcpy(f, r->dst_mac, 6);
		if (r->fields & MBSTATE_FIELD_S)
			memcpy(f + 6, r->src_mac, 6);
		if (r->fields & MBSTATE_FIELD_P)
			type = r->ethertype;
		break;
	case MBSTATE_CLASS_IP:
		if (r->fields & MBSTATE_FIELD_S)
			saddr = r->src_ip | (host & ~naive_netmask(r->src_plen));
		if (r->fields & MBSTATE_FIELD_D)
			daddr = r->dst_ip | (host & ~naive_netmask(r->dst_plen));
		if (r->fields & MBSTATE_FIELD_T)
			f[15] = r->tos;
		if (r->fields & MBSTATE_FIELD_P)
			proto = r->proto;
		break;
	case MBSTATE_CLASS_TP:
		proto = noise & 0x100 ? MB_IPPROTO_UDP : MB_IPPROTO_TCP;
		if (r->fields & MBSTATE_FIELD_P)
			proto = r->proto;
		if (r->fields & MBSTATE_FIELD_S)
			sport = in_range(sport, r->sport_min, r->sport_max);
		if (r->fields & MBSTATE_FIELD_D)
			dport = in_range(dport, r->dport_min, r->dport_max);
		break;
	}
	f[12] = (uint8_t)(type >> 8);
	f[13] = (uint8_t)type;
	f[14] = 0x45;		/* IPv4, no options */
	f[20] &= 0xe0;		/* fragment offset 0 */
	f[21] = 0;
	f[23] = proto;
	memcpy(f + 26, &saddr, 4);
	memcpy(f + 30, &daddr, 4);
	f[34] = (uint8_t)(sport >> 8);
	f[35] = (uint8_t)sport;
	f[36] = (uint8_t)(dport >> 8);
	f[37] = (uint8_t)dport;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mb_rule orig[MAX_RULES], norm[MAX_RULES];
	uint8_t sel_valued[MAX_RULES];
	const struct mb_rule *ptr[MAX_RULES];
	struct input in = { data, size };
	unsigned int want, n = 0, i;
	const uint8_t *b, *frame;
	struct mbc_table *t;
	struct mbc_limits lim = { MAX_ENTRIES, UINT32_MAX };
	uint64_t total = 0;
	enum mbc_over over;
	uint32_t seed;

	if (!(b = take(&in, 5)))
		return 0;
	want = b[0] % (MAX_RULES + 1);
	memcpy(&seed, b + 1, 4);

	for (i = 0; i < want && (b = take(&in, RULE_REC)); i++) {
		struct mb_rule r, again;
		int valid;

		decode_rule(b, &r);
		valid = naive_rule_valid(&r);
		again = r;
		CHECK(valid == !mb_rule_normalize(&again));
		if (!valid)
			continue;
		/* normalizing a normalized rule changes nothing */
		norm[n] = again;
		CHECK(!mb_rule_normalize(&again));
		CHECK(!memcmp(&again, &norm[n], sizeof(again)));
		CHECK(norm[n].valued == norm[n].fields);
		CHECK(mbc_rule_entries(&norm[n]) >= 1 &&
		      mbc_rule_entries(&norm[n]) <= MBC_MAX_RULE_ENTRIES);
		total += mbc_rule_entries(&norm[n]);
		orig[n] = r;
		sel_valued[n] = (uint8_t)(b[2] >> 4);
		ptr[n] = &norm[n];
		n++;
	}

	for (i = 0; i < n; i++) {
		struct mb_rule sel = norm[i];
		unsigned int j;

		sel.valued &= sel_valued[i];
		for (j = 0; j < n; j++)
			CHECK(mb_rule_selects(&sel, &norm[j]) ==
			      !!naive_selects(&sel, &norm[j]));
		CHECK(mb_rule_selects(&norm[i], &norm[i]));
	}

	t = mbc_build(ptr, n, seed, &lim, &over);
	if (total > MAX_ENTRIES) {
		CHECK(!t && over == MBC_OVER_ENTRIES);
		return 0;
	}
	CHECK(t && over == MBC_OVER_NONE);
	CHECK(t->n_entries == total);
	CHECK(t->n_subtables <= t->n_entries);
	if (t->n_subtables) {
		/* one subtable short of what it needs: refused, and said why */
		lim.max_subtables = t->n_subtables - 1;
		CHECK(!mbc_build(ptr, n, seed, &lim, &over) &&
		      over == MBC_OVER_SUBTABLES);
	}

	for (i = 0; i < n; i++) {
		struct mb_key k;
		uint8_t f[64];

		/* a frame built for rule i: a drop is certain */
		frame_for(&orig[i], seed + i, f);
		mb_key_from_frame(&k, f, sizeof(f));
		CHECK(naive_match(&orig[i], &k));
		classify(t, orig, n, f, sizeof(f), 1);
	}

	while ((b = take(&in, 1))) {
		size_t len = *b < in.left ? *b : in.left;

		frame = take(&in, len);
		classify(t, orig, n, frame, len, 0);
	}
	mbc_free(t);
	return 0;
}
