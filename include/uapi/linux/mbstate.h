/* SPDX-License-Identifier: (GPL-2.0 WITH Linux-syscall-note) OR MIT */
/*
 * mbstate: the kernel registry of middlebox state, over generic netlink.
 *
 * Family name MBSTATE_GENL_NAME, version MBSTATE_GENL_VERSION, one
 * multicast group MBSTATE_MCGRP_CHANGES. Every command needs CAP_NET_ADMIN
 * in the user namespace that owns the network namespace of the socket
 * (GENL_UNS_ADMIN_PERM); the registry is per network namespace.
 *
 * A middlebox is keyed by its MAC address. It has one IPv4 address, a set of
 * services (MBSTATE_SVC_*), an enabled switch, a firewall rule set (service
 * F) and a load-balancer configuration (service L), and counters.
 *
 * Every rejected request carries an extended ack message saying why, and
 * changes nothing.
 *
 * MBSTATE_CMD_GET_MB
 * ------------------
 *   Request (doit):  MBSTATE_A_MAC: the middlebox.
 *   Request (dump):  nothing; one reply per middlebox of the namespace.
 *   Reply:           MBSTATE_A_MAC, MBSTATE_A_IPV4, MBSTATE_A_SERVICES,
 *                    MBSTATE_A_ENABLED, MBSTATE_A_NRULES,
 *                    MBSTATE_A_LB (if service L), MBSTATE_A_STATS.
 *   Dumps are consistent: if the registry changed while the dump ran, the
 *   last message carries NLM_F_DUMP_INTR and userspace retries.
 *
 * MBSTATE_CMD_NEW_MB  (text command "R")
 * ------------------
 *   MBSTATE_A_MAC      required, unicast.
 *   MBSTATE_A_IPV4     required, unicast (not 0.0.0.0, multicast, broadcast).
 *   MBSTATE_A_SERVICES required, exactly one MBSTATE_SVC_* bit.
 *   MBSTATE_A_LB       required with MBSTATE_SVC_L, refused otherwise.
 *   A new middlebox starts enabled. Registering an already registered
 *   middlebox for another service adds that service if the IPv4 address is
 *   the same; registering it again for a service it has is refused (EEXIST).
 *   A service whose offload module is not loaded is refused (EOPNOTSUPP)
 *   with a message naming the module.
 *
 * MBSTATE_CMD_DEL_MB  (text command "X")
 * ------------------
 *   MBSTATE_A_MAC required. Forgets the middlebox and all of its state.
 *
 * MBSTATE_CMD_SET_MB  (text commands "A <MAC>" and "D <MAC>")
 * ------------------
 *   MBSTATE_A_MAC required, MBSTATE_A_ENABLED required: switches every
 *   offload of the middlebox on (1) or off (0) without forgetting them.
 *
 * MBSTATE_CMD_NEW_RULE  (text command "A <MAC> <I|M|T> <mask> ...")
 * --------------------
 *   MBSTATE_A_MAC required, MBSTATE_A_RULES required: a nest of one or more
 *   MBSTATE_A_RULE nests (MBSTATE_RULE_A_*), added atomically: all of them or
 *   none. The middlebox must be registered for MBSTATE_SVC_F. A rule equal to
 *   one the middlebox has is refused (EEXIST). With the flag
 *   MBSTATE_A_REPLACE the given rules replace the whole rule set in one step
 *   (an empty MBSTATE_A_RULES nest then clears it). (Not NLM_F_REPLACE:
 *   generic netlink reserves that bit, which is also half of NLM_F_DUMP.)
 *   A netlink attribute holds at most 64 KiB, so one request carries about
 *   a thousand rules: bigger sets are added in several requests, each of
 *   them all or none, and a replacement must fit in one.
 *
 * MBSTATE_CMD_DEL_RULE  (text command "D <MAC> <I|M|T> <mask> ...")
 * --------------------
 *   MBSTATE_A_MAC required, MBSTATE_A_RULE required: a selector.
 *   MBSTATE_RULE_A_CLASS and MBSTATE_RULE_A_FIELDS are required; the value
 *   attributes are optional. Deletes every rule of that class whose field set
 *   contains all of MBSTATE_RULE_A_FIELDS and whose value equals each value
 *   given. Deleting nothing is refused (ENOENT).
 *
 * MBSTATE_CMD_GET_RULE  (dump only)
 * --------------------
 *   MBSTATE_A_MAC required. One reply per rule: MBSTATE_A_MAC, MBSTATE_A_RULE
 *   with MBSTATE_RULE_A_ID and the counters.
 */
