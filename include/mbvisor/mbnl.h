/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * Userspace client of the mbstate generic netlink family (libmnl), shared by
 * mbadm and mbhostd so that a command does the same thing from both.
 *
 * Every function returns 0 on success or a negative errno; on failure @err
 * holds a sentence: the kernel's extended ack message when the kernel refused
 * the request, otherwise a description of the local failure.
 */
#ifndef _MBVISOR_MBNL_H
#define _MBVISOR_MBNL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <mbvisor/cmd.h>

struct mbnl;

struct mbnl_stats {
	uint64_t rx_packets, rx_bytes;
	uint64_t fw_drop_packets, fw_drop_bytes;
	uint64_t disabled_packets;
	uint64_t unbound_packets;	/* VLAN-filtering bridge, no VLAN */
};

/* One backend of a load balancer, with its counters. */
struct mbnl_backend {
	__be32 ip;
	__u8 mac[MB_ETH_ALEN];	/* valid unless mac_source is UNKNOWN */
	__u8 mac_source;	/* MBSTATE_BE_MAC_* */
	__u8 state;		/* MBSTATE_BE_* */
	__u32 weight;
	__u32 flows;		/* in the flow table now */
	uint64_t new_flows;
	uint64_t packets, bytes;	/* redirected to it */
	uint64_t ret_packets, ret_bytes;	/* its replies, rewritten back */
};

/* A load balancer's counters (MBSTATE_LB_STATS_A_*). */
struct mbnl_lb_stats {
	uint64_t new_flows;
	uint64_t redirected_packets, redirected_bytes;
	uint64_t not_selected, unhandled, no_flow, no_backend;
	uint64_t mac_unknown, table_full, collision;
	uint64_t from_mb_port, mb_port_unknown, over_quota;
};

struct mbnl_mb {
	__u8 mac[MB_ETH_ALEN];
	__be32 ip;
	__u16 vlan;		/* 0: not bound to a VLAN */
	__u32 services;		/* MBSTATE_SVC_* */
	bool enabled;
	__u32 nrules;
	bool has_lb;
	struct mb_lb_conf lb;	/* dst_ip: the first configured backend */
	__u32 n_backends;	/* configured ones first, then draining ones */
	struct mbnl_backend backends[MBSTATE_LB_MAX_BACKENDS];
	__u32 lb_flows;
	struct mbnl_lb_stats lb_stats;
	struct mbnl_stats stats;
};

/* One flow of the load-balancer offload (MBSTATE_CMD_GET_FLOW). */
struct mbnl_flow {
	__u8 mac[MB_ETH_ALEN];	/* the middlebox the client addressed */
	__u8 proto;		/* 6, 17, 1 */
	__u8 state;		/* MBSTATE_FLOW_* */
	__be32 client_ip, vip, backend_ip;
	__u16 client_port, vip_port;	/* host order */
	__u8 backend_mac[MB_ETH_ALEN];
	__u32 idle_ms;
};

struct mbnl_rule {
	__u32 id;
	struct mb_rule rule;
	uint64_t packets, bytes;
};

/*
 * A change announced on the "changes" multicast group. cmd is
 * MBSTATE_CMD_UNSPEC when the socket's receive buffer overflowed and events
 * were lost (re-read the state with the dumps).
 */
struct mbnl_event {
	int cmd;			/* MBSTATE_CMD_NEW_MB, ... */
	struct mbnl_mb mb;		/* mac always; the rest for *_MB, and
					 * nrules for *_RULE too */
	bool has_rule;
	struct mbnl_rule rule;		/* when exactly one rule changed */
};

/* Opens a socket and resolves the family ("is mbstate.ko loaded?"). On
 * failure returns NULL with errno set: ENOENT when the family is missing.
 * Use one handle per thread, and a handle of its own for mbnl_monitor(). */
struct mbnl *mbnl_open(char *err, size_t errlen);
void mbnl_close(struct mbnl *nl);

