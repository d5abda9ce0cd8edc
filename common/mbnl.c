// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * mbnl.c - userspace client of the mbstate generic netlink family (libmnl).
 *
 * Messages are built with libmnl and replies are walked with its helpers,
 * but the receive loop is our own (mbnl_talk) rather than mnl_cb_run():
 * libmnl 1.0.4 stops at the first NLM_F_DUMP_INTR message, leaving the rest
 * of the dump in the socket, ignores the error code that NLMSG_DONE carries
 * when a dump fails, and does not read extended ack TLVs. mbnl_talk reads
 * every reply of a request to its end, notes NLM_F_DUMP_INTR, and turns the
 * kernel's NLMSGERR_ATTR_MSG into the caller's error sentence.
 */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <libmnl/libmnl.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <linux/mbstate.h>
#include <mbvisor/mbnl.h>

/*
 * Receive buffer: a dump never sends more than 32 KiB in one datagram; an
 * error ack echoes our request (up to MBNL_SEND_BUF) unless NETLINK_CAP_ACK
 * took, plus the extended ack TLVs.
 */
#define MBNL_RECV_BUF	(128 * 1024)
/* Request buffer: the rules nest is at most 64 KiB, plus the headers. */
#define MBNL_SEND_BUF	(80 * 1024)
/* Largest netlink attribute (nla_len is 16 bits). */
#define MBNL_ATTR_MAX_LEN	0xffff
/* Dump attempts before giving up on a registry that keeps changing. */
#define MBNL_DUMP_TRIES	5
/* Receive buffer asked for by the monitor, so bursts are not lost. */
#define MBNL_MONITOR_RCVBUF	(4 * 1024 * 1024)

struct mbnl {
	struct mnl_socket *sock;
	unsigned int portid;
	unsigned int seq;
	uint16_t family;
	uint32_t mcgrp;			/* MBSTATE_MCGRP_CHANGES */
	bool has_mcgrp;
	char *rbuf;
	char *sbuf;
};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* --- Attribute parsing -------------------------------------------------- */

struct attr_policy {
	enum mnl_attr_data_type type;	/* MNL_TYPE_UNSPEC: not checked */
	size_t len;			/* exact length, for MNL_TYPE_BINARY */
};

struct attr_table {
	const struct nlattr **tb;
	const struct attr_policy *policy;
	unsigned int max;
	int bad;			/* type of the first invalid attribute */
};

/* Attributes newer than our header are skipped; known ones are validated. */
static int attr_table_cb(const struct nlattr *attr, void *data)
{
	struct attr_table *t = data;
	unsigned int type = mnl_attr_get_type(attr);
	const struct attr_policy *p;
	int ret;

	if (type > t->max)
		return MNL_CB_OK;
	p = &t->policy[type];
	if (p->type != MNL_TYPE_UNSPEC) {
		if (p->len)
			ret = mnl_attr_validate2(attr, p->type, p->len);
		else
			ret = mnl_attr_validate(attr, p->type);
		if (ret < 0) {
			t->bad = type;
			return MNL_CB_ERROR;
		}
	}
	t->tb[type] = attr;
	return MNL_CB_OK;
}

/* Parses the attributes of @nlh after @offset bytes of payload into @tb. */
static int parse_msg(const struct nlmsghdr *nlh, size_t offset,
		     const struct attr_policy *policy, unsigned int max,
		     const struct nlattr **tb, char *err, size_t errlen)
{
	struct attr_table t = { tb, policy, max, -1 };

	memset(tb, 0, (max + 1) * sizeof(*tb));
	if (mnl_nlmsg_get_payload_len(nlh) < offset ||
	    mnl_attr_parse(nlh, offset, attr_table_cb, &t) != MNL_CB_OK) {
		set_err(err, errlen,
			"malformed netlink message from the kernel (attribute %d)",
			t.bad);
		return -EPROTO;
	}
	return 0;
}

static int parse_nest(const struct nlattr *nest,
		      const struct attr_policy *policy, unsigned int max,
		      const struct nlattr **tb, char *err, size_t errlen)
{
	struct attr_table t = { tb, policy, max, -1 };

	memset(tb, 0, (max + 1) * sizeof(*tb));
	if (mnl_attr_parse_nested(nest, attr_table_cb, &t) != MNL_CB_OK) {
		set_err(err, errlen,
			"malformed netlink nest %u from the kernel (attribute %d)",
			mnl_attr_get_type(nest), t.bad);
		return -EPROTO;
	}
	return 0;
}

static const struct attr_policy mb_policy[MBSTATE_A_MAX + 1] = {
	[MBSTATE_A_MAC]		= { MNL_TYPE_BINARY, MB_ETH_ALEN },
	[MBSTATE_A_IPV4]	= { MNL_TYPE_U32, 0 },
	[MBSTATE_A_SERVICES]	= { MNL_TYPE_U32, 0 },
	[MBSTATE_A_ENABLED]	= { MNL_TYPE_U8, 0 },
	[MBSTATE_A_NRULES]	= { MNL_TYPE_U32, 0 },
	[MBSTATE_A_RULES]	= { MNL_TYPE_NESTED, 0 },
	[MBSTATE_A_RULE]	= { MNL_TYPE_NESTED, 0 },
	[MBSTATE_A_LB]		= { MNL_TYPE_NESTED, 0 },
	[MBSTATE_A_STATS]	= { MNL_TYPE_NESTED, 0 },
	[MBSTATE_A_BACKEND]	= { MNL_TYPE_NESTED, 0 },
	[MBSTATE_A_FLOW]	= { MNL_TYPE_NESTED, 0 },
	[MBSTATE_A_VLAN]	= { MNL_TYPE_U16, 0 },
};

static const struct attr_policy rule_policy[MBSTATE_RULE_A_MAX + 1] = {
	[MBSTATE_RULE_A_CLASS]		= { MNL_TYPE_U8, 0 },
	[MBSTATE_RULE_A_FIELDS]		= { MNL_TYPE_U8, 0 },
	[MBSTATE_RULE_A_ID]		= { MNL_TYPE_U32, 0 },
	[MBSTATE_RULE_A_SRC_MAC]	= { MNL_TYPE_BINARY, MB_ETH_ALEN },
	[MBSTATE_RULE_A_DST_MAC]	= { MNL_TYPE_BINARY, MB_ETH_ALEN },
	[MBSTATE_RULE_A_ETHERTYPE]	= { MNL_TYPE_U16, 0 },
	[MBSTATE_RULE_A_SRC_IPV4]	= { MNL_TYPE_U32, 0 },
	[MBSTATE_RULE_A_SRC_PLEN]	= { MNL_TYPE_U8, 0 },
	[MBSTATE_RULE_A_DST_IPV4]	= { MNL_TYPE_U32, 0 },
	[MBSTATE_RULE_A_DST_PLEN]	= { MNL_TYPE_U8, 0 },
	[MBSTATE_RULE_A_TOS]		= { MNL_TYPE_U8, 0 },
	[MBSTATE_RULE_A_PROTO]		= { MNL_TYPE_U8, 0 },
	[MBSTATE_RULE_A_SPORT_MIN]	= { MNL_TYPE_U16, 0 },
	[MBSTATE_RULE_A_SPORT_MAX]	= { MNL_TYPE_U16, 0 },
	[MBSTATE_RULE_A_DPORT_MIN]	= { MNL_TYPE_U16, 0 },
	[MBSTATE_RULE_A_DPORT_MAX]	= { MNL_TYPE_U16, 0 },
	[MBSTATE_RULE_A_PACKETS]	= { MNL_TYPE_U64, 0 },
	[MBSTATE_RULE_A_BYTES]		= { MNL_TYPE_U64, 0 },
};

static const struct attr_policy lb_policy[MBSTATE_LB_A_MAX + 1] = {
	[MBSTATE_LB_A_TYPE]	= { MNL_TYPE_U8, 0 },
	[MBSTATE_LB_A_SRC_IPV4]	= { MNL_TYPE_U32, 0 },
	[MBSTATE_LB_A_DST_IPV4]	= { MNL_TYPE_U32, 0 },
	[MBSTATE_LB_A_BACKENDS]	= { MNL_TYPE_NESTED, 0 },
	[MBSTATE_LB_A_FLOWS]	= { MNL_TYPE_U32, 0 },
	[MBSTATE_LB_A_STATS]	= { MNL_TYPE_NESTED, 0 },
};

