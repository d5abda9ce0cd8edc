// SPDX-License-Identifier: GPL-2.0
/*
 * The "mbstate" generic netlink family: the control interface of the
 * registry, documented in include/uapi/linux/mbstate.h.
 *
 * Every request is validated strictly against the policies below before a
 * handler runs; a handler checks what policies cannot express, says why in
 * the extended ack, and changes nothing unless every check passed.
 */
#include <linux/bitmap.h>
#include <linux/etherdevice.h>
#include <linux/jhash.h>
#include <linux/log2.h>
#include <net/genetlink.h>
#include <net/netlink.h>
#include <net/sock.h>

#include "mbstate.h"

static const struct nla_policy mbstate_rule_policy[MBSTATE_RULE_A_MAX + 1] = {
	[MBSTATE_RULE_A_CLASS] = NLA_POLICY_RANGE(NLA_U8, MBSTATE_CLASS_IP,
						  MBSTATE_CLASS_MAX),
	[MBSTATE_RULE_A_FIELDS] = NLA_POLICY_RANGE(NLA_U8, 1, MBSTATE_FIELD_ALL),
	[MBSTATE_RULE_A_ID] = MBSTATE_POLICY_REPLY_ONLY("MBSTATE_RULE_A_ID"),
	[MBSTATE_RULE_A_SRC_MAC] = NLA_POLICY_ETH_ADDR,
	[MBSTATE_RULE_A_DST_MAC] = NLA_POLICY_ETH_ADDR,
	[MBSTATE_RULE_A_ETHERTYPE] = { .type = NLA_U16 },
	[MBSTATE_RULE_A_SRC_IPV4] = { .type = NLA_BE32 },
	[MBSTATE_RULE_A_SRC_PLEN] = NLA_POLICY_MAX(NLA_U8, 32),
	[MBSTATE_RULE_A_DST_IPV4] = { .type = NLA_BE32 },
	[MBSTATE_RULE_A_DST_PLEN] = NLA_POLICY_MAX(NLA_U8, 32),
	[MBSTATE_RULE_A_TOS] = { .type = NLA_U8 },
	[MBSTATE_RULE_A_PROTO] = { .type = NLA_U8 },
	[MBSTATE_RULE_A_SPORT_MIN] = { .type = NLA_U16 },
	[MBSTATE_RULE_A_SPORT_MAX] = { .type = NLA_U16 },
	[MBSTATE_RULE_A_DPORT_MIN] = { .type = NLA_U16 },
	[MBSTATE_RULE_A_DPORT_MAX] = { .type = NLA_U16 },
	[MBSTATE_RULE_A_PACKETS] = MBSTATE_POLICY_REPLY_ONLY("MBSTATE_RULE_A_PACKETS"),
	[MBSTATE_RULE_A_BYTES] = MBSTATE_POLICY_REPLY_ONLY("MBSTATE_RULE_A_BYTES"),
};

static const struct nla_policy mbstate_policy[MBSTATE_A_MAX + 1] = {
	[MBSTATE_A_MAC] = NLA_POLICY_ETH_ADDR,
	[MBSTATE_A_IPV4] = { .type = NLA_BE32 },
	[MBSTATE_A_SERVICES] = NLA_POLICY_MASK(NLA_U32, MBSTATE_SVC_ALL),
	[MBSTATE_A_ENABLED] = NLA_POLICY_MAX(NLA_U8, 1),
	[MBSTATE_A_NRULES] = MBSTATE_POLICY_REPLY_ONLY("MBSTATE_A_NRULES"),
	[MBSTATE_A_RULES] = NLA_POLICY_NESTED_ARRAY(mbstate_rule_policy),
	[MBSTATE_A_RULE] = NLA_POLICY_NESTED(mbstate_rule_policy),
	[MBSTATE_A_LB] = NLA_POLICY_NESTED(mbstate_lb_policy),
	[MBSTATE_A_STATS] = MBSTATE_POLICY_REPLY_ONLY("MBSTATE_A_STATS"),
	[MBSTATE_A_REPLACE] = { .type = NLA_FLAG },
	[MBSTATE_A_BACKEND] = NLA_POLICY_NESTED(mbstate_be_policy),
	[MBSTATE_A_FLOW] = MBSTATE_POLICY_REPLY_ONLY("MBSTATE_A_FLOW"),
	[MBSTATE_A_VLAN] = NLA_POLICY_RANGE(NLA_U16, MBSTATE_VLAN_MIN,
					    MBSTATE_VLAN_MAX),
};

enum { MBSTATE_MCGRP_CHANGES_ID };

static const struct genl_multicast_group mbstate_mcgrps[] = {
	/*
	 * Notifications carry what the commands do (rules, addresses,
	 * counters): only for those who may read the registry with GET_MB
	 * (GENL_UNS_ADMIN_PERM), not for anyone in the namespace.
	 */
	[MBSTATE_MCGRP_CHANGES_ID] = { .name = MBSTATE_MCGRP_CHANGES,
				       .flags = GENL_MCAST_CAP_NET_ADMIN },
};

/*
 * Where each field of each class lives in a rule nest: its value attribute
 * and, for prefixes and ranges, the optional second one.
 */