#ifndef _UAPI_LINUX_MBSTATE_H
#define _UAPI_LINUX_MBSTATE_H

#include <linux/types.h>

#define MBSTATE_GENL_NAME	"mbstate"
#define MBSTATE_GENL_VERSION	1
#define MBSTATE_MCGRP_CHANGES	"changes"

enum mbstate_cmd {
	MBSTATE_CMD_UNSPEC,
	MBSTATE_CMD_GET_MB,
	MBSTATE_CMD_NEW_MB,
	MBSTATE_CMD_DEL_MB,
	MBSTATE_CMD_SET_MB,
	MBSTATE_CMD_NEW_RULE,
	MBSTATE_CMD_DEL_RULE,
	MBSTATE_CMD_GET_RULE,
	__MBSTATE_CMD_MAX
};
#define MBSTATE_CMD_MAX (__MBSTATE_CMD_MAX - 1)

/* Services a middlebox registers for: bits of MBSTATE_A_SERVICES. */
enum mbstate_service {
	MBSTATE_SVC_F_BIT,	/* firewall offload, module mbfw */
	MBSTATE_SVC_L_BIT,	/* load-balancer offload, module mblb */
	__MBSTATE_SVC_NUM
};
#define MBSTATE_SVC_F		(1U << MBSTATE_SVC_F_BIT)
#define MBSTATE_SVC_L		(1U << MBSTATE_SVC_L_BIT)
#define MBSTATE_SVC_ALL		((1U << __MBSTATE_SVC_NUM) - 1)

enum mbstate_attr {
	MBSTATE_A_UNSPEC,
	MBSTATE_A_MAC,		/* binary, 6 bytes */
	MBSTATE_A_IPV4,		/* __be32 */
	MBSTATE_A_SERVICES,	/* u32, MBSTATE_SVC_* */
	MBSTATE_A_ENABLED,	/* u8, 0 or 1 */
	MBSTATE_A_NRULES,	/* u32, reply only */
	MBSTATE_A_RULES,	/* nest of MBSTATE_A_RULE */
	MBSTATE_A_RULE,		/* nest, MBSTATE_RULE_A_* */
	MBSTATE_A_LB,		/* nest, MBSTATE_LB_A_* */
	MBSTATE_A_STATS,	/* nest, MBSTATE_STATS_A_*, reply only */
	MBSTATE_A_PAD,
	MBSTATE_A_REPLACE,	/* flag: NEW_RULE replaces the whole rule set */
	__MBSTATE_A_MAX
};
#define MBSTATE_A_MAX (__MBSTATE_A_MAX - 1)

/* Filter classes of table 4.1: the "I", "M" and "T" of the text commands. */
enum mbstate_class {
	MBSTATE_CLASS_NONE,
	MBSTATE_CLASS_IP,	/* "I": IPv4 addresses, TOS, IP protocol */
	MBSTATE_CLASS_MAC,	/* "M": MAC addresses, EtherType */
	MBSTATE_CLASS_TP,	/* "T": TCP/UDP ports, protocol */
	__MBSTATE_CLASS_MAX
};
#define MBSTATE_CLASS_MAX (__MBSTATE_CLASS_MAX - 1)

/*
 * The class value of a text command is a mask of these fields. Which value a
 * field takes depends on the class:
 *
 *   field   I (IP)                M (MAC)              T (transport)
 *   s       source IPv4[/len]     source MAC           source port[-port]
 *   d       destination IPv4[/len] destination MAC     destination port[-port]
 *   t       TOS byte              (not defined)        (not defined)
 *   p       IP protocol           EtherType            tcp or udp
 */