static const struct attr_policy be_policy[MBSTATE_BE_A_MAX + 1] = {
	[MBSTATE_BE_A_IPV4]		= { MNL_TYPE_U32, 0 },
	[MBSTATE_BE_A_MAC]		= { MNL_TYPE_BINARY, MB_ETH_ALEN },
	[MBSTATE_BE_A_WEIGHT]		= { MNL_TYPE_U32, 0 },
	[MBSTATE_BE_A_STATE]		= { MNL_TYPE_U8, 0 },
	[MBSTATE_BE_A_MAC_SOURCE]	= { MNL_TYPE_U8, 0 },
	[MBSTATE_BE_A_FLOWS]		= { MNL_TYPE_U32, 0 },
	[MBSTATE_BE_A_NEW_FLOWS]	= { MNL_TYPE_U64, 0 },
	[MBSTATE_BE_A_PACKETS]		= { MNL_TYPE_U64, 0 },
	[MBSTATE_BE_A_BYTES]		= { MNL_TYPE_U64, 0 },
	[MBSTATE_BE_A_RET_PACKETS]	= { MNL_TYPE_U64, 0 },
	[MBSTATE_BE_A_RET_BYTES]	= { MNL_TYPE_U64, 0 },
};

static const struct attr_policy lb_stats_policy[MBSTATE_LB_STATS_A_MAX + 1] = {
	[MBSTATE_LB_STATS_A_NEW_FLOWS]		= { MNL_TYPE_U64, 0 },
	[MBSTATE_LB_STATS_A_REDIRECTED_PACKETS]	= { MNL_TYPE_U64, 0 },
	[MBSTATE_LB_STATS_A_REDIRECTED_BYTES]	= { MNL_TYPE_U64, 0 },
	[MBSTATE_LB_STATS_A_NOT_SELECTED]	= { MNL_TYPE_U64, 0 },
	[MBSTATE_LB_STATS_A_UNHANDLED]		= { MNL_TYPE_U64, 0 },
	[MBSTATE_LB_STATS_A_NO_FLOW]		= { MNL_TYPE_U64, 0 },
	[MBSTATE_LB_STATS_A_NO_BACKEND]		= { MNL_TYPE_U64, 0 },
	[MBSTATE_LB_STATS_A_MAC_UNKNOWN]	= { MNL_TYPE_U64, 0 },
	[MBSTATE_LB_STATS_A_TABLE_FULL]		= { MNL_TYPE_U64, 0 },
	[MBSTATE_LB_STATS_A_COLLISION]		= { MNL_TYPE_U64, 0 },
	[MBSTATE_LB_STATS_A_FROM_MB_PORT]	= { MNL_TYPE_U64, 0 },
	[MBSTATE_LB_STATS_A_MB_PORT_UNKNOWN]	= { MNL_TYPE_U64, 0 },
	[MBSTATE_LB_STATS_A_OVER_QUOTA]		= { MNL_TYPE_U64, 0 },
};

static const struct attr_policy flow_policy[MBSTATE_FLOW_A_MAX + 1] = {
	[MBSTATE_FLOW_A_PROTO]		= { MNL_TYPE_U8, 0 },
	[MBSTATE_FLOW_A_CLIENT_IPV4]	= { MNL_TYPE_U32, 0 },
	[MBSTATE_FLOW_A_CLIENT_PORT]	= { MNL_TYPE_U16, 0 },
	[MBSTATE_FLOW_A_VIP_IPV4]	= { MNL_TYPE_U32, 0 },
	[MBSTATE_FLOW_A_VIP_PORT]	= { MNL_TYPE_U16, 0 },
	[MBSTATE_FLOW_A_BACKEND_IPV4]	= { MNL_TYPE_U32, 0 },
	[MBSTATE_FLOW_A_BACKEND_MAC]	= { MNL_TYPE_BINARY, MB_ETH_ALEN },
	[MBSTATE_FLOW_A_STATE]		= { MNL_TYPE_U8, 0 },
	[MBSTATE_FLOW_A_IDLE_MS]	= { MNL_TYPE_U32, 0 },
};

static const struct attr_policy stats_policy[MBSTATE_STATS_A_MAX + 1] = {
	[MBSTATE_STATS_A_RX_PACKETS]		= { MNL_TYPE_U64, 0 },
	[MBSTATE_STATS_A_RX_BYTES]		= { MNL_TYPE_U64, 0 },
	[MBSTATE_STATS_A_FW_DROP_PACKETS]	= { MNL_TYPE_U64, 0 },
	[MBSTATE_STATS_A_FW_DROP_BYTES]		= { MNL_TYPE_U64, 0 },
	[MBSTATE_STATS_A_DISABLED_PACKETS]	= { MNL_TYPE_U64, 0 },
	[MBSTATE_STATS_A_UNBOUND_PACKETS]	= { MNL_TYPE_U64, 0 },
};

static const struct attr_policy ctrl_policy[CTRL_ATTR_MAX + 1] = {
	[CTRL_ATTR_FAMILY_ID]		= { MNL_TYPE_U16, 0 },
	[CTRL_ATTR_FAMILY_NAME]		= { MNL_TYPE_NUL_STRING, 0 },
	[CTRL_ATTR_VERSION]		= { MNL_TYPE_U32, 0 },
	[CTRL_ATTR_MCAST_GROUPS]	= { MNL_TYPE_NESTED, 0 },
};

static const struct attr_policy mcgrp_policy[CTRL_ATTR_MCAST_GRP_MAX + 1] = {
	[CTRL_ATTR_MCAST_GRP_NAME]	= { MNL_TYPE_NUL_STRING, 0 },
	[CTRL_ATTR_MCAST_GRP_ID]	= { MNL_TYPE_U32, 0 },
};

static const struct attr_policy extack_policy[NLMSGERR_ATTR_MAX + 1] = {
	[NLMSGERR_ATTR_MSG]	= { MNL_TYPE_NUL_STRING, 0 },
};

static uint64_t get_u64(const struct nlattr *attr)
{
	return attr ? mnl_attr_get_u64(attr) : 0;
}

/* --- Decoding replies --------------------------------------------------- */

static int missing(const char *what, char *err, size_t errlen)
{
	set_err(err, errlen, "malformed reply from the kernel: no %s", what);
	return -EPROTO;
}