static const struct {
	u8 cls, field, attr, aux;
} mbstate_field_attrs[] = {
	{ MBSTATE_CLASS_IP, MBSTATE_FIELD_S, MBSTATE_RULE_A_SRC_IPV4, MBSTATE_RULE_A_SRC_PLEN },
	{ MBSTATE_CLASS_IP, MBSTATE_FIELD_D, MBSTATE_RULE_A_DST_IPV4, MBSTATE_RULE_A_DST_PLEN },
	{ MBSTATE_CLASS_IP, MBSTATE_FIELD_T, MBSTATE_RULE_A_TOS, 0 },
	{ MBSTATE_CLASS_IP, MBSTATE_FIELD_P, MBSTATE_RULE_A_PROTO, 0 },
	{ MBSTATE_CLASS_MAC, MBSTATE_FIELD_S, MBSTATE_RULE_A_SRC_MAC, 0 },
	{ MBSTATE_CLASS_MAC, MBSTATE_FIELD_D, MBSTATE_RULE_A_DST_MAC, 0 },
	{ MBSTATE_CLASS_MAC, MBSTATE_FIELD_P, MBSTATE_RULE_A_ETHERTYPE, 0 },
	{ MBSTATE_CLASS_TP, MBSTATE_FIELD_S, MBSTATE_RULE_A_SPORT_MIN, MBSTATE_RULE_A_SPORT_MAX },
	{ MBSTATE_CLASS_TP, MBSTATE_FIELD_D, MBSTATE_RULE_A_DPORT_MIN, MBSTATE_RULE_A_DPORT_MAX },
	{ MBSTATE_CLASS_TP, MBSTATE_FIELD_P, MBSTATE_RULE_A_PROTO, 0 },
};

/* Reads the value of @field (from tb[@attr], tb[@aux]) into @r. */
static void mbstate_rule_get(struct mb_rule *r, u8 field, struct nlattr **tb,
			     u8 attr, u8 aux)
{
	switch (r->cls << 4 | field) {
	case MBSTATE_CLASS_IP << 4 | MBSTATE_FIELD_S:
		r->src_ip = nla_get_in_addr(tb[attr]);
		r->src_plen = tb[aux] ? nla_get_u8(tb[aux]) : 32;
		break;
	case MBSTATE_CLASS_IP << 4 | MBSTATE_FIELD_D:
		r->dst_ip = nla_get_in_addr(tb[attr]);
		r->dst_plen = tb[aux] ? nla_get_u8(tb[aux]) : 32;
		break;
	case MBSTATE_CLASS_IP << 4 | MBSTATE_FIELD_T:
		r->tos = nla_get_u8(tb[attr]);
		break;
	case MBSTATE_CLASS_IP << 4 | MBSTATE_FIELD_P:
	case MBSTATE_CLASS_TP << 4 | MBSTATE_FIELD_P:
		r->proto = nla_get_u8(tb[attr]);
		break;
	case MBSTATE_CLASS_MAC << 4 | MBSTATE_FIELD_S:
		nla_memcpy(r->src_mac, tb[attr], ETH_ALEN);
		break;
	case MBSTATE_CLASS_MAC << 4 | MBSTATE_FIELD_D:
		nla_memcpy(r->dst_mac, tb[attr], ETH_ALEN);
		break;
	case MBSTATE_CLASS_MAC << 4 | MBSTATE_FIELD_P:
		r->ethertype = nla_get_u16(tb[attr]);
		break;
	case MBSTATE_CLASS_TP << 4 | MBSTATE_FIELD_S:
		r->sport_min = nla_get_u16(tb[attr]);
		r->sport_max = tb[aux] ? nla_get_u16(tb[aux]) : r->sport_min;
		break;
	case MBSTATE_CLASS_TP << 4 | MBSTATE_FIELD_D:
		r->dport_min = nla_get_u16(tb[attr]);
		r->dport_max = tb[aux] ? nla_get_u16(tb[aux]) : r->dport_min;
		break;
	}
}

/*
 * Parses one MBSTATE_A_RULE nest. A rule to add needs a value for every
 * field; a selector (@selector) may leave values out, and r->valued says
 * which it gave.
 */
static int mbstate_rule_parse(const struct nlattr *nest, struct mb_rule *r,
			      bool selector, struct netlink_ext_ack *extack)
{
	struct nlattr *tb[MBSTATE_RULE_A_MAX + 1];
	bool used[MBSTATE_RULE_A_MAX + 1] = { };
	const char *why;
	unsigned int i;
	int ret;

	ret = nla_parse_nested(tb, MBSTATE_RULE_A_MAX, nest,
			       mbstate_rule_policy, extack);
	if (ret)
		return ret;
	if (!tb[MBSTATE_RULE_A_CLASS] || !tb[MBSTATE_RULE_A_FIELDS]) {
		NL_SET_ERR_MSG_ATTR(extack, nest,
				    "a rule needs a class and a field mask");
		return -EINVAL;
	}
	memset(r, 0, sizeof(*r));
	r->cls = nla_get_u8(tb[MBSTATE_RULE_A_CLASS]);
	r->fields = nla_get_u8(tb[MBSTATE_RULE_A_FIELDS]);
	if (r->fields & ~mb_class_fields(r->cls)) {
		NL_SET_ERR_MSG_ATTR(extack, tb[MBSTATE_RULE_A_FIELDS],
				    "field t (TOS) exists only in class I");
		return -EINVAL;
	}

	for (i = 0; i < ARRAY_SIZE(mbstate_field_attrs); i++) {
		u8 attr = mbstate_field_attrs[i].attr;
		u8 aux = mbstate_field_attrs[i].aux;
		u8 field = mbstate_field_attrs[i].field;

		if (mbstate_field_attrs[i].cls != r->cls ||
		    !(r->fields & field))
			continue;
		used[attr] = true;
		used[aux] = true;
		if (!tb[attr]) {
			if (aux && tb[aux]) {
				NL_SET_ERR_MSG_ATTR(extack, tb[aux],
						    "a prefix length or range end needs its address or port");
				return -EINVAL;
			}
			if (!selector) {
				NL_SET_ERR_MSG_ATTR(extack, nest,
						    "every field of the mask needs a value");
				return -EINVAL;
			}
			continue;
		}
		r->valued |= field;
		mbstate_rule_get(r, field, tb, attr, aux);
	}
	for (i = MBSTATE_RULE_A_SRC_MAC; i <= MBSTATE_RULE_A_DPORT_MAX; i++) {
		if (tb[i] && !used[i]) {
			NL_SET_ERR_MSG_ATTR(extack, tb[i],
					    "attribute does not belong to a field of the rule's class and mask");
			return -EINVAL;
		}
	}

	why = mb_rule_check(r);
	if (!why && !selector)
		why = mb_rule_normalize(r);
	if (why) {
		/* @why is one of the string literals of the shared checks */
		if (extack) {
			extack->_msg = why;
			extack->bad_attr = nest;
		}
		return -EINVAL;
	}
	return 0;
}

