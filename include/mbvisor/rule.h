/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * A firewall rule as every part of mbvisor sees it: the text parser fills it,
 * netlink carries it, mbstate stores it, the classifier compiles it.
 * Shared by kernel and userspace, so only <linux/types.h> types.
 */
#ifndef _MBVISOR_RULE_H
#define _MBVISOR_RULE_H

#include <linux/types.h>
#include <linux/mbstate.h>

#define MB_ETH_ALEN 6

struct mb_rule {
	__u8 cls;		/* MBSTATE_CLASS_* */
	__u8 fields;		/* MBSTATE_FIELD_* this rule matches on */
	__u8 valued;		/* selectors only: fields that carry a value */
	__u8 tos;		/* I t */
	__u8 proto;		/* I p, T p */
	__u8 src_plen;		/* I s: prefix length 0..32 */
	__u8 dst_plen;		/* I d */
	__u8 pad0;
	__u16 ethertype;	/* M p, host order */
	__u8 src_mac[MB_ETH_ALEN];	/* M s */
	__u8 dst_mac[MB_ETH_ALEN];	/* M d */
	__u8 pad1[2];
	__be32 src_ip;		/* I s, host bits past src_plen are zero */
	__be32 dst_ip;		/* I d */
	__u16 sport_min, sport_max;	/* T s, host order, inclusive */
	__u16 dport_min, dport_max;	/* T d */
};

/* Fields each class defines (table in <linux/mbstate.h>). */
static inline __u8 mb_class_fields(__u8 cls)
{
	switch (cls) {
	case MBSTATE_CLASS_IP:
		return MBSTATE_FIELD_ALL;
	case MBSTATE_CLASS_MAC:
	case MBSTATE_CLASS_TP:
		return MBSTATE_FIELD_S | MBSTATE_FIELD_D | MBSTATE_FIELD_P;
	default:
		return 0;
	}
}

/*
 * The one check every producer of rules shares: class known, fields a
 * non-empty subset of what the class defines, values only for fields of the
 * mask, prefixes and ranges sane. Selectors (D) may leave values out, so
 * values are checked only where @valued says there is one. Returns NULL if
 * the rule is good, or a sentence saying what is wrong with it. Zeroing the
 * values of unused fields is mb_rule_normalize()'s job (classifier.h).
 */
static inline const char *mb_rule_check(const struct mb_rule *r)
{
	__u8 allowed = mb_class_fields(r->cls);

	if (!allowed)
		return "unknown filter class";
	if (!r->fields || (r->fields & ~MBSTATE_FIELD_ALL))
		return "field mask must be 1..15";
	if (r->fields & ~allowed)
		return "field t (TOS) exists only in class I";
	if (r->valued & ~r->fields)
		return "a value is given for a field outside the mask";
	if (r->pad0 || r->pad1[0] || r->pad1[1])
		return "padding must be zero";
	if (r->src_plen > 32 || r->dst_plen > 32)
		return "prefix length must be 0..32";
	if (r->sport_min > r->sport_max || r->dport_min > r->dport_max)
		return "port range must be low-high with low <= high";
	if (r->cls == MBSTATE_CLASS_TP && (r->valued & MBSTATE_FIELD_P) &&
	    r->proto != 6 && r->proto != 17)
		return "transport protocol must be tcp (6) or udp (17)";
	return (const char *)0;
}

#endif /* _MBVISOR_RULE_H */