/* A rule nest (MBSTATE_RULE_A_*) into @out; counters and id when given. */
static int decode_rule(const struct nlattr *nest, struct mbnl_rule *out,
		       char *err, size_t errlen)
{
	const struct nlattr *tb[MBSTATE_RULE_A_MAX + 1];
	struct mb_rule *r = &out->rule;
	int ret;

	memset(out, 0, sizeof(*out));
	ret = parse_nest(nest, rule_policy, MBSTATE_RULE_A_MAX, tb,
			 err, errlen);
	if (ret)
		return ret;
	if (!tb[MBSTATE_RULE_A_CLASS])
		return missing("MBSTATE_RULE_A_CLASS", err, errlen);
	if (!tb[MBSTATE_RULE_A_FIELDS])
		return missing("MBSTATE_RULE_A_FIELDS", err, errlen);
	r->cls = mnl_attr_get_u8(tb[MBSTATE_RULE_A_CLASS]);
	r->fields = mnl_attr_get_u8(tb[MBSTATE_RULE_A_FIELDS]);
	if (r->fields & ~mb_class_fields(r->cls)) {
		set_err(err, errlen,
			"malformed rule from the kernel: class %u, fields %u",
			r->cls, r->fields);
		return -EPROTO;
	}
	r->valued = r->fields;

	switch (r->cls) {
	case MBSTATE_CLASS_IP:
		if (r->fields & MBSTATE_FIELD_S) {
			if (!tb[MBSTATE_RULE_A_SRC_IPV4])
				return missing("MBSTATE_RULE_A_SRC_IPV4",
					       err, errlen);
			r->src_ip = mnl_attr_get_u32(tb[MBSTATE_RULE_A_SRC_IPV4]);
			r->src_plen = tb[MBSTATE_RULE_A_SRC_PLEN] ?
				mnl_attr_get_u8(tb[MBSTATE_RULE_A_SRC_PLEN]) : 32;
		}
		if (r->fields & MBSTATE_FIELD_D) {
			if (!tb[MBSTATE_RULE_A_DST_IPV4])
				return missing("MBSTATE_RULE_A_DST_IPV4",
					       err, errlen);
			r->dst_ip = mnl_attr_get_u32(tb[MBSTATE_RULE_A_DST_IPV4]);
			r->dst_plen = tb[MBSTATE_RULE_A_DST_PLEN] ?
				mnl_attr_get_u8(tb[MBSTATE_RULE_A_DST_PLEN]) : 32;
		}
		if (r->fields & MBSTATE_FIELD_T) {
			if (!tb[MBSTATE_RULE_A_TOS])
				return missing("MBSTATE_RULE_A_TOS", err, errlen);
			r->tos = mnl_attr_get_u8(tb[MBSTATE_RULE_A_TOS]);
		}
		if (r->fields & MBSTATE_FIELD_P) {
			if (!tb[MBSTATE_RULE_A_PROTO])
				return missing("MBSTATE_RULE_A_PROTO",
					       err, errlen);
			r->proto = mnl_attr_get_u8(tb[MBSTATE_RULE_A_PROTO]);
		}
		break;
	case MBSTATE_CLASS_MAC:
		if (r->fields & MBSTATE_FIELD_S) {
			if (!tb[MBSTATE_RULE_A_SRC_MAC])
				return missing("MBSTATE_RULE_A_SRC_MAC",
					       err, errlen);
			memcpy(r->src_mac,
			       mnl_attr_get_payload(tb[MBSTATE_RULE_A_SRC_MAC]),
			       MB_ETH_ALEN);
		}
		if (r->fields & MBSTATE_FIELD_D) {
			if (!tb[MBSTATE_RULE_A_DST_MAC])
				return missing("MBSTATE_RULE_A_DST_MAC",
					       err, errlen);
			memcpy(r->dst_mac,
			       mnl_attr_get_payload(tb[MBSTATE_RULE_A_DST_MAC]),
			       MB_ETH_ALEN);
		}
		if (r->fields & MBSTATE_FIELD_P) {
			if (!tb[MBSTATE_RULE_A_ETHERTYPE])
				return missing("MBSTATE_RULE_A_ETHERTYPE",
					       err, errlen);
			r->ethertype = mnl_attr_get_u16(tb[MBSTATE_RULE_A_ETHERTYPE]);
		}
		break;
	case MBSTATE_CLASS_TP:
		if (r->fields & MBSTATE_FIELD_S) {
			if (!tb[MBSTATE_RULE_A_SPORT_MIN])
				return missing("MBSTATE_RULE_A_SPORT_MIN",
					       err, errlen);
			r->sport_min = mnl_attr_get_u16(tb[MBSTATE_RULE_A_SPORT_MIN]);
			r->sport_max = tb[MBSTATE_RULE_A_SPORT_MAX] ?
				mnl_attr_get_u16(tb[MBSTATE_RULE_A_SPORT_MAX]) :
				r->sport_min;
		}
		if (r->fields & MBSTATE_FIELD_D) {
			if (!tb[MBSTATE_RULE_A_DPORT_MIN])
				return missing("MBSTATE_RULE_A_DPORT_MIN",
					       err, errlen);
			r->dport_min = mnl_attr_get_u16(tb[MBSTATE_RULE_A_DPORT_MIN]);
			r->dport_max = tb[MBSTATE_RULE_A_DPORT_MAX] ?
				mnl_attr_get_u16(tb[MBSTATE_RULE_A_DPORT_MAX]) :
				r->dport_min;
		}
		if (r->fields & MBSTATE_FIELD_P) {
			if (!tb[MBSTATE_RULE_A_PROTO])
				return missing("MBSTATE_RULE_A_PROTO",
					       err, errlen);
			r->proto = mnl_attr_get_u8(tb[MBSTATE_RULE_A_PROTO]);
		}
		break;
	default:
		set_err(err, errlen,
			"malformed rule from the kernel: unknown class %u",
			r->cls);
		return -EPROTO;
	}

	if (tb[MBSTATE_RULE_A_ID])
		out->id = mnl_attr_get_u32(tb[MBSTATE_RULE_A_ID]);
	out->packets = get_u64(tb[MBSTATE_RULE_A_PACKETS]);
	out->bytes = get_u64(tb[MBSTATE_RULE_A_BYTES]);
	return 0;
}

/* The MBSTATE_LB_A_BACKEND nests of MBSTATE_LB_A_BACKENDS into @mb. */
static int decode_backends(const struct nlattr *list, struct mbnl_mb *mb,
			   char *err, size_t errlen)
{
	const struct nlattr *pos;
	int ret;

	mnl_attr_for_each_nested(pos, list) {
		const struct nlattr *tb[MBSTATE_BE_A_MAX + 1];
		struct mbnl_backend *b;

		if (mnl_attr_get_type(pos) != MBSTATE_LB_A_BACKEND)
			continue;
		if (mb->n_backends == MBSTATE_LB_MAX_BACKENDS) {
			set_err(err, errlen,
				"malformed reply from the kernel: more than %d backends",
				MBSTATE_LB_MAX_BACKENDS);
			return -EPROTO;
		}
		ret = parse_nest(pos, be_policy, MBSTATE_BE_A_MAX, tb, err,
				 errlen);
		if (ret)
			return ret;
		if (!tb[MBSTATE_BE_A_IPV4])
			return missing("MBSTATE_BE_A_IPV4", err, errlen);
		b = &mb->backends[mb->n_backends++];
		memset(b, 0, sizeof(*b));
		b->ip = mnl_attr_get_u32(tb[MBSTATE_BE_A_IPV4]);
		if (tb[MBSTATE_BE_A_MAC])
			memcpy(b->mac, mnl_attr_get_payload(tb[MBSTATE_BE_A_MAC]),
			       MB_ETH_ALEN);
		if (tb[MBSTATE_BE_A_MAC_SOURCE])
			b->mac_source = mnl_attr_get_u8(tb[MBSTATE_BE_A_MAC_SOURCE]);
		if (tb[MBSTATE_BE_A_STATE])
			b->state = mnl_attr_get_u8(tb[MBSTATE_BE_A_STATE]);
		if (tb[MBSTATE_BE_A_WEIGHT])
			b->weight = mnl_attr_get_u32(tb[MBSTATE_BE_A_WEIGHT]);
		if (tb[MBSTATE_BE_A_FLOWS])
			b->flows = mnl_attr_get_u32(tb[MBSTATE_BE_A_FLOWS]);
		b->new_flows = get_u64(tb[MBSTATE_BE_A_NEW_FLOWS]);
		b->packets = get_u64(tb[MBSTATE_BE_A_PACKETS]);
		b->bytes = get_u64(tb[MBSTATE_BE_A_BYTES]);
		b->ret_packets = get_u64(tb[MBSTATE_BE_A_RET_PACKETS]);
		b->ret_bytes = get_u64(tb[MBSTATE_BE_A_RET_BYTES]);
	}
	return 0;
}

static int decode_lb_stats(const struct nlattr *nest, struct mbnl_lb_stats *s,
			   char *err, size_t errlen)
{
	const struct nlattr *tb[MBSTATE_LB_STATS_A_MAX + 1];
	int ret;

	ret = parse_nest(nest, lb_stats_policy, MBSTATE_LB_STATS_A_MAX, tb,
			 err, errlen);
	if (ret)
		return ret;
	s->new_flows = get_u64(tb[MBSTATE_LB_STATS_A_NEW_FLOWS]);
	s->redirected_packets = get_u64(tb[MBSTATE_LB_STATS_A_REDIRECTED_PACKETS]);
	s->redirected_bytes = get_u64(tb[MBSTATE_LB_STATS_A_REDIRECTED_BYTES]);
	s->not_selected = get_u64(tb[MBSTATE_LB_STATS_A_NOT_SELECTED]);
	s->unhandled = get_u64(tb[MBSTATE_LB_STATS_A_UNHANDLED]);
	s->no_flow = get_u64(tb[MBSTATE_LB_STATS_A_NO_FLOW]);
	s->no_backend = get_u64(tb[MBSTATE_LB_STATS_A_NO_BACKEND]);
	s->mac_unknown = get_u64(tb[MBSTATE_LB_STATS_A_MAC_UNKNOWN]);
	s->table_full = get_u64(tb[MBSTATE_LB_STATS_A_TABLE_FULL]);
	s->collision = get_u64(tb[MBSTATE_LB_STATS_A_COLLISION]);
	s->from_mb_port = get_u64(tb[MBSTATE_LB_STATS_A_FROM_MB_PORT]);
	s->mb_port_unknown = get_u64(tb[MBSTATE_LB_STATS_A_MB_PORT_UNKNOWN]);
	s->over_quota = get_u64(tb[MBSTATE_LB_STATS_A_OVER_QUOTA]);
	return 0;
}