static int mbstate_rule_put(struct sk_buff *skb, const struct mbfw_rule *rule)
{
	const struct mb_rule *r = &rule->r;
	struct nlattr *nest;
	u64 packets, bytes;
	unsigned int i;

	nest = nla_nest_start(skb, MBSTATE_A_RULE);
	if (!nest)
		return -EMSGSIZE;
	mbstate_rule_ctr_read(rule, &packets, &bytes);
	if (nla_put_u8(skb, MBSTATE_RULE_A_CLASS, r->cls) ||
	    nla_put_u8(skb, MBSTATE_RULE_A_FIELDS, r->fields) ||
	    nla_put_u32(skb, MBSTATE_RULE_A_ID, rule->id) ||
	    nla_put_u64_64bit(skb, MBSTATE_RULE_A_PACKETS, packets,
			      MBSTATE_RULE_A_PAD) ||
	    nla_put_u64_64bit(skb, MBSTATE_RULE_A_BYTES, bytes,
			      MBSTATE_RULE_A_PAD))
		goto fail;
	for (i = 0; i < ARRAY_SIZE(mbstate_field_attrs); i++) {
		u8 attr = mbstate_field_attrs[i].attr;
		u8 aux = mbstate_field_attrs[i].aux;
		int err = 0;

		if (mbstate_field_attrs[i].cls != r->cls ||
		    !(r->fields & mbstate_field_attrs[i].field))
			continue;
		switch (attr) {
		case MBSTATE_RULE_A_SRC_IPV4:
			err = nla_put_in_addr(skb, attr, r->src_ip) ||
			      nla_put_u8(skb, aux, r->src_plen);
			break;
		case MBSTATE_RULE_A_DST_IPV4:
			err = nla_put_in_addr(skb, attr, r->dst_ip) ||
			      nla_put_u8(skb, aux, r->dst_plen);
			break;
		case MBSTATE_RULE_A_TOS:
			err = nla_put_u8(skb, attr, r->tos);
			break;
		case MBSTATE_RULE_A_PROTO:
			err = nla_put_u8(skb, attr, r->proto);
			break;
		case MBSTATE_RULE_A_SRC_MAC:
			err = nla_put(skb, attr, ETH_ALEN, r->src_mac);
			break;
		case MBSTATE_RULE_A_DST_MAC:
			err = nla_put(skb, attr, ETH_ALEN, r->dst_mac);
			break;
		case MBSTATE_RULE_A_ETHERTYPE:
			err = nla_put_u16(skb, attr, r->ethertype);
			break;
		case MBSTATE_RULE_A_SPORT_MIN:
			err = nla_put_u16(skb, attr, r->sport_min) ||
			      nla_put_u16(skb, aux, r->sport_max);
			break;
		case MBSTATE_RULE_A_DPORT_MIN:
			err = nla_put_u16(skb, attr, r->dport_min) ||
			      nla_put_u16(skb, aux, r->dport_max);
			break;
		}
		if (err)
			goto fail;
	}
	nla_nest_end(skb, nest);
	return 0;

fail:
	nla_nest_cancel(skb, nest);
	return -EMSGSIZE;
}

static u32 mbstate_nrules(struct mb_entry *mb)
{
	struct mbfw_ruleset *rs = mbstate_deref(mb->fw);

	return rs ? rs->n_rules : 0;
}

static int mbstate_mb_put(struct sk_buff *skb, struct mb_entry *mb)
{
	static const u8 stats_attr[MB_ST_N] = {
		[MB_ST_RX_PACKETS] = MBSTATE_STATS_A_RX_PACKETS,
		[MB_ST_RX_BYTES] = MBSTATE_STATS_A_RX_BYTES,
		[MB_ST_FW_DROP_PACKETS] = MBSTATE_STATS_A_FW_DROP_PACKETS,
		[MB_ST_FW_DROP_BYTES] = MBSTATE_STATS_A_FW_DROP_BYTES,
		[MB_ST_DISABLED_PACKETS] = MBSTATE_STATS_A_DISABLED_PACKETS,
		[MB_ST_UNBOUND_PACKETS] = MBSTATE_STATS_A_UNBOUND_PACKETS,
	};
	struct nlattr *nest;
	u64 st[MB_ST_N];
	int i;

	if (nla_put(skb, MBSTATE_A_MAC, ETH_ALEN, mb->mac) ||
	    nla_put_in_addr(skb, MBSTATE_A_IPV4, mb->ip) ||
	    nla_put_u32(skb, MBSTATE_A_SERVICES, mb->services) ||
	    nla_put_u8(skb, MBSTATE_A_ENABLED, READ_ONCE(mb->enabled)) ||
	    nla_put_u32(skb, MBSTATE_A_NRULES, mbstate_nrules(mb)) ||
	    (mb->vlan && nla_put_u16(skb, MBSTATE_A_VLAN, mb->vlan)))
		return -EMSGSIZE;
	if ((mb->services & MBSTATE_SVC_L) && mbstate_lb_put(skb, mb))
		return -EMSGSIZE;
	mbstate_stats_read(mb, st);
	nest = nla_nest_start(skb, MBSTATE_A_STATS);
	if (!nest)
		return -EMSGSIZE;
	for (i = 0; i < MB_ST_N; i++)
		if (nla_put_u64_64bit(skb, stats_attr[i], st[i],
				      MBSTATE_STATS_A_PAD))
			return -EMSGSIZE;
	nla_nest_end(skb, nest);
	return 0;
}

