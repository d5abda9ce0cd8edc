// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Unit tests of the firewall classifier (common/classifier.c), the same code
 * mbstate.ko builds its tables with. Besides examples, a differential test
 * checks the hash-based lookup against a naive matcher written from the
 * semantics in docs/commands.md (tests/naive_classifier.h, shared with the
 * fuzz targets), over random rules and frames.
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <mbvisor/classifier.h>
#include "../naive_classifier.h"

static const uint8_t mac_a[6] = { 0x12, 0x13, 0x14, 0x15, 0x16, 0x17 };
static const uint8_t mac_b[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x01 };
static const uint8_t mac_mb[6] = { 0x52, 0x34, 0x56, 0x00, 0x12, 0x22 };

/* An Ethernet + IPv4 + 4 bytes of ports frame, as the bridge sees it. */
static unsigned int frame_ipv4(uint8_t *f, const uint8_t *src, uint8_t proto,
			       const char *sip, const char *dip,
			       uint16_t sport, uint16_t dport, uint8_t tos,
			       uint16_t frag)
{
	struct in_addr a;

	memset(f, 0, 64);
	memcpy(f, mac_mb, 6);
	memcpy(f + 6, src, 6);
	f[12] = 0x08;
	f[13] = 0x00;
	f[14] = 0x45;
	f[15] = tos;
	f[20] = (uint8_t)(frag >> 8);
	f[21] = (uint8_t)frag;
	f[22] = 64;
	f[23] = proto;
	inet_pton(AF_INET, sip, &a);
	memcpy(f + 26, &a, 4);
	inet_pton(AF_INET, dip, &a);
	memcpy(f + 30, &a, 4);
	f[34] = (uint8_t)(sport >> 8);
	f[35] = (uint8_t)sport;
	f[36] = (uint8_t)(dport >> 8);
	f[37] = (uint8_t)dport;
	return 64;
}

static int lookup_frame(const struct mbc_table *t, const uint8_t *f,
			unsigned int len)
{
	struct mb_key k;

	mb_key_from_frame(&k, f, len);
	return mbc_lookup(t, &k);
}

static struct mbc_table *build(struct mb_rule *rules, unsigned int n)
{
	const struct mb_rule **p = calloc(n ? n : 1, sizeof(*p));
	const struct mbc_limits lim = { 10000000, 1000000 };
	struct mbc_table *t;
	enum mbc_over over;
	unsigned int i;

	for (i = 0; i < n; i++) {
		assert_null(mb_rule_normalize(&rules[i]));
		p[i] = &rules[i];
	}
	t = mbc_build(p, n, 12345, &lim, &over);
	assert_non_null(t);
	free(p);
	return t;
}

static __be32 ip(const char *s)
{
	struct in_addr a;

	assert_int_equal(inet_pton(AF_INET, s, &a), 1);
	return a.s_addr;
}

static void test_empty(void **state)
{
	uint8_t f[64];
	struct mbc_table *t = build(NULL, 0);

	(void)state;
	frame_ipv4(f, mac_a, 6, "10.0.0.1", "10.0.0.2", 1, 2, 0, 0);
	assert_int_equal(lookup_frame(t, f, 64), -1);
	assert_int_equal(t->n_subtables, 0);
	mbc_free(t);
}

/* The report's "A <MAC> M 5 s 12:13:14:15:16:17 p 8": source MAC and IPv4. */
static void test_report_mac_example(void **state)
{
	struct mb_rule r = { .cls = MBSTATE_CLASS_MAC,
			     .fields = MBSTATE_FIELD_S | MBSTATE_FIELD_P,
			     .ethertype = 0x0800 };
	struct mbc_table *t;
	uint8_t f[64];

	(void)state;
	memcpy(r.src_mac, mac_a, 6);
	t = build(&r, 1);
	frame_ipv4(f, mac_a, 17, "10.0.0.1", "10.0.0.2", 1, 2, 0, 0);
	assert_int_equal(lookup_frame(t, f, 64), 0);
	frame_ipv4(f, mac_b, 17, "10.0.0.1", "10.0.0.2", 1, 2, 0, 0);
	assert_int_equal(lookup_frame(t, f, 64), -1);
	frame_ipv4(f, mac_a, 17, "10.0.0.1", "10.0.0.2", 1, 2, 0, 0);
	f[12] = 0x08;
	f[13] = 0x06;	/* ARP from the same source passes */
	assert_int_equal(lookup_frame(t, f, 64), -1);
	mbc_free(t);
}