/*
 * A middlebox message (GET_MB reply, *_MB notification) into @mb. Only the
 * MAC is required; whatever else the message has is filled in.
 */
static int decode_mb(const struct nlattr **tb, struct mbnl_mb *mb,
		     char *err, size_t errlen)
{
	int ret;

	memset(mb, 0, sizeof(*mb));
	if (!tb[MBSTATE_A_MAC])
		return missing("MBSTATE_A_MAC", err, errlen);
	memcpy(mb->mac, mnl_attr_get_payload(tb[MBSTATE_A_MAC]), MB_ETH_ALEN);
	if (tb[MBSTATE_A_IPV4])
		mb->ip = mnl_attr_get_u32(tb[MBSTATE_A_IPV4]);
	if (tb[MBSTATE_A_SERVICES])
		mb->services = mnl_attr_get_u32(tb[MBSTATE_A_SERVICES]);
	if (tb[MBSTATE_A_ENABLED])
		mb->enabled = mnl_attr_get_u8(tb[MBSTATE_A_ENABLED]);
	if (tb[MBSTATE_A_NRULES])
		mb->nrules = mnl_attr_get_u32(tb[MBSTATE_A_NRULES]);
	if (tb[MBSTATE_A_VLAN])
		mb->vlan = mnl_attr_get_u16(tb[MBSTATE_A_VLAN]);

	if (tb[MBSTATE_A_LB]) {
		const struct nlattr *lb[MBSTATE_LB_A_MAX + 1];

		ret = parse_nest(tb[MBSTATE_A_LB], lb_policy, MBSTATE_LB_A_MAX,
				 lb, err, errlen);
		if (ret)
			return ret;
		if (!lb[MBSTATE_LB_A_TYPE] || !lb[MBSTATE_LB_A_DST_IPV4])
			return missing("MBSTATE_LB_A_TYPE or MBSTATE_LB_A_DST_IPV4",
				       err, errlen);
		mb->has_lb = true;
		mb->lb.type = mnl_attr_get_u8(lb[MBSTATE_LB_A_TYPE]);
		if (lb[MBSTATE_LB_A_SRC_IPV4])
			mb->lb.src_ip = mnl_attr_get_u32(lb[MBSTATE_LB_A_SRC_IPV4]);
		mb->lb.dst_ip = mnl_attr_get_u32(lb[MBSTATE_LB_A_DST_IPV4]);
		if (lb[MBSTATE_LB_A_BACKENDS]) {
			ret = decode_backends(lb[MBSTATE_LB_A_BACKENDS], mb,
					      err, errlen);
			if (ret)
				return ret;
		}
		if (lb[MBSTATE_LB_A_FLOWS])
			mb->lb_flows = mnl_attr_get_u32(lb[MBSTATE_LB_A_FLOWS]);
		if (lb[MBSTATE_LB_A_STATS]) {
			ret = decode_lb_stats(lb[MBSTATE_LB_A_STATS],
					      &mb->lb_stats, err, errlen);
			if (ret)
				return ret;
		}
	}

	if (tb[MBSTATE_A_STATS]) {
		const struct nlattr *st[MBSTATE_STATS_A_MAX + 1];

		ret = parse_nest(tb[MBSTATE_A_STATS], stats_policy,
				 MBSTATE_STATS_A_MAX, st, err, errlen);
		if (ret)
			return ret;
		mb->stats.rx_packets = get_u64(st[MBSTATE_STATS_A_RX_PACKETS]);
		mb->stats.rx_bytes = get_u64(st[MBSTATE_STATS_A_RX_BYTES]);
		mb->stats.fw_drop_packets =
			get_u64(st[MBSTATE_STATS_A_FW_DROP_PACKETS]);
		mb->stats.fw_drop_bytes =
			get_u64(st[MBSTATE_STATS_A_FW_DROP_BYTES]);
		mb->stats.disabled_packets =
			get_u64(st[MBSTATE_STATS_A_DISABLED_PACKETS]);
		mb->stats.unbound_packets =
			get_u64(st[MBSTATE_STATS_A_UNBOUND_PACKETS]);
	}
	return 0;
}

static int decode_mb_msg(const struct nlmsghdr *nlh, struct mbnl_mb *mb,
			 char *err, size_t errlen)
{
	const struct nlattr *tb[MBSTATE_A_MAX + 1];
	int ret;

	ret = parse_msg(nlh, GENL_HDRLEN, mb_policy, MBSTATE_A_MAX, tb,
			err, errlen);
	if (ret)
		return ret;
	return decode_mb(tb, mb, err, errlen);
}

/* --- Building requests -------------------------------------------------- */

static struct nlmsghdr *put_request(struct mbnl *nl, uint16_t type,
				    uint8_t cmd, uint8_t version,
				    uint16_t flags)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(nl->sbuf);
	struct genlmsghdr *genl;

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | flags;
	genl = mnl_nlmsg_put_extra_header(nlh, sizeof(*genl));
	genl->cmd = cmd;
	genl->version = version;
	return nlh;
}

static struct nlmsghdr *put_mb_request(struct mbnl *nl, uint8_t cmd,
				       uint16_t flags,
				       const __u8 mac[MB_ETH_ALEN])
{
	struct nlmsghdr *nlh = put_request(nl, nl->family, cmd,
					   MBSTATE_GENL_VERSION, flags);

	if (mac)
		mnl_attr_put(nlh, MBSTATE_A_MAC, MB_ETH_ALEN, mac);
	return nlh;
}

/*
 * A rule nest of @type: CLASS, FIELDS, then the values of the fields in
 * @valued (all the fields for a rule, some for a DEL_RULE selector).
 * Addresses are already in network order and go in as they are.
 */
static void put_rule(struct nlmsghdr *nlh, uint16_t type,
		     const struct mb_rule *r, __u8 valued)
{
	struct nlattr *nest = mnl_attr_nest_start(nlh, type);

	valued &= r->fields;
	mnl_attr_put_u8(nlh, MBSTATE_RULE_A_CLASS, r->cls);
	mnl_attr_put_u8(nlh, MBSTATE_RULE_A_FIELDS, r->fields);
	switch (r->cls) {
	case MBSTATE_CLASS_IP:
		if (valued & MBSTATE_FIELD_S) {
			mnl_attr_put_u32(nlh, MBSTATE_RULE_A_SRC_IPV4, r->src_ip);
			mnl_attr_put_u8(nlh, MBSTATE_RULE_A_SRC_PLEN, r->src_plen);
		}
		if (valued & MBSTATE_FIELD_D) {
			mnl_attr_put_u32(nlh, MBSTATE_RULE_A_DST_IPV4, r->dst_ip);
			mnl_attr_put_u8(nlh, MBSTATE_RULE_A_DST_PLEN, r->dst_plen);
		}
		if (valued & MBSTATE_FIELD_T)
			mnl_attr_put_u8(nlh, MBSTATE_RULE_A_TOS, r->tos);
		if (valued & MBSTATE_FIELD_P)
			mnl_attr_put_u8(nlh, MBSTATE_RULE_A_PROTO, r->proto);
		break;
	case MBSTATE_CLASS_MAC:
		if (valued & MBSTATE_FIELD_S)
			mnl_attr_put(nlh, MBSTATE_RULE_A_SRC_MAC, MB_ETH_ALEN,
				     r->src_mac);
		if (valued & MBSTATE_FIELD_D)
			mnl_attr_put(nlh, MBSTATE_RULE_A_DST_MAC, MB_ETH_ALEN,
				     r->dst_mac);
		if (valued & MBSTATE_FIELD_P)
			mnl_attr_put_u16(nlh, MBSTATE_RULE_A_ETHERTYPE,
					 r->ethertype);
		break;
	case MBSTATE_CLASS_TP:
		if (valued & MBSTATE_FIELD_S) {
			mnl_attr_put_u16(nlh, MBSTATE_RULE_A_SPORT_MIN,
					 r->sport_min);
			mnl_attr_put_u16(nlh, MBSTATE_RULE_A_SPORT_MAX,
					 r->sport_max);
		}
		if (valued & MBSTATE_FIELD_D) {
			mnl_attr_put_u16(nlh, MBSTATE_RULE_A_DPORT_MIN,
					 r->dport_min);
			mnl_attr_put_u16(nlh, MBSTATE_RULE_A_DPORT_MAX,
					 r->dport_max);
		}
		if (valued & MBSTATE_FIELD_P)
			mnl_attr_put_u8(nlh, MBSTATE_RULE_A_PROTO, r->proto);
		break;
	default:
		/* Sent as is: the kernel says what is wrong with it. */
		break;
	}
	mnl_attr_nest_end(nlh, nest);
}