static struct sk_buff *mbstate_mb_msg(struct mb_entry *mb, u32 portid,
				      u32 seq, u8 cmd)
{
	struct sk_buff *skb;
	void *hdr;

	skb = genlmsg_new(NLMSG_GOODSIZE + mbstate_lb_msg_size(mb), GFP_KERNEL);
	if (!skb)
		return NULL;
	hdr = genlmsg_put(skb, portid, seq, &mbstate_family, 0, cmd);
	if (!hdr || mbstate_mb_put(skb, mb)) {
		nlmsg_free(skb);
		return NULL;
	}
	genlmsg_end(skb, hdr);
	return skb;
}

/* Announces a change of @mb on the "changes" group of its namespace. */
void mbstate_notify_mb(struct mbstate_net *mn, struct mb_entry *mb, u8 cmd)
{
	struct sk_buff *skb = mbstate_mb_msg(mb, 0, 0, cmd);

	if (skb)
		genlmsg_multicast_netns(&mbstate_family, mn->net, skb, 0,
					MBSTATE_MCGRP_CHANGES_ID, GFP_KERNEL);
}

/* Announces rules added or deleted: the new count, and the rule if one. */
void mbstate_notify_rules(struct mbstate_net *mn, struct mb_entry *mb, u8 cmd,
			  const struct mbfw_rule *one)
{
	struct sk_buff *skb;
	void *hdr;

	skb = genlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	if (!skb)
		return;
	hdr = genlmsg_put(skb, 0, 0, &mbstate_family, 0, cmd);
	if (!hdr || nla_put(skb, MBSTATE_A_MAC, ETH_ALEN, mb->mac) ||
	    nla_put_u32(skb, MBSTATE_A_NRULES, mbstate_nrules(mb)) ||
	    (one && mbstate_rule_put(skb, one))) {
		nlmsg_free(skb);
		return;
	}
	genlmsg_end(skb, hdr);
	genlmsg_multicast_netns(&mbstate_family, mn->net, skb, 0,
				MBSTATE_MCGRP_CHANGES_ID, GFP_KERNEL);
}

/* The middlebox named by MBSTATE_A_MAC, or NULL with the reason said. */
static struct mb_entry *mbstate_mb_get(struct mbstate_net *mn,
				       struct genl_info *info)
{
	struct mb_entry *mb;

	if (GENL_REQ_ATTR_CHECK(info, MBSTATE_A_MAC)) {
		NL_SET_ERR_MSG(info->extack, "the middlebox MAC address is missing");
		return ERR_PTR(-EINVAL);
	}
	mb = mbstate_find(mn, nla_data(info->attrs[MBSTATE_A_MAC]));
	if (!mb) {
		NL_SET_ERR_MSG_ATTR(info->extack, info->attrs[MBSTATE_A_MAC],
				    "no middlebox is registered with this MAC address");
		return ERR_PTR(-ENOENT);
	}
	return mb;
}

static bool mbstate_ip_unicast(__be32 ip)
{
	return ip && !ipv4_is_multicast(ip) && !ipv4_is_lbcast(ip);
}

static int mbstate_get_mb_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct mbstate_net *mn = mbstate_pernet(genl_info_net(info));
	struct sk_buff *msg = NULL;
	struct mb_entry *mb;
	int ret;

	mutex_lock(&mbstate_mutex);
	mb = mbstate_mb_get(mn, info);
	if (IS_ERR(mb)) {
		ret = PTR_ERR(mb);
		goto out;
	}
	msg = mbstate_mb_msg(mb, info->snd_portid, info->snd_seq,
			     MBSTATE_CMD_GET_MB);
	ret = msg ? 0 : -ENOMEM;
out:
	mutex_unlock(&mbstate_mutex);
	return msg ? genlmsg_reply(msg, info) : ret;
}

/* Dumps keep their position in cb->args[0]; cb->seq catches changes. */
static int mbstate_get_mb_dumpit(struct sk_buff *skb,
				 struct netlink_callback *cb)
{
	struct mbstate_net *mn = mbstate_pernet(sock_net(skb->sk));
	struct mb_entry *mb;
	long idx = 0;
	void *hdr;

	mutex_lock(&mbstate_mutex);
	cb->seq = mn->gen;
	list_for_each_entry(mb, &mn->mbs, list) {
		if (idx++ < cb->args[0])
			continue;
		hdr = genlmsg_put(skb, NETLINK_CB(cb->skb).portid,
				  cb->nlh->nlmsg_seq, &mbstate_family,
				  NLM_F_MULTI, MBSTATE_CMD_GET_MB);
		if (!hdr)
			break;
		genl_dump_check_consistent(cb, hdr);
		if (mbstate_mb_put(skb, mb)) {
			genlmsg_cancel(skb, hdr);
			/* not even alone: the reader's buffer is too small */
			if (!skb->len) {
				mutex_unlock(&mbstate_mutex);
				return -EMSGSIZE;
			}
			break;
		}
		genlmsg_end(skb, hdr);
		cb->args[0] = idx;
	}
	mutex_unlock(&mbstate_mutex);
	return skb->len;
}

static int mbstate_get_rule_dumpit(struct sk_buff *skb,
				   struct netlink_callback *cb)
{
	const struct genl_dumpit_info *info = genl_dumpit_info(cb);
	struct mbstate_net *mn = mbstate_pernet(sock_net(skb->sk));
	struct nlattr *mac = info->attrs[MBSTATE_A_MAC];
	struct mbfw_ruleset *rs;
	struct mb_entry *mb;
	int ret = 0;
	u32 i;