static void test_ip_prefix_tos_proto(void **state)
{
	struct mb_rule r[2] = {
		{ .cls = MBSTATE_CLASS_IP, .fields = MBSTATE_FIELD_S,
		  .src_plen = 24 },
		{ .cls = MBSTATE_CLASS_IP,
		  .fields = MBSTATE_FIELD_T | MBSTATE_FIELD_P,
		  .tos = 0x10, .proto = 1 },
	};
	struct mbc_table *t;
	uint8_t f[64];

	(void)state;
	r[0].src_ip = ip("192.168.7.0");
	t = build(r, 2);
	frame_ipv4(f, mac_a, 6, "192.168.7.77", "10.0.0.2", 1, 2, 0, 0);
	assert_int_equal(lookup_frame(t, f, 64), 0);
	frame_ipv4(f, mac_a, 6, "192.168.8.77", "10.0.0.2", 1, 2, 0, 0);
	assert_int_equal(lookup_frame(t, f, 64), -1);
	frame_ipv4(f, mac_a, 1, "1.1.1.1", "10.0.0.2", 0, 0, 0x10, 0);
	assert_int_equal(lookup_frame(t, f, 64), 1);
	frame_ipv4(f, mac_a, 1, "1.1.1.1", "10.0.0.2", 0, 0, 0x08, 0);
	assert_int_equal(lookup_frame(t, f, 64), -1);
	frame_ipv4(f, mac_a, 17, "1.1.1.1", "10.0.0.2", 0, 0, 0x10, 0);
	assert_int_equal(lookup_frame(t, f, 64), -1);
	mbc_free(t);
}

static void test_transport(void **state)
{
	struct mb_rule r[2] = {
		/* T 8 d 1000-2000: TCP and UDP */
		{ .cls = MBSTATE_CLASS_TP, .fields = MBSTATE_FIELD_D,
		  .dport_min = 1000, .dport_max = 2000 },
		/* T 5 s 53 p udp */
		{ .cls = MBSTATE_CLASS_TP,
		  .fields = MBSTATE_FIELD_S | MBSTATE_FIELD_P,
		  .sport_min = 53, .sport_max = 53, .proto = 17 },
	};
	struct mbc_table *t;
	uint8_t f[64];

	(void)state;
	t = build(r, 2);
	frame_ipv4(f, mac_a, 6, "1.1.1.1", "2.2.2.2", 40000, 1000, 0, 0);
	assert_int_equal(lookup_frame(t, f, 64), 0);
	frame_ipv4(f, mac_a, 17, "1.1.1.1", "2.2.2.2", 40000, 2000, 0, 0);
	assert_int_equal(lookup_frame(t, f, 64), 0);
	frame_ipv4(f, mac_a, 6, "1.1.1.1", "2.2.2.2", 40000, 999, 0, 0);
	assert_int_equal(lookup_frame(t, f, 64), -1);
	frame_ipv4(f, mac_a, 6, "1.1.1.1", "2.2.2.2", 40000, 2001, 0, 0);
	assert_int_equal(lookup_frame(t, f, 64), -1);
	/* ICMP has no ports, even if its bytes look like 1500 */
	frame_ipv4(f, mac_a, 1, "1.1.1.1", "2.2.2.2", 40000, 1500, 0, 0);
	assert_int_equal(lookup_frame(t, f, 64), -1);
	/* a non-first fragment carries no ports */
	frame_ipv4(f, mac_a, 6, "1.1.1.1", "2.2.2.2", 40000, 1500, 0, 185);
	assert_int_equal(lookup_frame(t, f, 64), -1);
	/* but the first one does */
	frame_ipv4(f, mac_a, 6, "1.1.1.1", "2.2.2.2", 40000, 1500, 0, 0x2000);
	assert_int_equal(lookup_frame(t, f, 64), 0);
	frame_ipv4(f, mac_a, 17, "1.1.1.1", "2.2.2.2", 53, 9, 0, 0);
	assert_int_equal(lookup_frame(t, f, 64), 1);
	frame_ipv4(f, mac_a, 6, "1.1.1.1", "2.2.2.2", 53, 9, 0, 0);
	assert_int_equal(lookup_frame(t, f, 64), -1);
	/* truncated: the ports are cut off */
	frame_ipv4(f, mac_a, 6, "1.1.1.1", "2.2.2.2", 40000, 1500, 0, 0);
	assert_int_equal(lookup_frame(t, f, 36), -1);
	mbc_free(t);
}

