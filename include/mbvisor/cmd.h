/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * The text command language of mbvisor (report section 4.2.1, tables 4.1 and
 * 4.2), parsed and formatted in one place for every program that reads or
 * writes commands: mbadm, mbhostd, mbctl. The grammar and the meaning of
 * each command are in docs/commands.md.
 *
 *   R F <MAC> <IP> [vlan <VID>]             register for the firewall
 *   R L <MAC> <IP> <type> <srcIP> <dstIP> [mac <MAC>] [weight <w>]
 *       [vlan <VID>]                        register for the load balancer
 *   A <MAC>   /   D <MAC>                   switch all offloads on / off
 *   A <MAC> <I|M|T> <mask> <f> <value> ...  add a firewall rule
 *   D <MAC> <I|M|T> <mask> <f> [<value>]... delete the rules it selects
 *   A <MAC> L <IP> [mac <MAC>] [weight <w>] add (or change) a backend
 *   D <MAC> L <IP>                          remove a backend (it drains)
 *   X <MAC>                                 unregister
 *   Q <MAC>                                 query the middlebox's state
 */
#ifndef _MBVISOR_CMD_H
#define _MBVISOR_CMD_H

#include <stddef.h>
#include <mbvisor/rule.h>

/* Longest command text accepted, without the '@' delimiters. */
#define MB_CMD_MAX_LEN		256
/* Room for an error message from the parser (and from the kernel). */
#define MB_ERR_LEN		160

enum mb_op {
	MB_OP_NONE,
	MB_OP_REGISTER,		/* R */
	MB_OP_ENABLE,		/* A <MAC> */
	MB_OP_DISABLE,		/* D <MAC> */
	MB_OP_ADD_RULE,		/* A <MAC> <class> ... */
	MB_OP_DEL_RULE,		/* D <MAC> <class> ... */
	MB_OP_UNREGISTER,	/* X */
	MB_OP_QUERY,		/* Q */
	MB_OP_ADD_BACKEND,	/* A <MAC> L <IP> ... */
	MB_OP_DEL_BACKEND,	/* D <MAC> L <IP> */
};

struct mb_lb_conf {
	__u8 type;		/* 0: any source, 1: only src_ip */
	__be32 src_ip;		/* 0.0.0.0 with type 0 */
	__be32 dst_ip;		/* the backend */
};

/* One backend of a load-balancing middlebox. */
struct mb_lb_backend {
	__be32 ip;
	__u32 weight;		/* 0 to MBSTATE_LB_WEIGHT_MAX; 1 if not given
				 * (0 for D <MAC> L, which takes no weight) */
	__u8 has_mac;		/* 1: mac is the backend's static MAC */
	__u8 mac[MB_ETH_ALEN];
	__u8 pad;
};

struct mb_cmd {
	enum mb_op op;
	__u8 mac[MB_ETH_ALEN];
	__u32 service;		/* R: MBSTATE_SVC_F or MBSTATE_SVC_L */
	__be32 ip;		/* R */
	__u16 vlan;		/* R: bound to this VLAN (1 to
				 * MBSTATE_VLAN_MAX), 0: not bound */
	struct mb_lb_conf lb;	/* R L */
	struct mb_rule rule;	/* ADD_RULE (valued == fields), DEL_RULE */
	struct mb_lb_backend backend;	/* R L (ip == lb.dst_ip), *_BACKEND */
};

/*
 * Parse one command. @text need not be NUL-terminated; it may be wrapped in
 * '@' delimiters ("@R F ...@") and surrounded by blanks. Every byte must be
 * printable ASCII. On success fills @cmd and returns 0. On failure returns
 * -1 and writes into @err a sentence that quotes the offending token, e.g.
 * "Unable to parse MAC address: `52:34:56'".
 */
int mb_cmd_parse(const char *text, size_t len, struct mb_cmd *cmd,
		 char *err, size_t errlen);

/*
 * Write @cmd in canonical text form (no '@'), NUL-terminated. Returns the
 * length, or -1 if @len is too small. Parsing the output gives @cmd back.
 */
int mb_cmd_format(const struct mb_cmd *cmd, char *buf, size_t len);

/* Format only the class part of a rule: "M 5 s 12:13:14:15:16:17 p ipv4". */
int mb_rule_format(const struct mb_rule *rule, char *buf, size_t len);

/* Small helpers the programs share. */
int mb_parse_mac(const char *s, __u8 mac[MB_ETH_ALEN]);
int mb_parse_ipv4(const char *s, __be32 *ip);
void mb_format_mac(const __u8 mac[MB_ETH_ALEN], char buf[18]);
void mb_format_ipv4(__be32 ip, char buf[16]);
const char *mb_service_name(__u32 service);	/* "firewall", ... */

#endif /* _MBVISOR_CMD_H */