	if (!mac) {
		NL_SET_ERR_MSG(cb->extack, "the middlebox MAC address is missing");
		return -EINVAL;
	}
	mutex_lock(&mbstate_mutex);
	/* not mn->gen: other middleboxes' changes do not disturb the dump */
	cb->seq = mn->gen;
	mb = mbstate_find(mn, nla_data(mac));
	if (mb)
		cb->seq = mb->fw_gen ?: 1;
	if (!mb) {
		/* also when it was unregistered while the dump ran */
		NL_SET_ERR_MSG_ATTR(cb->extack, mac,
				    "no middlebox is registered with this MAC address");
		ret = -ENOENT;
		goto out;
	}
	rs = mbstate_deref(mb->fw);
	for (i = cb->args[0]; rs && i < rs->n_rules; i++) {
		void *hdr = genlmsg_put(skb, NETLINK_CB(cb->skb).portid,
					cb->nlh->nlmsg_seq, &mbstate_family,
					NLM_F_MULTI, MBSTATE_CMD_GET_RULE);

		if (!hdr)
			break;
		genl_dump_check_consistent(cb, hdr);
		if (nla_put(skb, MBSTATE_A_MAC, ETH_ALEN, mb->mac) ||
		    mbstate_rule_put(skb, rs->rules[i])) {
			genlmsg_cancel(skb, hdr);
			break;
		}
		genlmsg_end(skb, hdr);
		cb->args[0] = i + 1;
	}
	ret = skb->len;
out:
	mutex_unlock(&mbstate_mutex);
	return ret;
}

static int mbstate_new_mb_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct mbstate_net *mn = mbstate_pernet(genl_info_net(info));
	bool replace = nla_get_flag(info->attrs[MBSTATE_A_REPLACE]);
	struct netlink_ext_ack *extack = info->extack;
	struct mblb_req *lb = NULL;
	bool created = false;
	struct mb_entry *mb;
	unsigned int bit;
	const u8 *mac;
	u32 services;
	u16 vlan = 0;
	__be32 ip;
	int ret;

	if (GENL_REQ_ATTR_CHECK(info, MBSTATE_A_MAC) ||
	    GENL_REQ_ATTR_CHECK(info, MBSTATE_A_IPV4) ||
	    GENL_REQ_ATTR_CHECK(info, MBSTATE_A_SERVICES)) {
		NL_SET_ERR_MSG(extack,
			       "registration needs a MAC address, an IPv4 address and a service");
		return -EINVAL;
	}
	mac = nla_data(info->attrs[MBSTATE_A_MAC]);
	ip = nla_get_in_addr(info->attrs[MBSTATE_A_IPV4]);
	services = nla_get_u32(info->attrs[MBSTATE_A_SERVICES]);
	if (info->attrs[MBSTATE_A_VLAN])
		vlan = nla_get_u16(info->attrs[MBSTATE_A_VLAN]);
	if (!is_valid_ether_addr(mac)) {
		NL_SET_ERR_MSG_ATTR(extack, info->attrs[MBSTATE_A_MAC],
				    "the middlebox MAC address must be unicast and not zero");
		return -EINVAL;
	}
	if (!mbstate_ip_unicast(ip)) {
		NL_SET_ERR_MSG_ATTR(extack, info->attrs[MBSTATE_A_IPV4],
				    "the middlebox IPv4 address must be unicast");
		return -EINVAL;
	}
	if (hweight32(services) != 1) {
		NL_SET_ERR_MSG_ATTR(extack, info->attrs[MBSTATE_A_SERVICES],
				    "register for exactly one service at a time");
		return -EINVAL;
	}
	bit = __ffs(services);
	if (bit == MBSTATE_SVC_L_BIT) {
		lb = kmalloc(sizeof(*lb), GFP_KERNEL);
		if (!lb)
			return -ENOMEM;
		ret = mbstate_lb_req_parse(info, ip, mac, lb);
		if (ret) {
			kfree(lb);
			return ret;
		}
	} else if (info->attrs[MBSTATE_A_LB]) {
		NL_SET_ERR_MSG_ATTR(extack, info->attrs[MBSTATE_A_LB],
				    "a load-balancer configuration belongs to service L only");
		return -EINVAL;
	} else if (replace) {
		NL_SET_ERR_MSG_ATTR(extack, info->attrs[MBSTATE_A_REPLACE],
				    "replacing a registration applies to service L only");
		return -EINVAL;
	}

	mutex_lock(&mbstate_mutex);
	if (!mbstate_service_available(bit)) {
		if (bit == MBSTATE_SVC_L_BIT)
			NL_SET_ERR_MSG(extack,
				       "the load-balancer offload is not loaded (modprobe mblb)");
		else
			NL_SET_ERR_MSG(extack,
				       "the firewall offload is not loaded (modprobe mbfw)");
		ret = -EOPNOTSUPP;
		goto out;
	}
	mb = mbstate_find(mn, mac);
	if (mb) {
		if (mb->ip != ip) {
			NL_SET_ERR_MSG_ATTR(extack, info->attrs[MBSTATE_A_IPV4],
					    "the middlebox is registered with another IPv4 address");
			ret = -EEXIST;
			goto out;
		}
		if (mb->vlan != vlan) {
			struct nlattr *va = info->attrs[MBSTATE_A_VLAN];

			if (!mb->vlan)
				NL_SET_ERR_MSG_ATTR(extack, va,
						    "the middlebox is registered without a VLAN (unregister it to bind it to one)");
			else if (vlan)
				NL_SET_ERR_MSG_ATTR(extack, va,
						    "the middlebox is bound to another VLAN (unregister it to change it)");
			else
				NL_SET_ERR_MSG(extack,
					       "the middlebox is bound to a VLAN: register it again with the same VLAN");
			ret = -EEXIST;
			goto out;
		}
		if ((mb->services & services) && !replace) {
			NL_SET_ERR_MSG(extack,
				       "the middlebox is already registered for this service");
			ret = -EEXIST;
			goto out;
		}
	} else {
		if (mn->count >= READ_ONCE(max_middleboxes)) {
			NL_SET_ERR_MSG(extack,
				       "too many middleboxes in this network namespace (module parameter max_middleboxes)");
			ret = -ENOSPC;
			goto out;
		}
		mb = mbstate_mb_new(mn, mac, ip, vlan);
		if (!mb) {
			ret = -ENOMEM;
			goto out;
		}
		created = true;
	}
	if (bit == MBSTATE_SVC_L_BIT) {
		ret = mbstate_lb_set(mn, mb, lb, extack);
		if (ret) {
			/* never announced, and without services: no frame
			 * was offloaded for it */
			if (created)
				mbstate_mb_del(mn, mb);
			goto out;
		}
	}
	mb->services |= services;
	mn->gen++;
	mbstate_notify_mb(mn, mb, MBSTATE_CMD_NEW_MB);
	ret = 0;