/* Every port of every range, for ranges of awkward shapes. */
static void test_port_ranges_exhaustive(void **state)
{
	static const uint16_t ranges[][2] = {
		{ 0, 65535 }, { 0, 0 }, { 65535, 65535 }, { 1, 65534 },
		{ 1000, 2000 }, { 1023, 1024 }, { 32768, 65535 }, { 7, 7 },
		{ 100, 32867 },
	};
	unsigned int i, p;

	(void)state;
	for (i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++) {
		struct mb_rule r = { .cls = MBSTATE_CLASS_TP,
				     .fields = MBSTATE_FIELD_S | MBSTATE_FIELD_P,
				     .proto = 6,
				     .sport_min = ranges[i][0],
				     .sport_max = ranges[i][1] };
		struct mbc_table *t = build(&r, 1);
		struct mb_key k;

		assert_true(t->n_entries <= 30);
		memset(&k, 0, sizeof(k));
		k.ethertype = MB_ETH_P_IP;
		k.proto = 6;
		k.l4 = 1;
		for (p = 0; p <= 65535; p++) {
			int in = p >= ranges[i][0] && p <= ranges[i][1];

			k.sport = (uint16_t)p;
			assert_int_equal(mbc_lookup(t, &k), in ? 0 : -1);
		}
		mbc_free(t);
	}
}

/* 100,000 exact rules share one mask: one subtable, one probe per frame. */
static void test_many_rules_one_subtable(void **state)
{
	unsigned int n = 100000, i;
	struct mb_rule *r = calloc(n, sizeof(*r));
	struct mbc_table *t;
	struct mb_key k;

	(void)state;
	for (i = 0; i < n; i++) {
		r[i].cls = MBSTATE_CLASS_IP;
		r[i].fields = MBSTATE_FIELD_S;
		r[i].src_plen = 32;
		r[i].src_ip = htonl(0x0a000000 + i * 3);
	}
	t = build(r, n);
	assert_int_equal(t->n_subtables, 1);
	assert_int_equal(t->n_entries, n);
	memset(&k, 0, sizeof(k));
	k.ethertype = MB_ETH_P_IP;
	for (i = 0; i < 3 * n; i++) {
		k.saddr = htonl(0x0a000000 + i);
		assert_int_equal(mbc_lookup(t, &k), i % 3 ? -1 : (int)(i / 3));
	}
	mbc_free(t);
	free(r);
}

static void test_max_entries(void **state)
{
	struct mb_rule r = { .cls = MBSTATE_CLASS_TP,
			     .fields = MBSTATE_FIELD_S | MBSTATE_FIELD_D,
			     .sport_min = 1, .sport_max = 65534,
			     .dport_min = 1, .dport_max = 65534 };
	const struct mb_rule *p = &r;
	struct mbc_limits lim = { .max_entries = 1799, .max_subtables = 1000 };
	struct mbc_table *t;
	enum mbc_over over;

	(void)state;
	assert_null(mb_rule_normalize(&r));
	/* 30 * 30 blocks, twice for TCP and UDP */
	assert_int_equal(mbc_rule_entries(&r), 1800);
	assert_null(mbc_build(&p, 1, 1, &lim, &over));
	assert_int_equal(over, MBC_OVER_ENTRIES);
	lim.max_entries = 1800;
	t = mbc_build(&p, 1, 1, &lim, &over);
	assert_non_null(t);
	assert_int_equal(over, MBC_OVER_NONE);
	assert_int_equal(t->n_entries, 1800);
	mbc_free(t);
}

