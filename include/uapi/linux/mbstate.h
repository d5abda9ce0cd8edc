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
 * F) and a load-balancer configuration (service L), and counters. It may be
 * bound to a VLAN (MBSTATE_A_VLAN).
 *
 * VLANs
 * -----
 *   On a bridge with VLAN filtering a MAC address is unique only per VLAN.
 *   A frame there is for a middlebox only if its VLAN, as the bridge's
 *   ingress will classify it (the 802.1Q tag of the bridge's VLAN protocol,
 *   else the ingress port's PVID), is the middlebox's MBSTATE_A_VLAN and
 *   the ingress port is a member of it. A middlebox without MBSTATE_A_VLAN
 *   is offloaded on bridges without VLAN filtering only: on a
 *   VLAN-filtering bridge its frames pass untouched (counted in
 *   MBSTATE_STATS_A_UNBOUND_PACKETS), since another host may have the same
 *   MAC in another VLAN. On a bridge without VLAN filtering MBSTATE_A_VLAN
 *   is not looked at: the bridge forwards by MAC alone, whatever the tag.
 *   Frames in another VLAN, and frames the bridge's VLAN filter will drop,
 *   are not counted on the middlebox.
 *
 * Every rejected request carries an extended ack message saying why, and
 * changes nothing.
 *
 * MBSTATE_CMD_GET_MB
 * ------------------
 *   Request (doit):  MBSTATE_A_MAC: the middlebox.
 *   Request (dump):  nothing; one reply per middlebox of the namespace.
 *   Reply:           MBSTATE_A_MAC, MBSTATE_A_IPV4, MBSTATE_A_SERVICES,
 *                    MBSTATE_A_ENABLED, MBSTATE_A_NRULES, MBSTATE_A_VLAN
 *                    (if bound), MBSTATE_A_LB (if service L),
 *                    MBSTATE_A_STATS.
 *   Dumps are consistent: if the registry changed while the dump ran, the
 *   last message carries NLM_F_DUMP_INTR and userspace retries.
 *
 * MBSTATE_CMD_NEW_MB  (text command "R")
 * ------------------
 *   MBSTATE_A_MAC      required, unicast.
 *   MBSTATE_A_IPV4     required, unicast (not 0.0.0.0, multicast, broadcast).
 *   MBSTATE_A_SERVICES required, exactly one MBSTATE_SVC_* bit.
 *   MBSTATE_A_VLAN     optional, 1..4094: bind the middlebox to that VLAN
 *                      (see VLANs above); without it, it is not bound.
 *   MBSTATE_A_LB       required with MBSTATE_SVC_L, refused otherwise:
 *                      MBSTATE_LB_A_TYPE (required), MBSTATE_LB_A_SRC_IPV4
 *                      (0.0.0.0 with type 0, a unicast address with type 1),
 *                      and the backends: either MBSTATE_LB_A_DST_IPV4 (one
 *                      backend, weight 1, MAC learned: the report's form) or
 *                      MBSTATE_LB_A_BACKENDS, a nest of 1 to
 *                      MBSTATE_LB_MAX_BACKENDS MBSTATE_LB_A_BACKEND nests
 *                      (MBSTATE_BE_A_IPV4 required, MBSTATE_BE_A_MAC and
 *                      MBSTATE_BE_A_WEIGHT optional), not both. A backend is
 *                      unicast, not the middlebox's address, listed once; a
 *                      backend MAC is unicast, not the middlebox's MAC.
 *   MBSTATE_A_REPLACE  flag, service L only: create the middlebox or replace
 *                      its whole load-balancer configuration (type, source,
 *                      backends) in one step; every frame sees the old or
 *                      the new configuration. Established flows keep their
 *                      backend.
 *   A new middlebox starts enabled. Registering an already registered
 *   middlebox for another service adds that service if the IPv4 address and
 *   the VLAN (or its absence) are the same, else it is refused (EEXIST);
 *   registering it again for a service it has is refused (EEXIST) unless
 *   MBSTATE_A_REPLACE is given. A service whose offload module is not
 *   loaded is refused (EOPNOTSUPP) with a message naming the module.
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
 *
 * MBSTATE_CMD_NEW_BACKEND  (text command "A <MAC> L <IP> [mac <MAC>] [weight <w>]")
 * -----------------------
 *   MBSTATE_A_MAC required, MBSTATE_A_BACKEND required (MBSTATE_BE_A_IPV4;
 *   MBSTATE_BE_A_MAC and MBSTATE_BE_A_WEIGHT optional, weight default 1).
 *   The middlebox must be registered for MBSTATE_SVC_L. Adds the backend, or,
 *   if the configuration has it, replaces its MAC and weight. Weight 0 keeps
 *   the backend configured but gives it no new flow (standby). A new
 *   configuration (and Maglev table) is published in one step. Announced
 *   on the "changes" group as MBSTATE_CMD_NEW_BACKEND with the middlebox's
 *   whole state (as a GET_MB reply).
 *
 * MBSTATE_CMD_DEL_BACKEND  (text command "D <MAC> L <IP>")
 * -----------------------
 *   MBSTATE_A_MAC required, MBSTATE_A_BACKEND required (MBSTATE_BE_A_IPV4
 *   only). Removes the backend from the configuration: it takes no new flow,
 *   its established flows stay on it until they end (it is then reported as
 *   MBSTATE_BE_DRAINING), and no flow of another backend moves. Removing a
 *   backend that is not configured is refused (ENOENT). Announced as
 *   MBSTATE_CMD_DEL_BACKEND with the middlebox's whole state.
 *
 * MBSTATE_CMD_GET_FLOW  (dump only)
 * --------------------
 *   MBSTATE_A_MAC optional: only that middlebox's flows. One reply per flow
 *   of the load-balancer offload's flow table in the namespace:
 *   MBSTATE_A_MAC (the middlebox the flow was addressed to), MBSTATE_A_FLOW.
 *   Flows come and go while the dump runs: a flow created or ended meanwhile
 *   may be missing or included. Refused (EOPNOTSUPP) while mblb is not
 *   loaded.
 *
 * Load-balancer state in MBSTATE_CMD_GET_MB replies
 * -------------------------------------------------
 *   MBSTATE_A_LB holds MBSTATE_LB_A_TYPE, MBSTATE_LB_A_SRC_IPV4,
 *   MBSTATE_LB_A_DST_IPV4 (the first configured backend, 0.0.0.0 if none),
 *   MBSTATE_LB_A_BACKENDS (every configured backend, then every draining
 *   one, with MBSTATE_BE_A_STATE, the MAC in use if known, its origin and
 *   the per-backend counters), MBSTATE_LB_A_FLOWS and MBSTATE_LB_A_STATS.
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
	MBSTATE_CMD_NEW_BACKEND,
	MBSTATE_CMD_DEL_BACKEND,
	MBSTATE_CMD_GET_FLOW,
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
	MBSTATE_A_REPLACE,	/* flag: NEW_RULE replaces the whole rule set;
				 * NEW_MB (service L) replaces the LB config */
	MBSTATE_A_BACKEND,	/* nest, MBSTATE_BE_A_* */
	MBSTATE_A_FLOW,		/* nest, MBSTATE_FLOW_A_*, reply only */
	MBSTATE_A_VLAN,		/* u16, 1..MBSTATE_VLAN_MAX: the VLAN the
				 * middlebox is bound to */
	__MBSTATE_A_MAX
};
#define MBSTATE_A_MAX (__MBSTATE_A_MAX - 1)

/* VLAN ids a registration may be bound to (0 and 4095 are reserved). */
#define MBSTATE_VLAN_MIN	1
#define MBSTATE_VLAN_MAX	4094

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
	MBSTATE_LB_A_BACKENDS,		/* nest of MBSTATE_LB_A_BACKEND */
	MBSTATE_LB_A_BACKEND,		/* nest, MBSTATE_BE_A_* (only inside
					 * MBSTATE_LB_A_BACKENDS) */
	MBSTATE_LB_A_FLOWS,		/* u32: flows in the table, reply only */
	MBSTATE_LB_A_STATS,		/* nest, MBSTATE_LB_STATS_A_*, reply only */
	MBSTATE_LB_A_PAD,
	__MBSTATE_LB_A_MAX
};
#define MBSTATE_LB_A_MAX (__MBSTATE_LB_A_MAX - 1)

