/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The kernel-internal API between mbvisor's modules:
 *
 *   mbstate.ko  the registry: middlebox objects per network namespace, their
 *               rule sets and configuration, the generic netlink family.
 *   mbhook.ko   the bridge hook: finds the middlebox a frame is addressed to
 *               and calls the offloads it enabled.
 *   mbfw.ko     the firewall offload (drops frames that match a rule).
 *
 * DOC: Locking
 *
 * Every change to the registry happens under mbstate_mutex (netlink
 * handlers, offload registration, namespace exit). Readers on the packet path
 * run under rcu_read_lock() (the bridge calls its hooks from the receive
 * softirq) and see: the middlebox hash table (hlist RCU), mb->fw (a
 * struct mbfw_ruleset published with rcu_assign_pointer and never changed
 * after), mb->enabled (READ_ONCE/WRITE_ONCE), and the offload table in
 * mbhook. Freed objects go through call_rcu(). Counters are per-CPU.
 */
#ifndef _MBVISOR_KERNEL_H
#define _MBVISOR_KERNEL_H

#include <linux/netdevice.h>
#include <linux/netfilter.h>
#include <linux/percpu.h>
#include <linux/rculist.h>
#include <linux/u64_stats_sync.h>
#include <mbvisor/classifier.h>
#include <mbvisor/rule.h>

struct mb_pcpu_stats {
	u64_stats_t rx_packets;
	u64_stats_t rx_bytes;
	u64_stats_t fw_drop_packets;
	u64_stats_t fw_drop_bytes;
	u64_stats_t disabled_packets;
	struct u64_stats_sync syncp;
};

struct mb_rule_pcpu {
	u64_stats_t packets;
	u64_stats_t bytes;
	struct u64_stats_sync syncp;
};

/* One firewall rule. @r first: the classifier is built from &rule->r. */
struct mbfw_rule {
	struct mb_rule r;
	u32 id;
	struct mb_rule_pcpu __percpu *ctr;
	struct rcu_head rcu;
};

/* A middlebox's firewall rules and their classifier; immutable. */
struct mbfw_ruleset {
	u32 n_rules;
	u32 n_entries;
	struct mbfw_rule **rules;
	struct mbc_table *table;
	struct rcu_head rcu;
};

struct mb_lb {
	u8 type;
	__be32 src_ip;
	__be32 dst_ip;
};

struct mb_entry {
	struct hlist_node hnode;	/* per-netns hash, RCU */
	struct list_head list;		/* per-netns list in insertion order */
	u8 mac[ETH_ALEN];
	__be32 ip;
	u32 services;			/* MBSTATE_SVC_*, changed under mutex */
	bool enabled;			/* READ_ONCE on the packet path */
	u32 next_rule_id;
	struct mbfw_ruleset __rcu *fw;
	struct mb_lb lb;
	struct mb_pcpu_stats __percpu *stats;
	struct rcu_head rcu;
};

/*
 * Looks up the middlebox with MAC @mac in @net. Caller holds
 * rcu_read_lock(); the result is valid until it drops it.
 */
struct mb_entry *mbstate_lookup_rcu(const struct net *net, const u8 *mac);

/*
 * The offload modules' hooks, registered through mbhook. @rx runs under
 * rcu_read_lock() for a frame addressed to @mb (which has the offload's
 * service and is enabled) and returns NF_ACCEPT to let it go on, or a
 * verdict that ends its way through the bridge (NF_DROP, NF_STOLEN).
 */
struct mbhook_offload {
	unsigned int service_bit;	/* MBSTATE_SVC_*_BIT */
	const char *name;
	unsigned int (*rx)(struct mb_entry *mb, struct sk_buff *skb,
			   const struct nf_hook_state *state);
};

int mbhook_register_offload(const struct mbhook_offload *off);
void mbhook_unregister_offload(const struct mbhook_offload *off);

/*
 * Called by mbhook when an offload comes or goes. When it goes, every
 * middlebox forgets that service and its state (a reload of the offload
 * module starts empty; mbhostd restores what its guests asked for).
 */
void mbstate_service_set(unsigned int service_bit, bool available);

#endif /* _MBVISOR_KERNEL_H */
