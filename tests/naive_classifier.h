/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * The firewall's semantics written the slow and obvious way, as oracles for
 * the unit tests (tests/unit/test_classifier.c) and the fuzz targets
 * (tests/fuzz/fuzz_classifier.c, tests/fuzz/fuzz_frame.c). Each function is
 * written from the documents (docs/commands.md, include/mbvisor/classifier.h),
 * not from common/classifier.c, and shares no code with it: no hashing, no
 * masks built from prefix tables, no header callback.
 *
 *   naive_rule_valid()      may this rule be added (A)?
 *   naive_match()           does a rule match a frame's key?
 *   naive_key_from_frame()  the key of a whole Ethernet frame
 *   naive_selects()         does a selector (D) pick a rule?
 *
 * Userspace only; include it as "../naive_classifier.h".
 */
#ifndef MB_TESTS_NAIVE_CLASSIFIER_H
#define MB_TESTS_NAIVE_CLASSIFIER_H

#include <arpa/inet.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <mbvisor/classifier.h>

/* The netmask of a prefix length 0..32, in network order. */
static inline uint32_t naive_netmask(unsigned int plen)
{
	uint32_t m = 0;
	unsigned int i;

	for (i = 0; i < plen && i < 32; i++)
		m |= 0x80000000U >> i;
	return htonl(m);
}

/*
 * A rule to add, as docs/commands.md section 2 and 4 allow it: class I, M or
 * T; a field mask of 1..15 naming only fields of the class (t only in I);
 * prefix lengths up to 32 and no address bits past them; port ranges low to
 * high; T p only tcp or udp; the pad bytes zero. Values of fields outside
 * the mask are dropped, but prefix lengths and port ranges must be sane
 * whatever the mask says, as mb_rule_check() wants. The selector bits
 * (@valued) do not matter: every field of a rule to add has a value.
 */
static inline int naive_rule_valid(const struct mb_rule *r)
{
	unsigned int allowed;

	switch (r->cls) {
	case MBSTATE_CLASS_IP:
		allowed = MBSTATE_FIELD_S | MBSTATE_FIELD_D |
			  MBSTATE_FIELD_T | MBSTATE_FIELD_P;
		break;
	case MBSTATE_CLASS_MAC:
	case MBSTATE_CLASS_TP:
		allowed = MBSTATE_FIELD_S | MBSTATE_FIELD_D | MBSTATE_FIELD_P;
		break;
	default:
		return 0;
	}
	if (r->fields < 1 || r->fields > 15 || (r->fields & ~allowed))
		return 0;
	if (r->pad0 || r->pad1[0] || r->pad1[1])
		return 0;
	/* mb_rule_check() looks at these whatever the mask says */
	if (r->src_plen > 32 || r->dst_plen > 32)
		return 0;
	if (r->sport_min > r->sport_max || r->dport_min > r->dport_max)
		return 0;
	if (r->cls == MBSTATE_CLASS_IP) {
		if ((r->fields & MBSTATE_FIELD_S) &&
		    (r->src_ip & ~naive_netmask(r->src_plen)))
			return 0;
		if ((r->fields & MBSTATE_FIELD_D) &&
		    (r->dst_ip & ~naive_netmask(r->dst_plen)))
			return 0;
	}
	if (r->cls == MBSTATE_CLASS_TP && (r->fields & MBSTATE_FIELD_P) &&
	    r->proto != 6 && r->proto != 17)
		return 0;
	return 1;
}

/*
 * What docs/commands.md says a valid rule matches: all the fields of its
 * mask; class I only IPv4, class T only IPv4 TCP or UDP with ports (and a T
 * rule without p both protocols), class M any frame.
 */
static inline int naive_match(const struct mb_rule *r, const struct mb_key *k)
{
	switch (r->cls) {
	case MBSTATE_CLASS_MAC:
		if ((r->fields & MBSTATE_FIELD_S) && memcmp(k->smac, r->src_mac, 6))
			return 0;
		if ((r->fields & MBSTATE_FIELD_D) && memcmp(k->dmac, r->dst_mac, 6))
			return 0;
		if ((r->fields & MBSTATE_FIELD_P) && k->ethertype != r->ethertype)
			return 0;
		return 1;
	case MBSTATE_CLASS_IP:
		if (k->ethertype != 0x0800)
			return 0;
		if ((r->fields & MBSTATE_FIELD_S) &&
		    (k->saddr & naive_netmask(r->src_plen)) != r->src_ip)
			return 0;
		if ((r->fields & MBSTATE_FIELD_D) &&
		    (k->daddr & naive_netmask(r->dst_plen)) != r->dst_ip)
			return 0;
		if ((r->fields & MBSTATE_FIELD_T) && k->tos != r->tos)
			return 0;
		if ((r->fields & MBSTATE_FIELD_P) && k->proto != r->proto)
			return 0;
		return 1;
	case MBSTATE_CLASS_TP:
		if (k->ethertype != 0x0800 || !k->l4 ||
		    (k->proto != 6 && k->proto != 17))
			return 0;
		if ((r->fields & MBSTATE_FIELD_P) && k->proto != r->proto)
			return 0;
		if ((r->fields & MBSTATE_FIELD_S) &&
		    (k->sport < r->sport_min || k->sport > r->sport_max))
			return 0;
		if ((r->fields & MBSTATE_FIELD_D) &&
		    (k->dport < r->dport_min || k->dport > r->dport_max))
			return 0;
		return 1;
	}
	return 0;
}