/* Backends of one middlebox, configured and draining together. */
#define MBSTATE_LB_MAX_BACKENDS	64
/* Weights are 0 (standby: no new flows) to this; the default is 1. */
#define MBSTATE_LB_WEIGHT_MAX	1000

/* A backend's state (MBSTATE_BE_A_STATE). */
enum mbstate_be_state {
	MBSTATE_BE_ACTIVE,	/* configured with a weight: takes new flows */
	MBSTATE_BE_STANDBY,	/* configured with weight 0: no new flows */
	MBSTATE_BE_DRAINING,	/* removed; its established flows go on */
};

/* Where the MAC address a backend is reached at comes from. */
enum mbstate_be_mac_source {
	MBSTATE_BE_MAC_UNKNOWN,	/* not known yet: frames go to the middlebox */
	MBSTATE_BE_MAC_STATIC,	/* given in the configuration */
	MBSTATE_BE_MAC_LEARNED,	/* seen at the bridge (ARP, its own frames) */
};

enum mbstate_be_attr {
	MBSTATE_BE_A_UNSPEC,
	MBSTATE_BE_A_IPV4,		/* __be32 */
	MBSTATE_BE_A_MAC,		/* 6 bytes: request, a static MAC;
					 * reply, the MAC in use (if known) */
	MBSTATE_BE_A_WEIGHT,		/* u32, 0..MBSTATE_LB_WEIGHT_MAX */
	MBSTATE_BE_A_STATE,		/* u8, MBSTATE_BE_*, reply only */
	MBSTATE_BE_A_MAC_SOURCE,	/* u8, MBSTATE_BE_MAC_*, reply only */
	MBSTATE_BE_A_FLOWS,		/* u32: its flows now, reply only */
	MBSTATE_BE_A_NEW_FLOWS,		/* u64: flows given to it, reply only */
	MBSTATE_BE_A_PACKETS,		/* u64: frames redirected to it */
	MBSTATE_BE_A_BYTES,		/* u64 */
	MBSTATE_BE_A_RET_PACKETS,	/* u64: its replies rewritten back */
	MBSTATE_BE_A_RET_BYTES,		/* u64 */
	MBSTATE_BE_A_PAD,
	__MBSTATE_BE_A_MAX
};
#define MBSTATE_BE_A_MAX (__MBSTATE_BE_A_MAX - 1)

