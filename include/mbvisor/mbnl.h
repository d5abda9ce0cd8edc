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
};

struct mbnl_mb {
	__u8 mac[MB_ETH_ALEN];
	__be32 ip;
	__u32 services;		/* MBSTATE_SVC_* */
	bool enabled;
	__u32 nrules;
	bool has_lb;
	struct mb_lb_conf lb;
	struct mbnl_stats stats;
};

struct mbnl_rule {
	__u32 id;
	struct mb_rule rule;
	uint64_t packets, bytes;
};

/* A change announced on the "changes" multicast group. */
struct mbnl_event {
	int cmd;			/* MBSTATE_CMD_NEW_MB, ... */
	struct mbnl_mb mb;		/* mac always; the rest for *_MB */
	bool has_rule;
	struct mbnl_rule rule;		/* when exactly one rule changed */
};

/* Opens a socket and resolves the family ("is mbstate.ko loaded?"). */
struct mbnl *mbnl_open(char *err, size_t errlen);
void mbnl_close(struct mbnl *nl);

/* Runs one parsed command (any op but MB_OP_QUERY) against the registry. */
int mbnl_exec(struct mbnl *nl, const struct mb_cmd *cmd,
	      char *err, size_t errlen);

/* Adds @n rules to one middlebox in one request; all or none. With @replace
 * they replace the whole rule set atomically (n == 0 clears it). */
int mbnl_add_rules(struct mbnl *nl, const __u8 mac[MB_ETH_ALEN],
		   const struct mb_rule *rules, size_t n, bool replace,
		   char *err, size_t errlen);

int mbnl_get_mb(struct mbnl *nl, const __u8 mac[MB_ETH_ALEN],
		struct mbnl_mb *mb, char *err, size_t errlen);

/* Dumps restart by themselves (bounded) when the registry changed under
 * them; @cb returning non-zero stops the dump and is returned. */
int mbnl_dump_mbs(struct mbnl *nl,
		  int (*cb)(const struct mbnl_mb *mb, void *arg), void *arg,
		  char *err, size_t errlen);
int mbnl_dump_rules(struct mbnl *nl, const __u8 mac[MB_ETH_ALEN],
		    int (*cb)(const struct mbnl_rule *rule, void *arg),
		    void *arg, char *err, size_t errlen);

/* Joins the "changes" group and calls @cb for each event until it returns
 * non-zero or an error occurs. */
int mbnl_monitor(struct mbnl *nl,
		 int (*cb)(const struct mbnl_event *ev, void *arg), void *arg,
		 char *err, size_t errlen);

#endif /* _MBVISOR_MBNL_H */