/*
 * The key of a whole Ethernet frame of @len bytes, from the description in
 * include/mbvisor/classifier.h: the MACs and the EtherType of the Ethernet
 * header (a frame shorter than that has an all-zero key); for IPv4 (version
 * 4, header length at least 20 bytes, all 20 bytes present) the TOS, the
 * protocol and the addresses; for TCP and UDP that are not a later fragment
 * (fragment offset 0), the ports, if the 4 bytes after the IP header, options
 * included, are in the frame. Bytes are read by index, one at a time.
 */
static inline void naive_key_from_frame(struct mb_key *k, const uint8_t *f,
					size_t len)
{
	size_t ip = 14, l4;
	unsigned int off;

	memset(k, 0, sizeof(*k));
	if (len < 14)
		return;
	memcpy(k->dmac, f, 6);
	memcpy(k->smac, f + 6, 6);
	k->ethertype = (uint16_t)(f[12] * 256 + f[13]);
	if (k->ethertype != 0x0800 || len < ip + 20)
		return;
	if (f[ip] / 16 != 4 || f[ip] % 16 < 5)
		return;
	k->tos = f[ip + 1];
	k->proto = f[ip + 9];
	memcpy(&k->saddr, f + ip + 12, 4);
	memcpy(&k->daddr, f + ip + 16, 4);
	off = (f[ip + 6] % 32) * 256u + f[ip + 7];
	if (off != 0 || (k->proto != 6 && k->proto != 17))
		return;
	l4 = ip + (f[ip] % 16) * 4u;
	if (len < l4 + 4)
		return;
	k->sport = (uint16_t)(f[l4] * 256 + f[l4 + 1]);
	k->dport = (uint16_t)(f[l4 + 2] * 256 + f[l4 + 3]);
	k->l4 = 1;
}

/*
 * The selection of D, docs/commands.md section 3: a rule of the selector's
 * class whose field set contains all the selector's fields, and whose value
 * of each field the selector gives a value for (@valued) is equal to it:
 * prefixes address and length, port ranges both ends. @r is a normalized
 * rule.
 */
static inline int naive_selects(const struct mb_rule *sel,
				const struct mb_rule *r)
{
	unsigned int f;

	if (sel->cls != r->cls)
		return 0;
	for (f = 1; f <= 8; f <<= 1) {
		if (!(sel->fields & f))
			continue;
		if (!(r->fields & f))
			return 0;
		if (!(sel->valued & f))
			continue;
		switch (r->cls * 16 + f) {
		case MBSTATE_CLASS_IP * 16 + MBSTATE_FIELD_S:
			if (sel->src_ip != r->src_ip || sel->src_plen != r->src_plen)
				return 0;
			break;
		case MBSTATE_CLASS_IP * 16 + MBSTATE_FIELD_D:
			if (sel->dst_ip != r->dst_ip || sel->dst_plen != r->dst_plen)
				return 0;
			break;
		case MBSTATE_CLASS_IP * 16 + MBSTATE_FIELD_T:
			if (sel->tos != r->tos)
				return 0;
			break;
		case MBSTATE_CLASS_IP * 16 + MBSTATE_FIELD_P:
		case MBSTATE_CLASS_TP * 16 + MBSTATE_FIELD_P:
			if (sel->proto != r->proto)
				return 0;
			break;
		case MBSTATE_CLASS_MAC * 16 + MBSTATE_FIELD_S:
			if (memcmp(sel->src_mac, r->src_mac, 6))
				return 0;
			break;
		case MBSTATE_CLASS_MAC * 16 + MBSTATE_FIELD_D:
			if (memcmp(sel->dst_mac, r->dst_mac, 6))
				return 0;
			break;
		case MBSTATE_CLASS_MAC * 16 + MBSTATE_FIELD_P:
			if (sel->ethertype != r->ethertype)
				return 0;
			break;
		case MBSTATE_CLASS_TP * 16 + MBSTATE_FIELD_S:
			if (sel->sport_min != r->sport_min ||
			    sel->sport_max != r->sport_max)
				return 0;
			break;
		case MBSTATE_CLASS_TP * 16 + MBSTATE_FIELD_D:
			if (sel->dport_min != r->dport_min ||
			    sel->dport_max != r->dport_max)
				return 0;
			break;
		default:
			return 0;
		}
	}
	return 1;
}

#endif /* MB_TESTS_NAIVE_CLASSIFIER_H */