/*
 * Per-middlebox load-balancer counters (reply only). Every frame that the
 * offload does not redirect goes on to the middlebox unchanged and is counted
 * under the reason why: nothing is dropped.
 */
enum mbstate_lb_stats_attr {
	MBSTATE_LB_STATS_A_UNSPEC,
	MBSTATE_LB_STATS_A_NEW_FLOWS,		/* u64: flows created */
	MBSTATE_LB_STATS_A_REDIRECTED_PACKETS,	/* u64: frames sent to a backend */
	MBSTATE_LB_STATS_A_REDIRECTED_BYTES,	/* u64 */
	MBSTATE_LB_STATS_A_NOT_SELECTED,	/* u64: type 1, another source */
	MBSTATE_LB_STATS_A_UNHANDLED,		/* u64: IPv4 for the middlebox that
						 * is not TCP, UDP or ICMP echo,
						 * fragments, other destination */
	MBSTATE_LB_STATS_A_NO_FLOW,		/* u64: TCP without SYN and without
						 * a flow (begun at the middlebox) */
	MBSTATE_LB_STATS_A_NO_BACKEND,		/* u64: no backend takes flows */
	MBSTATE_LB_STATS_A_MAC_UNKNOWN,		/* u64: the chosen backend's MAC is
						 * not known yet */
	MBSTATE_LB_STATS_A_TABLE_FULL,		/* u64: flow table full */
	MBSTATE_LB_STATS_A_COLLISION,		/* u64: the backend already has a
						 * flow with this client address
						 * and ports */
	MBSTATE_LB_STATS_A_PAD,
	MBSTATE_LB_STATS_A_FROM_MB_PORT,	/* u64: would have opened a flow,
						 * but came in on the middlebox's
						 * own bridge port (spoofed) */
	MBSTATE_LB_STATS_A_MB_PORT_UNKNOWN,	/* u64: would have opened a flow,
						 * but no frame from the
						 * middlebox's MAC was seen yet:
						 * its port is not known */
	MBSTATE_LB_STATS_A_OVER_QUOTA,		/* u64: the middlebox has as many
						 * flows as mblb's max_flows_per_mb
						 * allows */
	__MBSTATE_LB_STATS_A_MAX
};
#define MBSTATE_LB_STATS_A_MAX (__MBSTATE_LB_STATS_A_MAX - 1)