/* The family's id, as resolved by mbnl_open(). The kernel gives a family a
 * new id each time it registers, so a changed id means mbstate.ko was
 * reloaded (mbhostd keeps it to notice a reload while it was not running). */
uint16_t mbnl_family_id(const struct mbnl *nl);

/* Runs one parsed command (any op but MB_OP_QUERY) against the registry. */
int mbnl_exec(struct mbnl *nl, const struct mb_cmd *cmd,
	      char *err, size_t errlen);

/*
 * How many of the first @n rules fit into one NEW_RULE request. The
 * MBSTATE_A_RULES nest is one netlink attribute, whose length is 16 bits, so
 * a request holds at most 64 KiB of rules: about 960 of the largest (class I
 * with every field), about 1,800 of the common "I 4 s <ip>/<len>". Never
 * less than 1 when @n > 0.
 */
size_t mbnl_rules_per_request(const struct mb_rule *rules, size_t n);

/*
 * Adds @n rules to one middlebox.
 *
 * If they fit into one request (mbnl_rules_per_request() == @n) the call is
 * all or none. More rules are sent as several requests in order, each one all
 * or none: when one of them is refused, the rules of the requests before it
 * stay added. Callers that need to know which rule failed (mbadm batch) send
 * at most mbnl_rules_per_request() rules per call.
 *
 * With @replace the rules replace the whole rule set atomically (MBSTATE_A_REPLACE;
 * n == 0 clears it). A replacement that does not fit into one request is
 * refused with -E2BIG and changes nothing: a replacement spread over several
 * requests would leave the firewall with part of its rules in between.
 */
int mbnl_add_rules(struct mbnl *nl, const __u8 mac[MB_ETH_ALEN],
		   const struct mb_rule *rules, size_t n, bool replace,
		   char *err, size_t errlen);

int mbnl_get_mb(struct mbnl *nl, const __u8 mac[MB_ETH_ALEN],
		struct mbnl_mb *mb, char *err, size_t errlen);

/* Dumps restart by themselves (bounded; then -EAGAIN) when the registry
 * changed under them. @cb sees each object once, after the dump completed,
 * so it may use @nl; @cb returning non-zero stops and is returned. */
int mbnl_dump_mbs(struct mbnl *nl,
		  int (*cb)(const struct mbnl_mb *mb, void *arg), void *arg,
		  char *err, size_t errlen);
int mbnl_dump_rules(struct mbnl *nl, const __u8 mac[MB_ETH_ALEN],
		    int (*cb)(const struct mbnl_rule *rule, void *arg),
		    void *arg, char *err, size_t errlen);

/*
 * Replaces the whole load-balancer configuration of a middlebox in one step
 * (or registers it): @reg is an "R L" command, @extra[0..n) more backends
 * ("A <MAC> L" commands' backends). MBSTATE_CMD_NEW_MB with
 * MBSTATE_A_REPLACE and every backend in MBSTATE_LB_A_BACKENDS.
 */
int mbnl_lb_replace(struct mbnl *nl, const struct mb_cmd *reg,
		    const struct mb_lb_backend *extra, size_t n,
		    char *err, size_t errlen);

/* The flows of the namespace, or of the middlebox @mac if not NULL. A
 * snapshot walk: flows that come or go meanwhile may be missed or seen. */
int mbnl_dump_flows(struct mbnl *nl, const __u8 *mac,
		    int (*cb)(const struct mbnl_flow *flow, void *arg),
		    void *arg, char *err, size_t errlen);

/* Joins the "changes" group and calls @cb for each event until it returns
 * non-zero (returned) or an error occurs; -ENOENT when the family goes away
 * (mbstate.ko unloaded). The handle serves only this from then on. */
int mbnl_monitor(struct mbnl *nl,
		 int (*cb)(const struct mbnl_event *ev, void *arg), void *arg,
		 char *err, size_t errlen);

#endif /* _MBVISOR_MBNL_H */