/* Bytes the MBSTATE_A_RULE nest of @r takes in a request. */
static size_t rule_size(const struct mb_rule *r)
{
	/* The largest rule nest is under 100 bytes. */
	union {
		char buf[256];
		struct nlmsghdr align;
	} scratch;
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(scratch.buf);

	put_rule(nlh, MBSTATE_A_RULE, r, r->fields);
	return nlh->nlmsg_len - MNL_NLMSG_HDRLEN;
}

size_t mbnl_rules_per_request(const struct mb_rule *rules, size_t n)
{
	size_t used = MNL_ATTR_HDRLEN, i;

	for (i = 0; i < n; i++) {
		used += rule_size(&rules[i]);
		if (used > MBNL_ATTR_MAX_LEN)
			break;
	}
	return i ? i : (n ? 1 : 0);
}

/* A backend nest of @type: its address, and its MAC and weight unless
 * @addr_only (removing a backend). */
static void put_backend(struct nlmsghdr *nlh, uint16_t type,
			const struct mb_lb_backend *be, bool addr_only)
{
	struct nlattr *nest = mnl_attr_nest_start(nlh, type);

	mnl_attr_put_u32(nlh, MBSTATE_BE_A_IPV4, be->ip);
	if (!addr_only) {
		if (be->has_mac)
			mnl_attr_put(nlh, MBSTATE_BE_A_MAC, MB_ETH_ALEN,
				     be->mac);
		mnl_attr_put_u32(nlh, MBSTATE_BE_A_WEIGHT, be->weight);
	}
	mnl_attr_nest_end(nlh, nest);
}

/*
 * The MBSTATE_A_LB nest of an "R L": the report's form (DST_IPV4) when the
 * backend has neither a MAC nor a weight other than 1, otherwise BACKENDS
 * with @reg's backend and @extra[0..n).
 */
static void put_lb(struct nlmsghdr *nlh, const struct mb_cmd *reg,
		   const struct mb_lb_backend *extra, size_t n)
{
	struct nlattr *nest = mnl_attr_nest_start(nlh, MBSTATE_A_LB), *list;
	size_t i;

	mnl_attr_put_u8(nlh, MBSTATE_LB_A_TYPE, reg->lb.type);
	mnl_attr_put_u32(nlh, MBSTATE_LB_A_SRC_IPV4, reg->lb.src_ip);
	if (!n && !reg->backend.has_mac && reg->backend.weight == 1) {
		mnl_attr_put_u32(nlh, MBSTATE_LB_A_DST_IPV4, reg->lb.dst_ip);
	} else {
		list = mnl_attr_nest_start(nlh, MBSTATE_LB_A_BACKENDS);
		put_backend(nlh, MBSTATE_LB_A_BACKEND, &reg->backend, false);
		for (i = 0; i < n; i++)
			put_backend(nlh, MBSTATE_LB_A_BACKEND, &extra[i],
				    false);
		mnl_attr_nest_end(nlh, list);
	}
	mnl_attr_nest_end(nlh, nest);
}

/* --- Talking to the kernel ---------------------------------------------- */

/* The kernel's extended ack sentence at @offset into the payload, if any. */
static const char *extack_msg(const struct nlmsghdr *nlh, size_t offset)
{
	const struct nlattr *tb[NLMSGERR_ATTR_MAX + 1];

	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
		return NULL;
	if (parse_msg(nlh, offset, extack_policy, NLMSGERR_ATTR_MAX, tb,
		      NULL, 0))
		return NULL;
	if (!tb[NLMSGERR_ATTR_MSG])
		return NULL;
	return mnl_attr_get_str(tb[NLMSGERR_ATTR_MSG]);
}

static void set_kernel_err(int error, const char *msg, char *err,
			   size_t errlen)
{
	if (msg && *msg)
		set_err(err, errlen, "%s", msg);
	else if (error == EPERM)
		set_err(err, errlen, "%s (CAP_NET_ADMIN is needed)",
			strerror(error));
	else
		set_err(err, errlen, "%s", strerror(error));
}

/*
 * NLMSG_ERROR: 0 for an ack, else the negative errno with the kernel's
 * sentence in @err. Unless NLM_F_CAPPED, the error message echoes our whole
 * request before the TLVs.
 */
static int handle_error(const struct nlmsghdr *nlh, char *err, size_t errlen)
{
	const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
	size_t offset = sizeof(*e);

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*e)) {
		set_err(err, errlen, "truncated netlink error message");
		return -EPROTO;
	}
	if (!e->error)
		return 0;
	if (e->error > 0 || e->error < -4095) {
		set_err(err, errlen, "bad error code %d from the kernel",
			e->error);
		return -EPROTO;
	}
	if (!(nlh->nlmsg_flags & NLM_F_CAPPED)) {
		if (e->msg.nlmsg_len < MNL_NLMSG_HDRLEN) {
			set_kernel_err(-e->error, NULL, err, errlen);
			return e->error;
		}
		offset += mnl_nlmsg_get_payload_len(&e->msg);
	}
	set_kernel_err(-e->error, extack_msg(nlh, offset), err, errlen);
	return e->error;
}

/* NLMSG_DONE carries the dump's errno, and its extended ack. */
static int handle_done(const struct nlmsghdr *nlh, char *err, size_t errlen)
{
	int error;

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(error))
		return 0;
	memcpy(&error, mnl_nlmsg_get_payload(nlh), sizeof(error));
	if (error >= 0)
		return 0;
	if (error < -4095) {
		set_err(err, errlen, "bad error code %d from the kernel", error);
		return -EPROTO;
	}
	set_kernel_err(-error, extack_msg(nlh, sizeof(error)), err, errlen);
	return error;
}

typedef int (*data_cb_t)(const struct nlmsghdr *nlh, void *arg,
			 char *err, size_t errlen);

/*
 * Sends @req and reads every reply to it until the closing NLMSG_ERROR (ack)
 * or NLMSG_DONE (dump), calling @cb for each data message. After the first
 * failure of @cb the rest is still read, so that the socket stays in step.
 * *@intr (may be NULL) tells whether any reply had NLM_F_DUMP_INTR; @cb is
 * not called after that.
 */
static int mbnl_talk(struct mbnl *nl, struct nlmsghdr *req, data_cb_t cb,
		     void *arg, bool *intr, char *err, size_t errlen)
{
	unsigned int seq = ++nl->seq;
	bool interrupted = false;
	int ret = 0, kret = 0;
	int len;

	req->nlmsg_seq = seq;
	if (mnl_socket_sendto(nl->sock, req, req->nlmsg_len) < 0) {
		ret = -errno;
		set_err(err, errlen, "Unable to send netlink request: %s",
			strerror(errno));
		return ret;
	}

	for (;;) {
		const struct nlmsghdr *nlh;

		len = (int)mnl_socket_recvfrom(nl->sock, nl->rbuf,
					       MBNL_RECV_BUF);
		if (len < 0) {
			if (errno == EINTR)
				continue;
			kret = -errno;
			set_err(err, errlen,
				"Unable to receive netlink reply: %s",
				strerror(errno));
			return kret;
		}
		for (nlh = (const struct nlmsghdr *)nl->rbuf;
		     mnl_nlmsg_ok(nlh, len);
		     nlh = mnl_nlmsg_next(nlh, &len)) {
			/* Not ours: a notification or a stale reply. */
			if (nlh->nlmsg_pid != nl->portid ||
			    nlh->nlmsg_seq != seq)
				continue;
			if (nlh->nlmsg_flags & NLM_F_DUMP_INTR)
				interrupted = true;

			switch (nlh->nlmsg_type) {
			case NLMSG_NOOP:
				continue;
			case NLMSG_OVERRUN:
				set_err(err, errlen, "netlink overrun");
				return -EOVERFLOW;
			case NLMSG_ERROR:
				kret = handle_error(nlh, err, errlen);
				goto done;
			case NLMSG_DONE:
				kret = handle_done(nlh, err, errlen);
				goto done;
			}
			if (nlh->nlmsg_type < NLMSG_MIN_TYPE || ret ||
			    interrupted || !cb)
				continue;
			if (mnl_nlmsg_get_payload_len(nlh) < GENL_HDRLEN) {
				set_err(err, errlen,
					"truncated generic netlink message");
				ret = -EPROTO;
				continue;
			}
			ret = cb(nlh, arg, err, errlen);
		}
	}

done:
	if (intr)
		*intr = interrupted;
	/* The kernel's refusal says more than a failure of our own. */
	return kret ? kret : ret;
}