#define MBSTATE_FIELD_P		(1U << 0)
#define MBSTATE_FIELD_T		(1U << 1)
#define MBSTATE_FIELD_S		(1U << 2)
#define MBSTATE_FIELD_D		(1U << 3)
#define MBSTATE_FIELD_ALL	0xfU

enum mbstate_rule_attr {
	MBSTATE_RULE_A_UNSPEC,
	MBSTATE_RULE_A_CLASS,		/* u8, MBSTATE_CLASS_* */
	MBSTATE_RULE_A_FIELDS,		/* u8, MBSTATE_FIELD_* mask, 1..15 */
	MBSTATE_RULE_A_ID,		/* u32, assigned by the kernel, reply */
	MBSTATE_RULE_A_SRC_MAC,		/* binary, 6 bytes (M s) */
	MBSTATE_RULE_A_DST_MAC,		/* binary, 6 bytes (M d) */
	MBSTATE_RULE_A_ETHERTYPE,	/* u16, host order (M p) */
	MBSTATE_RULE_A_SRC_IPV4,	/* __be32 (I s) */
	MBSTATE_RULE_A_SRC_PLEN,	/* u8, 0..32, default 32 (I s) */
	MBSTATE_RULE_A_DST_IPV4,	/* __be32 (I d) */
	MBSTATE_RULE_A_DST_PLEN,	/* u8, 0..32, default 32 (I d) */
	MBSTATE_RULE_A_TOS,		/* u8 (I t) */
	MBSTATE_RULE_A_PROTO,		/* u8 (I p; T p: 6 or 17) */
	MBSTATE_RULE_A_SPORT_MIN,	/* u16 (T s) */
	MBSTATE_RULE_A_SPORT_MAX,	/* u16, >= min, default min (T s) */
	MBSTATE_RULE_A_DPORT_MIN,	/* u16 (T d) */
	MBSTATE_RULE_A_DPORT_MAX,	/* u16, >= min, default min (T d) */
	MBSTATE_RULE_A_PACKETS,		/* u64, reply only */
	MBSTATE_RULE_A_BYTES,		/* u64, reply only */
	MBSTATE_RULE_A_PAD,
	__MBSTATE_RULE_A_MAX
};
#define MBSTATE_RULE_A_MAX (__MBSTATE_RULE_A_MAX - 1)

/* Load-balancer configuration of "R L <MAC> <IP> <type> <srcIP> <dstIP>". */
enum mbstate_lb_attr {
	MBSTATE_LB_A_UNSPEC,
	MBSTATE_LB_A_TYPE,		/* u8: 0 any source, 1 only SRC_IPV4 */
	MBSTATE_LB_A_SRC_IPV4,		/* __be32, 0.0.0.0 with type 0 */
	MBSTATE_LB_A_DST_IPV4,		/* __be32, the backend */
	__MBSTATE_LB_A_MAX
};
#define MBSTATE_LB_A_MAX (__MBSTATE_LB_A_MAX - 1)

enum mbstate_stats_attr {
	MBSTATE_STATS_A_UNSPEC,
	MBSTATE_STATS_A_RX_PACKETS,	/* u64: frames to the MB seen at the bridge */
	MBSTATE_STATS_A_RX_BYTES,	/* u64 */
	MBSTATE_STATS_A_FW_DROP_PACKETS,/* u64: dropped by a firewall rule */
	MBSTATE_STATS_A_FW_DROP_BYTES,	/* u64 */
	MBSTATE_STATS_A_DISABLED_PACKETS,/* u64: passed because MB disabled */
	MBSTATE_STATS_A_PAD,
	__MBSTATE_STATS_A_MAX
};
#define MBSTATE_STATS_A_MAX (__MBSTATE_STATS_A_MAX - 1)

#endif /* _UAPI_LINUX_MBSTATE_H */