/*
 * W1: the same rule needs 15 block sizes on each side, so 225 distinct
 * masks (TCP and UDP share them): max_subtables refuses it at 224 and
 * builds it at 225.
 */
static void test_max_subtables(void **state)
{
	struct mb_rule r = { .cls = MBSTATE_CLASS_TP,
			     .fields = MBSTATE_FIELD_S | MBSTATE_FIELD_D,
			     .sport_min = 1, .sport_max = 65534,
			     .dport_min = 1, .dport_max = 65534 };
	const struct mb_rule *p = &r;
	struct mbc_limits lim = { .max_entries = 10000, .max_subtables = 224 };
	struct mbc_table *t;
	enum mbc_over over;

	(void)state;
	assert_null(mb_rule_normalize(&r));
	assert_null(mbc_build(&p, 1, 1, &lim, &over));
	assert_int_equal(over, MBC_OVER_SUBTABLES);
	lim.max_subtables = 225;
	t = mbc_build(&p, 1, 1, &lim, &over);
	assert_non_null(t);
	assert_int_equal(t->n_subtables, 225);
	mbc_free(t);
}

static void test_normalize(void **state)
{
	struct mb_rule r = { .cls = MBSTATE_CLASS_IP, .fields = MBSTATE_FIELD_S,
			     .src_plen = 24, .tos = 7 };

	(void)state;
	r.src_ip = ip("10.0.0.5");
	assert_non_null(mb_rule_normalize(&r));	/* host bits set */
	r.src_ip = ip("10.0.0.0");
	assert_null(mb_rule_normalize(&r));
	assert_int_equal(r.tos, 0);			/* not in the mask */
	assert_int_equal(r.valued, MBSTATE_FIELD_S);

	memset(&r, 0, sizeof(r));
	r.cls = MBSTATE_CLASS_MAC;
	r.fields = MBSTATE_FIELD_T;
	assert_non_null(mb_rule_normalize(&r));	/* no t in class M */
	r.cls = 9;
	r.fields = MBSTATE_FIELD_S;
	assert_non_null(mb_rule_normalize(&r));
	memset(&r, 0, sizeof(r));
	r.cls = MBSTATE_CLASS_TP;
	r.fields = MBSTATE_FIELD_P;
	r.proto = 1;
	assert_non_null(mb_rule_normalize(&r));	/* T p is tcp or udp */
	r.proto = 6;
	r.fields = MBSTATE_FIELD_S | MBSTATE_FIELD_P;
	r.sport_min = 10;
	r.sport_max = 9;
	assert_non_null(mb_rule_normalize(&r));
}

/* The report's "D <MAC> M 4 s" after "A <MAC> M 5 s ... p 8". */
static void test_selectors(void **state)
{
	struct mb_rule rule = { .cls = MBSTATE_CLASS_MAC,
				.fields = MBSTATE_FIELD_S | MBSTATE_FIELD_P,
				.ethertype = 0x0800 };
	struct mb_rule sel = { .cls = MBSTATE_CLASS_MAC,
			       .fields = MBSTATE_FIELD_S };

	(void)state;
	memcpy(rule.src_mac, mac_a, 6);
	assert_null(mb_rule_normalize(&rule));
	assert_true(mb_rule_selects(&sel, &rule));	/* D M 4 s */
	sel.valued = MBSTATE_FIELD_S;
	memcpy(sel.src_mac, mac_b, 6);
	assert_false(mb_rule_selects(&sel, &rule));	/* D M 4 s <other> */
	memcpy(sel.src_mac, mac_a, 6);
	assert_true(mb_rule_selects(&sel, &rule));	/* D M 4 s <same> */
	sel.fields = MBSTATE_FIELD_D;
	sel.valued = 0;
	assert_false(mb_rule_selects(&sel, &rule));	/* D M 8 d */
	sel.fields = MBSTATE_FIELD_P;
	sel.valued = MBSTATE_FIELD_P;
	sel.ethertype = 0x0806;
	assert_false(mb_rule_selects(&sel, &rule));	/* D M 1 p arp */
	sel.ethertype = 0x0800;
	assert_true(mb_rule_selects(&sel, &rule));	/* D M 1 p ipv4 */
	sel.cls = MBSTATE_CLASS_IP;
	assert_false(mb_rule_selects(&sel, &rule));	/* other class */
}