out:
	mutex_unlock(&mbstate_mutex);
	kfree(lb);
	return ret;
}

static int mbstate_del_mb_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct mbstate_net *mn = mbstate_pernet(genl_info_net(info));
	struct mb_entry *mb;
	int ret = 0;

	mutex_lock(&mbstate_mutex);
	mb = mbstate_mb_get(mn, info);
	if (IS_ERR(mb)) {
		ret = PTR_ERR(mb);
		goto out;
	}
	mn->gen++;
	mbstate_notify_mb(mn, mb, MBSTATE_CMD_DEL_MB);
	mbstate_mb_del(mn, mb);
out:
	mutex_unlock(&mbstate_mutex);
	return ret;
}

static int mbstate_set_mb_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct mbstate_net *mn = mbstate_pernet(genl_info_net(info));
	struct mb_entry *mb;
	int ret = 0;

	if (GENL_REQ_ATTR_CHECK(info, MBSTATE_A_ENABLED)) {
		NL_SET_ERR_MSG(info->extack, "MBSTATE_A_ENABLED is missing");
		return -EINVAL;
	}
	mutex_lock(&mbstate_mutex);
	mb = mbstate_mb_get(mn, info);
	if (IS_ERR(mb)) {
		ret = PTR_ERR(mb);
		goto out;
	}
	WRITE_ONCE(mb->enabled, !!nla_get_u8(info->attrs[MBSTATE_A_ENABLED]));
	mn->gen++;
	mbstate_notify_mb(mn, mb, MBSTATE_CMD_SET_MB);
out:
	mutex_unlock(&mbstate_mutex);
	return ret;
}

static u32 mbstate_rule_hash(const struct mb_rule *r)
{
	BUILD_BUG_ON(sizeof(*r) % sizeof(u32));
	return jhash2((const u32 *)r, sizeof(*r) / sizeof(u32), 0);
}

/*
 * Refuses a rule set with two equal rules, in time linear in its size: an
 * open-addressing set of rule indices, twice as large as the set.
 */
static int mbstate_rules_unique(struct mbfw_rule **rules, u32 n,
				struct netlink_ext_ack *extack)
{
	u32 size = roundup_pow_of_two(max(2 * n, 2U)), i, h;
	u32 *slot;
	int ret = 0;

	slot = kvcalloc(size, sizeof(*slot), GFP_KERNEL);
	if (!slot)
		return -ENOMEM;
	for (i = 0; i < n && !ret; i++) {
		for (h = mbstate_rule_hash(&rules[i]->r);; h++) {
			u32 *s = &slot[h & (size - 1)];

			if (!*s) {
				*s = i + 1;
				break;
			}
			if (!memcmp(&rules[*s - 1]->r, &rules[i]->r,
				    sizeof(struct mb_rule))) {
				NL_SET_ERR_MSG(extack,
					       "the middlebox already has this rule");
				ret = -EEXIST;
				break;
			}
		}
	}
	kvfree(slot);
	return ret;
}

/*
 * What a replacement keeps of the old rule set: a rule of the new set equal
 * to a rule of the old one is that rule object, with its id and counters,
 * as an add or a delete keeps every rule it does not touch. An
 * open-addressing index of the old rules, twice as large as the set.
 */
struct mbstate_carry {
	const struct mbfw_ruleset *old;
	u32 size;
	u32 *slot;		/* index + 1 in old->rules; 0: empty */
	unsigned long *taken;	/* old rules that the new set took */
};

static int mbstate_carry_init(struct mbstate_carry *c,
			      const struct mbfw_ruleset *old)
{
	u32 i, h;

	memset(c, 0, sizeof(*c));
	if (!old || !old->n_rules)
		return 0;
	c->size = roundup_pow_of_two(2 * old->n_rules);
	c->slot = kvcalloc(c->size, sizeof(*c->slot), GFP_KERNEL);
	c->taken = bitmap_zalloc(old->n_rules, GFP_KERNEL);
	if (!c->slot || !c->taken) {
		kvfree(c->slot);
		bitmap_free(c->taken);
		return -ENOMEM;
	}
	c->old = old;
	for (i = 0; i < old->n_rules; i++) {
		for (h = mbstate_rule_hash(&old->rules[i]->r);; h++) {
			u32 *s = &c->slot[h & (c->size - 1)];

			if (!*s) {
				*s = i + 1;
				break;
			}
		}
	}
	return 0;
}

static void mbstate_carry_free(struct mbstate_carry *c)
{
	kvfree(c->slot);
	bitmap_free(c->taken);
}

/*
 * The old rule equal to @r (the old set has no two equal rules), marked
 * taken; NULL if there is none or an earlier rule of the new set took it.
 */