/* --- Opening: family and multicast group ids ---------------------------- */

struct family_info {
	const char *group;		/* group to look up, or NULL */
	uint16_t id;
	uint32_t mcgrp;
	bool has_id, has_mcgrp;
};

static int family_cb(const struct nlmsghdr *nlh, void *arg, char *err,
		     size_t errlen)
{
	const struct nlattr *tb[CTRL_ATTR_MAX + 1];
	struct family_info *fi = arg;
	const struct nlattr *pos;
	int ret;

	ret = parse_msg(nlh, GENL_HDRLEN, ctrl_policy, CTRL_ATTR_MAX, tb,
			err, errlen);
	if (ret)
		return ret;
	if (!tb[CTRL_ATTR_FAMILY_ID])
		return missing("CTRL_ATTR_FAMILY_ID", err, errlen);
	fi->id = mnl_attr_get_u16(tb[CTRL_ATTR_FAMILY_ID]);
	fi->has_id = true;
	if (!fi->group || !tb[CTRL_ATTR_MCAST_GROUPS])
		return 0;

	mnl_attr_for_each_nested(pos, tb[CTRL_ATTR_MCAST_GROUPS]) {
		const struct nlattr *grp[CTRL_ATTR_MCAST_GRP_MAX + 1];

		ret = parse_nest(pos, mcgrp_policy, CTRL_ATTR_MCAST_GRP_MAX,
				 grp, err, errlen);
		if (ret)
			return ret;
		if (!grp[CTRL_ATTR_MCAST_GRP_NAME] ||
		    !grp[CTRL_ATTR_MCAST_GRP_ID])
			continue;
		if (strcmp(mnl_attr_get_str(grp[CTRL_ATTR_MCAST_GRP_NAME]),
			   fi->group))
			continue;
		fi->mcgrp = mnl_attr_get_u32(grp[CTRL_ATTR_MCAST_GRP_ID]);
		fi->has_mcgrp = true;
	}
	return 0;
}

static int resolve_family(struct mbnl *nl, const char *name,
			  struct family_info *fi, char *err, size_t errlen)
{
	struct nlmsghdr *nlh;
	int ret;

	nlh = put_request(nl, GENL_ID_CTRL, CTRL_CMD_GETFAMILY, 1, NLM_F_ACK);
	mnl_attr_put_strz(nlh, CTRL_ATTR_FAMILY_NAME, name);
	ret = mbnl_talk(nl, nlh, family_cb, fi, NULL, err, errlen);
	if (!ret && !fi->has_id) {
		set_err(err, errlen, "no reply to CTRL_CMD_GETFAMILY");
		ret = -EPROTO;
	}
	return ret;
}

static int set_flag(struct mbnl *nl, int opt)
{
	int one = 1;

	return mnl_socket_setsockopt(nl->sock, opt, &one, sizeof(one));
}

struct mbnl *mbnl_open(char *err, size_t errlen)
{
	struct family_info fi = { .group = MBSTATE_MCGRP_CHANGES };
	struct mbnl *nl;
	int ret, saved;

	nl = calloc(1, sizeof(*nl));
	if (!nl)
		goto err_nomem;
	nl->rbuf = malloc(MBNL_RECV_BUF);
	nl->sbuf = malloc(MBNL_SEND_BUF);
	if (!nl->rbuf || !nl->sbuf)
		goto err_nomem;

	nl->sock = mnl_socket_open(NETLINK_GENERIC);
	if (!nl->sock) {
		saved = errno;
		set_err(err, errlen,
			"Unable to open a generic netlink socket: %s",
			strerror(saved));
		goto err_errno;
	}
	if (mnl_socket_bind(nl->sock, 0, MNL_SOCKET_AUTOPID) < 0) {
		saved = errno;
		set_err(err, errlen, "Unable to bind the netlink socket: %s",
			strerror(saved));
		goto err_errno;
	}
	nl->portid = mnl_socket_get_portid(nl->sock);
	nl->seq = (unsigned int)time(NULL);

	/*
	 * Extended acks bring the kernel's sentence; capped acks keep an
	 * error from echoing a 64 KiB request. Kernels without them still
	 * work, with strerror() messages.
	 */
	set_flag(nl, NETLINK_EXT_ACK);
	set_flag(nl, NETLINK_CAP_ACK);

	ret = resolve_family(nl, MBSTATE_GENL_NAME, &fi, err, errlen);
	if (ret == -ENOENT) {
		set_err(err, errlen,
			"generic netlink family `%s' not found: is mbstate.ko loaded? (modprobe mbstate)",
			MBSTATE_GENL_NAME);
		saved = ENOENT;
		goto err_errno;
	}
	if (ret) {
		saved = -ret;
		goto err_errno;
	}
	nl->family = fi.id;
	nl->mcgrp = fi.mcgrp;
	nl->has_mcgrp = fi.has_mcgrp;
	return nl;

err_nomem:
	saved = ENOMEM;
	set_err(err, errlen, "%s", strerror(saved));
err_errno:
	mbnl_close(nl);
	errno = saved;
	return NULL;
}

void mbnl_close(struct mbnl *nl)
{
	if (!nl)
		return;
	if (nl->sock)
		mnl_socket_close(nl->sock);
	free(nl->rbuf);
	free(nl->sbuf);
	free(nl);
}

uint16_t mbnl_family_id(const struct mbnl *nl)
{
	return nl->family;
}

/* --- Commands ----------------------------------------------------------- */

int mbnl_exec(struct mbnl *nl, const struct mb_cmd *cmd,
	      char *err, size_t errlen)
{
	struct nlmsghdr *nlh;

	switch (cmd->op) {
	case MB_OP_REGISTER:
		nlh = put_mb_request(nl, MBSTATE_CMD_NEW_MB, NLM_F_ACK,
				     cmd->mac);
		mnl_attr_put_u32(nlh, MBSTATE_A_IPV4, cmd->ip);
		mnl_attr_put_u32(nlh, MBSTATE_A_SERVICES, cmd->service);
		if (cmd->vlan)
			mnl_attr_put_u16(nlh, MBSTATE_A_VLAN, cmd->vlan);
		if (cmd->service & MBSTATE_SVC_L)
			put_lb(nlh, cmd, NULL, 0);
		break;
	case MB_OP_ADD_BACKEND:
	case MB_OP_DEL_BACKEND:
		nlh = put_mb_request(nl, cmd->op == MB_OP_ADD_BACKEND ?
				     MBSTATE_CMD_NEW_BACKEND :
				     MBSTATE_CMD_DEL_BACKEND, NLM_F_ACK,
				     cmd->mac);
		put_backend(nlh, MBSTATE_A_BACKEND, &cmd->backend,
			    cmd->op == MB_OP_DEL_BACKEND);
		break;
	case MB_OP_UNREGISTER:
		nlh = put_mb_request(nl, MBSTATE_CMD_DEL_MB, NLM_F_ACK,
				     cmd->mac);
		break;
	case MB_OP_ENABLE:
	case MB_OP_DISABLE:
		nlh = put_mb_request(nl, MBSTATE_CMD_SET_MB, NLM_F_ACK,
				     cmd->mac);
		mnl_attr_put_u8(nlh, MBSTATE_A_ENABLED,
				cmd->op == MB_OP_ENABLE);
		break;
	case MB_OP_ADD_RULE:
		return mbnl_add_rules(nl, cmd->mac, &cmd->rule, 1, false,
				      err, errlen);
	case MB_OP_DEL_RULE:
		nlh = put_mb_request(nl, MBSTATE_CMD_DEL_RULE, NLM_F_ACK,
				     cmd->mac);
		put_rule(nlh, MBSTATE_A_RULE, &cmd->rule, cmd->rule.valued);
		break;
	case MB_OP_QUERY:
		set_err(err, errlen,
			"Q is a query: read the state with mbnl_get_mb()");
		return -EINVAL;
	default:
		set_err(err, errlen, "unknown command op %d", cmd->op);
		return -EINVAL;
	}
	return mbnl_talk(nl, nlh, NULL, NULL, NULL, err, errlen);
}