/* A flow's state (MBSTATE_FLOW_A_STATE). */
enum mbstate_flow_state {
	MBSTATE_FLOW_NEW,		/* only the client has spoken */
	MBSTATE_FLOW_ESTABLISHED,	/* the backend answered */
	MBSTATE_FLOW_CLOSING,		/* one side sent FIN */
	MBSTATE_FLOW_CLOSED,		/* both sent FIN, or one RST */
};

/*
 * One flow of the load-balancer offload (reply only). The client sent to
 * VIP (the middlebox's address) and port; the flow is forwarded to the
 * backend, whose replies are rewritten back to come from VIP. For ICMP echo
 * both ports are the echo identifier.
 */
enum mbstate_flow_attr {
	MBSTATE_FLOW_A_UNSPEC,
	MBSTATE_FLOW_A_PROTO,		/* u8: 6, 17 or 1 */
	MBSTATE_FLOW_A_CLIENT_IPV4,	/* __be32 */
	MBSTATE_FLOW_A_CLIENT_PORT,	/* u16, host order */
	MBSTATE_FLOW_A_VIP_IPV4,	/* __be32 */
	MBSTATE_FLOW_A_VIP_PORT,	/* u16, host order */
	MBSTATE_FLOW_A_BACKEND_IPV4,	/* __be32 */
	MBSTATE_FLOW_A_BACKEND_MAC,	/* 6 bytes */
	MBSTATE_FLOW_A_STATE,		/* u8, MBSTATE_FLOW_* */
	MBSTATE_FLOW_A_IDLE_MS,		/* u32: since its last frame */
	__MBSTATE_FLOW_A_MAX
};
#define MBSTATE_FLOW_A_MAX (__MBSTATE_FLOW_A_MAX - 1)

enum mbstate_stats_attr {
	MBSTATE_STATS_A_UNSPEC,
	MBSTATE_STATS_A_RX_PACKETS,	/* u64: frames to the MB seen at the bridge */
	MBSTATE_STATS_A_RX_BYTES,	/* u64 */
	MBSTATE_STATS_A_FW_DROP_PACKETS,/* u64: dropped by a firewall rule */
	MBSTATE_STATS_A_FW_DROP_BYTES,	/* u64 */
	MBSTATE_STATS_A_DISABLED_PACKETS,/* u64: passed because MB disabled */
	MBSTATE_STATS_A_PAD,
	MBSTATE_STATS_A_UNBOUND_PACKETS,/* u64: frames for the MAC on a
					 * VLAN-filtering bridge, passed
					 * untouched because the middlebox
					 * has no VLAN (not in RX_PACKETS) */
	__MBSTATE_STATS_A_MAX
};
#define MBSTATE_STATS_A_MAX (__MBSTATE_STATS_A_MAX - 1)

#endif /* _UAPI_LINUX_MBSTATE_H */