static struct mbfw_rule *mbstate_carry_take(struct mbstate_carry *c,
					    const struct mb_rule *r)
{
	u32 h, s;

	if (!c->old)
		return NULL;
	for (h = mbstate_rule_hash(r);; h++) {
		s = c->slot[h & (c->size - 1)];
		if (!s)
			return NULL;
		if (!memcmp(&c->old->rules[s - 1]->r, r, sizeof(*r)))
			break;
	}
	if (test_bit(s - 1, c->taken))
		return NULL;
	__set_bit(s - 1, c->taken);
	return c->old->rules[s - 1];
}

/* Whether @rule is one of the old set's (taken by the new one). */
static bool mbstate_carry_owns(const struct mbstate_carry *c,
			       const struct mbfw_rule *rule)
{
	u32 h, s;

	if (!c->old)
		return false;
	for (h = mbstate_rule_hash(&rule->r);; h++) {
		s = c->slot[h & (c->size - 1)];
		if (!s)
			return false;
		if (c->old->rules[s - 1] == rule)
			return true;
	}
}

static int mbstate_new_rule_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct mbstate_net *mn = mbstate_pernet(genl_info_net(info));
	bool replace = nla_get_flag(info->attrs[MBSTATE_A_REPLACE]);
	struct netlink_ext_ack *extack = info->extack;
	struct mbstate_carry carry = { };
	struct mbfw_rule **all = NULL, **gone = NULL;
	struct mbfw_ruleset *old;
	struct nlattr *nest;
	struct mb_entry *mb;
	u32 n_old, n_new = 0, n_gone = 0, i, j;
	int rem, ret;

	if (GENL_REQ_ATTR_CHECK(info, MBSTATE_A_RULES)) {
		NL_SET_ERR_MSG(extack, "MBSTATE_A_RULES is missing");
		return -EINVAL;
	}
	/* check every rule before touching anything; parsed again below */
	nla_for_each_nested(nest, info->attrs[MBSTATE_A_RULES], rem) {
		struct mb_rule r;

		if (nla_type(nest) != MBSTATE_A_RULE) {
			NL_SET_ERR_MSG_ATTR(extack, nest,
					    "MBSTATE_A_RULES holds only MBSTATE_A_RULE nests");
			return -EINVAL;
		}
		ret = mbstate_rule_parse(nest, &r, false, extack);
		if (ret)
			return ret;
		if (mbc_rule_entries(&r) > MBC_MAX_RULE_ENTRIES) {
			NL_SET_ERR_MSG_ATTR(extack, nest, "port ranges too wide");
			return -EINVAL;
		}
		n_new++;
	}
	if (!n_new && !replace) {
		NL_SET_ERR_MSG(extack, "no rule to add");
		return -EINVAL;
	}

	mutex_lock(&mbstate_mutex);
	mb = mbstate_mb_get(mn, info);
	if (IS_ERR(mb)) {
		ret = PTR_ERR(mb);
		goto out;
	}
	if (!(mb->services & MBSTATE_SVC_F)) {
		NL_SET_ERR_MSG(extack,
			       "the middlebox is not registered for the firewall service (R F <MAC> <IP>)");
		ret = -EOPNOTSUPP;
		goto out;
	}
	old = mbstate_deref(mb->fw);
	n_old = replace || !old ? 0 : old->n_rules;
	if ((u64)n_old + n_new > READ_ONCE(max_rules)) {
		NL_SET_ERR_MSG(extack,
			       "too many rules for this middlebox (module parameter max_rules)");
		ret = -ENOSPC;
		goto out;
	}
	all = kvcalloc(n_old + n_new, sizeof(*all), GFP_KERNEL);
	if (!all && n_old + n_new) {
		ret = -ENOMEM;
		goto out;
	}
	if (replace) {
		ret = mbstate_carry_init(&carry, old);
		if (ret)
			goto out;
	}
	if (n_old)
		memcpy(all, old->rules, n_old * sizeof(*all));
	i = n_old;
	nla_for_each_nested(nest, info->attrs[MBSTATE_A_RULES], rem) {
		struct mb_rule r;

		ret = mbstate_rule_parse(nest, &r, false, extack);
		if (ret)
			goto undo;
		all[i] = mbstate_carry_take(&carry, &r);
		if (!all[i])
			all[i] = mbstate_rule_new(mb, &r);
		if (!all[i]) {
			ret = -ENOMEM;
			goto undo;
		}
		i++;
	}
	ret = mbstate_rules_unique(all, i, extack);
	if (ret)
		goto undo;
	/*
	 * The old rules a replace drops, collected now: once the new set is
	 * published the old one is retired (call_rcu) and may be freed at
	 * any moment, mbstate_mutex or not; nothing below reads it.
	 */
	if (replace && old) {
		gone = kvcalloc(old->n_rules, sizeof(*gone), GFP_KERNEL);
		if (!gone) {
			ret = -ENOMEM;
			goto undo;
		}
		for (j = 0; j < old->n_rules; j++)
			if (!carry.old || !test_bit(j, carry.taken))
				gone[n_gone++] = old->rules[j];
	}
	ret = mbstate_fw_replace(mb, all, i, extack);
	if (ret)
		goto undo;
	old = NULL;
	mn->gen++;
	mbstate_notify_rules(mn, mb, MBSTATE_CMD_NEW_RULE,
			     n_new == 1 && !replace ? all[n_old] : NULL);
	/* no reader finds them from now on: freed after a grace period */
	for (j = 0; j < n_gone; j++)
		mbstate_rule_free(gone[j]);
	goto out;

undo:
	/* never published, never seen by a reader; old rules stay */
	while (i-- > n_old) {
		if (mbstate_carry_owns(&carry, all[i]))
			continue;
		free_percpu(all[i]->ctr);
		kfree(all[i]);
	}
out:
	mbstate_carry_free(&carry);
	kvfree(gone);
	kvfree(all);
	mutex_unlock(&mbstate_mutex);
	return ret;
}