static uint32_t rnd(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

/* Small value spaces so that random frames hit random rules often. */
static void random_rule(struct mb_rule *r, uint32_t *s)
{
	static const uint8_t plens[] = { 0, 8, 30, 31, 32 };

	memset(r, 0, sizeof(*r));
	r->cls = (uint8_t)(1 + rnd(s) % 3);
	do
		r->fields = (uint8_t)(1 + rnd(s) % 15) & mb_class_fields(r->cls);
	while (!r->fields);
	r->src_plen = plens[rnd(s) % 5];
	r->dst_plen = plens[rnd(s) % 5];
	r->src_ip = htonl((0x0a000000 | (rnd(s) % 4)) &
			  (r->src_plen ? ~0U << (32 - r->src_plen) : 0));
	r->dst_ip = htonl((0x0a000000 | (rnd(s) % 4)) &
			  (r->dst_plen ? ~0U << (32 - r->dst_plen) : 0));
	r->tos = (uint8_t)(rnd(s) % 3);
	r->proto = rnd(s) % 2 ? 6 : 17;
	if (r->cls == MBSTATE_CLASS_IP && rnd(s) % 2)
		r->proto = 1;
	r->ethertype = rnd(s) % 2 ? 0x0800 : 0x0806;
	r->src_mac[5] = (uint8_t)(rnd(s) % 3);
	r->dst_mac[5] = (uint8_t)(rnd(s) % 3);
	r->sport_min = (uint16_t)(rnd(s) % 70);
	r->sport_max = (uint16_t)(r->sport_min + rnd(s) % 70);
	r->dport_min = (uint16_t)(rnd(s) % 70);
	r->dport_max = (uint16_t)(r->dport_min + rnd(s) % 70);
}

static void random_key(struct mb_key *k, uint32_t *s)
{
	static const uint8_t protos[] = { 1, 6, 17, 47 };

	memset(k, 0, sizeof(*k));
	k->smac[5] = (uint8_t)(rnd(s) % 3);
	k->dmac[5] = (uint8_t)(rnd(s) % 3);
	k->ethertype = rnd(s) % 4 ? 0x0800 : 0x0806;
	if (k->ethertype != 0x0800)
		return;
	k->saddr = htonl(0x0a000000 | (rnd(s) % 5));
	k->daddr = htonl(0x0a000000 | (rnd(s) % 5));
	k->tos = (uint8_t)(rnd(s) % 3);
	k->proto = protos[rnd(s) % 4];
	if ((k->proto == 6 || k->proto == 17) && rnd(s) % 8) {
		k->l4 = 1;
		k->sport = (uint16_t)(rnd(s) % 150);
		k->dport = (uint16_t)(rnd(s) % 150);
	}
}

static void test_differential(void **state)
{
	uint32_t seed = 0x2545f491;
	unsigned int round;

	(void)state;
	for (round = 0; round < 200; round++) {
		unsigned int n = 1 + rnd(&seed) % 40, i, j;
		struct mb_rule *r = calloc(n, sizeof(*r));
		struct mbc_table *t;

		for (i = 0; i < n; i++)
			random_rule(&r[i], &seed);
		t = build(r, n);
		for (j = 0; j < 500; j++) {
			struct mb_key k;
			int got, any = 0;

			random_key(&k, &seed);
			for (i = 0; i < n; i++)
				any |= naive_match(&r[i], &k);
			got = mbc_lookup(t, &k);
			if (got >= 0)
				assert_true(naive_match(&r[got], &k));
			else
				assert_false(any);
		}
		mbc_free(t);
		free(r);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_report_mac_example),
		cmocka_unit_test(test_ip_prefix_tos_proto),
		cmocka_unit_test(test_transport),
		cmocka_unit_test(test_port_ranges_exhaustive),
		cmocka_unit_test(test_many_rules_one_subtable),
		cmocka_unit_test(test_max_entries),
		cmocka_unit_test(test_max_subtables),
		cmocka_unit_test(test_normalize),
		cmocka_unit_test(test_selectors),
		cmocka_unit_test(test_differential),
	};

	return cmocka_run_group_tests_name("classifier", tests, NULL, NULL);
}