int mbnl_add_rules(struct mbnl *nl, const __u8 mac[MB_ETH_ALEN],
		   const struct mb_rule *rules, size_t n, bool replace,
		   char *err, size_t errlen)
{
	size_t done = 0, i, count;
	const char *why;
	int ret;

	for (i = 0; i < n; i++) {
		why = mb_rule_check(&rules[i]);
		if (why) {
			set_err(err, errlen, "rule %zu: %s", i + 1, why);
			return -EINVAL;
		}
	}
	if (replace && mbnl_rules_per_request(rules, n) < n) {
		set_err(err, errlen,
			"%zu rules do not fit into one request (%zu do): too many to replace the rule set atomically",
			n, mbnl_rules_per_request(rules, n));
		return -E2BIG;
	}

	do {
		struct nlmsghdr *nlh;
		struct nlattr *nest;

		count = mbnl_rules_per_request(rules + done, n - done);
		nlh = put_mb_request(nl, MBSTATE_CMD_NEW_RULE, NLM_F_ACK, mac);
		if (replace)
			mnl_attr_put(nlh, MBSTATE_A_REPLACE, 0, NULL);
		nest = mnl_attr_nest_start(nlh, MBSTATE_A_RULES);
		for (i = done; i < done + count; i++)
			put_rule(nlh, MBSTATE_A_RULE, &rules[i],
				 rules[i].fields);
		mnl_attr_nest_end(nlh, nest);

		ret = mbnl_talk(nl, nlh, NULL, NULL, NULL, err, errlen);
		if (ret)
			return ret;
		done += count;
	} while (done < n);
	return 0;
}

int mbnl_lb_replace(struct mbnl *nl, const struct mb_cmd *reg,
		    const struct mb_lb_backend *extra, size_t n,
		    char *err, size_t errlen)
{
	struct nlmsghdr *nlh;

	if (reg->op != MB_OP_REGISTER || reg->service != MBSTATE_SVC_L) {
		set_err(err, errlen,
			"a load-balancer configuration starts with R L");
		return -EINVAL;
	}
	if (n + 1 > MBSTATE_LB_MAX_BACKENDS) {
		set_err(err, errlen, "%zu backends: a middlebox has at most %d",
			n + 1, MBSTATE_LB_MAX_BACKENDS);
		return -E2BIG;
	}
	nlh = put_mb_request(nl, MBSTATE_CMD_NEW_MB, NLM_F_ACK, reg->mac);
	mnl_attr_put_u32(nlh, MBSTATE_A_IPV4, reg->ip);
	mnl_attr_put_u32(nlh, MBSTATE_A_SERVICES, MBSTATE_SVC_L);
	if (reg->vlan)
		mnl_attr_put_u16(nlh, MBSTATE_A_VLAN, reg->vlan);
	mnl_attr_put(nlh, MBSTATE_A_REPLACE, 0, NULL);
	put_lb(nlh, reg, extra, n);
	return mbnl_talk(nl, nlh, NULL, NULL, NULL, err, errlen);
}

struct get_mb {
	struct mbnl_mb *mb;
	bool found;
};

static int get_mb_cb(const struct nlmsghdr *nlh, void *arg, char *err,
		     size_t errlen)
{
	struct get_mb *g = arg;
	int ret;

	ret = decode_mb_msg(nlh, g->mb, err, errlen);
	g->found = !ret;
	return ret;
}

int mbnl_get_mb(struct mbnl *nl, const __u8 mac[MB_ETH_ALEN],
		struct mbnl_mb *mb, char *err, size_t errlen)
{
	struct get_mb g = { mb, false };
	struct nlmsghdr *nlh;
	int ret;

	memset(mb, 0, sizeof(*mb));
	nlh = put_mb_request(nl, MBSTATE_CMD_GET_MB, NLM_F_ACK, mac);
	ret = mbnl_talk(nl, nlh, get_mb_cb, &g, NULL, err, errlen);
	if (ret)
		return ret;
	if (!g.found) {
		set_err(err, errlen, "no reply to MBSTATE_CMD_GET_MB");
		return -EPROTO;
	}
	return 0;
}

/* --- Dumps -------------------------------------------------------------- */

/* The objects of one dump attempt, handed out only once it completed. */
struct vec {
	char *items;
	size_t size, n, cap;
};

static void *vec_push(struct vec *v)
{
	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 64;
		char *items = realloc(v->items, cap * v->size);

		if (!items)
			return NULL;
		v->items = items;
		v->cap = cap;
	}
	return v->items + v->n++ * v->size;
}

static int collect_mb_cb(const struct nlmsghdr *nlh, void *arg, char *err,
			 size_t errlen)
{
	struct mbnl_mb *mb = vec_push(arg);

	if (!mb) {
		set_err(err, errlen, "%s", strerror(ENOMEM));
		return -ENOMEM;
	}
	return decode_mb_msg(nlh, mb, err, errlen);
}

static int collect_rule_cb(const struct nlmsghdr *nlh, void *arg, char *err,
			   size_t errlen)
{
	const struct nlattr *tb[MBSTATE_A_MAX + 1];
	struct mbnl_rule *rule;
	int ret;

	ret = parse_msg(nlh, GENL_HDRLEN, mb_policy, MBSTATE_A_MAX, tb,
			err, errlen);
	if (ret)
		return ret;
	if (!tb[MBSTATE_A_RULE])
		return missing("MBSTATE_A_RULE", err, errlen);
	rule = vec_push(arg);
	if (!rule) {
		set_err(err, errlen, "%s", strerror(ENOMEM));
		return -ENOMEM;
	}
	return decode_rule(tb[MBSTATE_A_RULE], rule, err, errlen);
}

/*
 * Runs the dump @cmd (of @mac's rules if @mac) until one attempt completes
 * without NLM_F_DUMP_INTR, collecting its objects in @v.
 */
static int dump(struct mbnl *nl, uint8_t cmd, const __u8 *mac,
		data_cb_t collect, struct vec *v, char *err, size_t errlen)
{
	struct nlmsghdr *nlh;
	bool intr;
	int tries, ret;

	for (tries = 0; tries < MBNL_DUMP_TRIES; tries++) {
		v->n = 0;
		nlh = put_mb_request(nl, cmd, NLM_F_DUMP, mac);
		ret = mbnl_talk(nl, nlh, collect, v, &intr, err, errlen);
		if (ret)
			return ret;
		if (!intr)
			return 0;
	}
	set_err(err, errlen, "registry kept changing during the dump");
	return -EAGAIN;
}

int mbnl_dump_mbs(struct mbnl *nl,
		  int (*cb)(const struct mbnl_mb *mb, void *arg), void *arg,
		  char *err, size_t errlen)
{
	struct vec v = { .size = sizeof(struct mbnl_mb) };
	size_t i;
	int ret;

	ret = dump(nl, MBSTATE_CMD_GET_MB, NULL, collect_mb_cb, &v,
		   err, errlen);
	for (i = 0; !ret && i < v.n; i++)
		ret = cb((const struct mbnl_mb *)v.items + i, arg);
	free(v.items);
	return ret;
}

int mbnl_dump_rules(struct mbnl *nl, const __u8 mac[MB_ETH_ALEN],
		    int (*cb)(const struct mbnl_rule *rule, void *arg),
		    void *arg, char *err, size_t errlen)
{
	struct vec v = { .size = sizeof(struct mbnl_rule) };
	size_t i;
	int ret;

	ret = dump(nl, MBSTATE_CMD_GET_RULE, mac, collect_rule_cb, &v,
		   err, errlen);
	for (i = 0; !ret && i < v.n; i++)
		ret = cb((const struct mbnl_rule *)v.items + i, arg);
	free(v.items);
	return ret;
}