static int mbstate_del_rule_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct mbstate_net *mn = mbstate_pernet(genl_info_net(info));
	struct netlink_ext_ack *extack = info->extack;
	struct mbfw_rule **rules = NULL, *gone_one;
	struct mbfw_ruleset *old;
	u32 i, n_old, n_keep = 0, n_gone;
	struct mb_entry *mb;
	struct mb_rule sel;
	int ret;

	if (GENL_REQ_ATTR_CHECK(info, MBSTATE_A_RULE)) {
		NL_SET_ERR_MSG(extack, "MBSTATE_A_RULE (the selector) is missing");
		return -EINVAL;
	}
	ret = mbstate_rule_parse(info->attrs[MBSTATE_A_RULE], &sel, true,
				 extack);
	if (ret)
		return ret;

	mutex_lock(&mbstate_mutex);
	mb = mbstate_mb_get(mn, info);
	if (IS_ERR(mb)) {
		ret = PTR_ERR(mb);
		goto out;
	}
	old = mbstate_deref(mb->fw);
	n_old = old ? old->n_rules : 0;
	if (n_old) {
		/* the rules kept from the front, the deleted ones from the back */
		rules = kvcalloc(n_old, sizeof(*rules), GFP_KERNEL);
		if (!rules) {
			ret = -ENOMEM;
			goto out;
		}
		for (i = 0, n_gone = 0; i < n_old; i++) {
			if (!mb_rule_selects(&sel, &old->rules[i]->r))
				rules[n_keep++] = old->rules[i];
			else
				rules[n_old - ++n_gone] = old->rules[i];
		}
	}
	if (n_keep == n_old) {
		NL_SET_ERR_MSG(extack, "no rule of the middlebox matches");
		ret = -ENOENT;
		goto out;
	}
	n_gone = n_old - n_keep;
	gone_one = n_gone == 1 ? rules[n_keep] : NULL;
	/*
	 * Everything needed of the old set is in @rules: once the new set is
	 * published the old one is retired and may be freed at any moment,
	 * mbstate_mutex or not.
	 */
	ret = mbstate_fw_replace(mb, rules, n_keep, extack);
	if (ret)
		goto out;
	old = NULL;
	mn->gen++;
	mbstate_notify_rules(mn, mb, MBSTATE_CMD_DEL_RULE, gone_one);
	/* no reader finds them from now on: freed after a grace period */
	for (i = n_keep; i < n_old; i++)
		mbstate_rule_free(rules[i]);
out:
	kvfree(rules);
	mutex_unlock(&mbstate_mutex);
	return ret;
}

/*
 * GET_RULE and GET_FLOW are dumps. Without a doit the core refuses such a
 * request without NLM_F_DUMP with a bare EOPNOTSUPP; this one says why.
 */
static int mbstate_dump_only_doit(struct sk_buff *skb, struct genl_info *info)
{
	NL_SET_ERR_MSG(info->extack,
		       "this command is a dump only: set NLM_F_DUMP");
	return -EOPNOTSUPP;
}

static const struct genl_small_ops mbstate_ops[] = {
	{
		.cmd = MBSTATE_CMD_GET_MB,
		.doit = mbstate_get_mb_doit,
		.dumpit = mbstate_get_mb_dumpit,
		.flags = GENL_UNS_ADMIN_PERM,
	}, {
		.cmd = MBSTATE_CMD_NEW_MB,
		.doit = mbstate_new_mb_doit,
		.flags = GENL_UNS_ADMIN_PERM,
	}, {
		.cmd = MBSTATE_CMD_DEL_MB,
		.doit = mbstate_del_mb_doit,
		.flags = GENL_UNS_ADMIN_PERM,
	}, {
		.cmd = MBSTATE_CMD_SET_MB,
		.doit = mbstate_set_mb_doit,
		.flags = GENL_UNS_ADMIN_PERM,
	}, {
		.cmd = MBSTATE_CMD_NEW_RULE,
		.doit = mbstate_new_rule_doit,
		.flags = GENL_UNS_ADMIN_PERM,
	}, {
		.cmd = MBSTATE_CMD_DEL_RULE,
		.doit = mbstate_del_rule_doit,
		.flags = GENL_UNS_ADMIN_PERM,
	}, {
		.cmd = MBSTATE_CMD_GET_RULE,
		.doit = mbstate_dump_only_doit,
		.dumpit = mbstate_get_rule_dumpit,
		.flags = GENL_UNS_ADMIN_PERM,
	}, {
		.cmd = MBSTATE_CMD_NEW_BACKEND,
		.doit = mbstate_new_backend_doit,
		.flags = GENL_UNS_ADMIN_PERM,
	}, {
		.cmd = MBSTATE_CMD_DEL_BACKEND,
		.doit = mbstate_del_backend_doit,
		.flags = GENL_UNS_ADMIN_PERM,
	}, {
		.cmd = MBSTATE_CMD_GET_FLOW,
		.doit = mbstate_dump_only_doit,
		.dumpit = mbstate_get_flow_dumpit,
		.flags = GENL_UNS_ADMIN_PERM,
	},
};

struct genl_family mbstate_family __ro_after_init = {
	.name = MBSTATE_GENL_NAME,
	.version = MBSTATE_GENL_VERSION,
	.maxattr = MBSTATE_A_MAX,
	.policy = mbstate_policy,
	.netnsok = true,
	.module = THIS_MODULE,
	.small_ops = mbstate_ops,
	.n_small_ops = ARRAY_SIZE(mbstate_ops),
	.mcgrps = mbstate_mcgrps,
	.n_mcgrps = ARRAY_SIZE(mbstate_mcgrps),
};

int __init mbstate_genl_init(void)
{
	return genl_register_family(&mbstate_family);
}

void mbstate_genl_exit(void)
{
	genl_unregister_family(&mbstate_family);
}