static int collect_flow_cb(const struct nlmsghdr *nlh, void *arg, char *err,
			   size_t errlen)
{
	const struct nlattr *tb[MBSTATE_A_MAX + 1];
	const struct nlattr *ft[MBSTATE_FLOW_A_MAX + 1];
	struct mbnl_flow *f;
	int ret;

	ret = parse_msg(nlh, GENL_HDRLEN, mb_policy, MBSTATE_A_MAX, tb,
			err, errlen);
	if (ret)
		return ret;
	if (!tb[MBSTATE_A_MAC] || !tb[MBSTATE_A_FLOW])
		return missing("MBSTATE_A_MAC or MBSTATE_A_FLOW", err, errlen);
	ret = parse_nest(tb[MBSTATE_A_FLOW], flow_policy, MBSTATE_FLOW_A_MAX,
			 ft, err, errlen);
	if (ret)
		return ret;
	if (!ft[MBSTATE_FLOW_A_PROTO] || !ft[MBSTATE_FLOW_A_CLIENT_IPV4] ||
	    !ft[MBSTATE_FLOW_A_VIP_IPV4] || !ft[MBSTATE_FLOW_A_BACKEND_IPV4])
		return missing("flow attributes", err, errlen);
	f = vec_push(arg);
	if (!f) {
		set_err(err, errlen, "%s", strerror(ENOMEM));
		return -ENOMEM;
	}
	memset(f, 0, sizeof(*f));
	memcpy(f->mac, mnl_attr_get_payload(tb[MBSTATE_A_MAC]), MB_ETH_ALEN);
	f->proto = mnl_attr_get_u8(ft[MBSTATE_FLOW_A_PROTO]);
	f->client_ip = mnl_attr_get_u32(ft[MBSTATE_FLOW_A_CLIENT_IPV4]);
	f->vip = mnl_attr_get_u32(ft[MBSTATE_FLOW_A_VIP_IPV4]);
	f->backend_ip = mnl_attr_get_u32(ft[MBSTATE_FLOW_A_BACKEND_IPV4]);
	if (ft[MBSTATE_FLOW_A_CLIENT_PORT])
		f->client_port = mnl_attr_get_u16(ft[MBSTATE_FLOW_A_CLIENT_PORT]);
	if (ft[MBSTATE_FLOW_A_VIP_PORT])
		f->vip_port = mnl_attr_get_u16(ft[MBSTATE_FLOW_A_VIP_PORT]);
	if (ft[MBSTATE_FLOW_A_BACKEND_MAC])
		memcpy(f->backend_mac,
		       mnl_attr_get_payload(ft[MBSTATE_FLOW_A_BACKEND_MAC]),
		       MB_ETH_ALEN);
	if (ft[MBSTATE_FLOW_A_STATE])
		f->state = mnl_attr_get_u8(ft[MBSTATE_FLOW_A_STATE]);
	if (ft[MBSTATE_FLOW_A_IDLE_MS])
		f->idle_ms = mnl_attr_get_u32(ft[MBSTATE_FLOW_A_IDLE_MS]);
	return 0;
}

int mbnl_dump_flows(struct mbnl *nl, const __u8 *mac,
		    int (*cb)(const struct mbnl_flow *flow, void *arg),
		    void *arg, char *err, size_t errlen)
{
	struct vec v = { .size = sizeof(struct mbnl_flow) };
	size_t i;
	int ret;

	ret = dump(nl, MBSTATE_CMD_GET_FLOW, mac, collect_flow_cb, &v,
		   err, errlen);
	for (i = 0; !ret && i < v.n; i++)
		ret = cb((const struct mbnl_flow *)v.items + i, arg);
	free(v.items);
	return ret;
}

/* --- Monitor ------------------------------------------------------------ */

/* 0 and @ev filled, 1 for a message to skip, or a negative errno. */
static int decode_event(const struct mbnl *nl, const struct nlmsghdr *nlh,
			struct mbnl_event *ev, char *err, size_t errlen)
{
	const struct nlattr *tb[MBSTATE_A_MAX + 1];
	const struct genlmsghdr *genl;
	int ret;

	if (nlh->nlmsg_type != nl->family)
		return 1;
	if (mnl_nlmsg_get_payload_len(nlh) < GENL_HDRLEN) {
		set_err(err, errlen, "truncated generic netlink message");
		return -EPROTO;
	}
	genl = mnl_nlmsg_get_payload(nlh);
	memset(ev, 0, sizeof(*ev));
	ev->cmd = genl->cmd;
	switch (genl->cmd) {
	case MBSTATE_CMD_NEW_MB:
	case MBSTATE_CMD_DEL_MB:
	case MBSTATE_CMD_SET_MB:
	case MBSTATE_CMD_NEW_BACKEND:
	case MBSTATE_CMD_DEL_BACKEND:
		return decode_mb_msg(nlh, &ev->mb, err, errlen);
	case MBSTATE_CMD_NEW_RULE:
	case MBSTATE_CMD_DEL_RULE:
		ret = parse_msg(nlh, GENL_HDRLEN, mb_policy, MBSTATE_A_MAX, tb,
				err, errlen);
		if (ret)
			return ret;
		if (!tb[MBSTATE_A_MAC])
			return missing("MBSTATE_A_MAC", err, errlen);
		memcpy(ev->mb.mac, mnl_attr_get_payload(tb[MBSTATE_A_MAC]),
		       MB_ETH_ALEN);
		if (tb[MBSTATE_A_NRULES])
			ev->mb.nrules = mnl_attr_get_u32(tb[MBSTATE_A_NRULES]);
		if (tb[MBSTATE_A_RULE]) {
			ret = decode_rule(tb[MBSTATE_A_RULE], &ev->rule,
					  err, errlen);
			if (ret)
				return ret;
			ev->has_rule = true;
		}
		return 0;
	default:
		return 1;
	}
}

/* Whether @nlh announces that the generic netlink family @id went away. */
static bool family_removed(const struct nlmsghdr *nlh, uint16_t id)
{
	const struct nlattr *tb[CTRL_ATTR_MAX + 1];
	const struct genlmsghdr *genl;

	if (nlh->nlmsg_type != GENL_ID_CTRL ||
	    mnl_nlmsg_get_payload_len(nlh) < GENL_HDRLEN)
		return false;
	genl = mnl_nlmsg_get_payload(nlh);
	if (genl->cmd != CTRL_CMD_DELFAMILY)
		return false;
	if (parse_msg(nlh, GENL_HDRLEN, ctrl_policy, CTRL_ATTR_MAX, tb,
		      NULL, 0))
		return false;
	return tb[CTRL_ATTR_FAMILY_ID] &&
	       mnl_attr_get_u16(tb[CTRL_ATTR_FAMILY_ID]) == id;
}

int mbnl_monitor(struct mbnl *nl,
		 int (*cb)(const struct mbnl_event *ev, void *arg), void *arg,
		 char *err, size_t errlen)
{
	struct family_info ctrl = { .group = "notify" };
	int rcvbuf = MBNL_MONITOR_RCVBUF;
	struct mbnl_event ev;
	int fd, ret, len;

	if (!nl->has_mcgrp) {
		set_err(err, errlen,
			"the mbstate family has no `%s' multicast group",
			MBSTATE_MCGRP_CHANGES);
		return -ENOENT;
	}
	/* Best effort: learn when mbstate.ko is unloaded. */
	if (!resolve_family(nl, "nlctrl", &ctrl, NULL, 0) && ctrl.has_mcgrp)
		mnl_socket_setsockopt(nl->sock, NETLINK_ADD_MEMBERSHIP,
				      &ctrl.mcgrp, sizeof(ctrl.mcgrp));
	fd = mnl_socket_get_fd(nl->sock);
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf,
		       sizeof(rcvbuf)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (mnl_socket_setsockopt(nl->sock, NETLINK_ADD_MEMBERSHIP,
				  &nl->mcgrp, sizeof(nl->mcgrp)) < 0) {
		ret = -errno;
		set_err(err, errlen,
			"Unable to join the `%s' multicast group: %s",
			MBSTATE_MCGRP_CHANGES, strerror(errno));
		return ret;
	}

	for (;;) {
		const struct nlmsghdr *nlh;

		len = (int)mnl_socket_recvfrom(nl->sock, nl->rbuf,
					       MBNL_RECV_BUF);
		if (len < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ENOBUFS) {
				memset(&ev, 0, sizeof(ev));
				ev.cmd = MBSTATE_CMD_UNSPEC;
				ret = cb(&ev, arg);
				if (ret)
					return ret;
				continue;
			}
			ret = -errno;
			set_err(err, errlen,
				"Unable to receive netlink notification: %s",
				strerror(errno));
			return ret;
		}
		for (nlh = (const struct nlmsghdr *)nl->rbuf;
		     mnl_nlmsg_ok(nlh, len);
		     nlh = mnl_nlmsg_next(nlh, &len)) {
			/* Notifications only: no acks or dump ends here. */
			if (nlh->nlmsg_type < NLMSG_MIN_TYPE)
				continue;
			if (family_removed(nlh, nl->family)) {
				set_err(err, errlen,
					"generic netlink family `%s' was unregistered (mbstate.ko unloaded)",
					MBSTATE_GENL_NAME);
				return -ENOENT;
			}
			ret = decode_event(nl, nlh, &ev, err, errlen);
			if (ret < 0)
				return ret;
			if (ret)
				continue;
			ret = cb(&ev, arg);
			if (ret)
				return ret;
		}
	}
}
