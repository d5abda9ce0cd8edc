/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The kernel-internal API between mbvisor's modules:
 *
 *   mbstate.ko  the registry: middlebox objects per network namespace, their
 *               rule sets and configuration, the generic netlink family.
 *   mbhook.ko   the bridge hook: finds the middlebox a frame is addressed to
 *               and calls the offloads it enabled.
 *   mbfw.ko     the firewall offload (drops frames that match a rule).
 *   mblb.ko     the load-balancer offload (redirects flows to backends and
 *               rewrites the replies back; owns the flow table).
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
 *
 * Load balancer: mb->lb_conf (a struct mblb_conf, immutable, published with
 * rcu_assign_pointer) and the struct mblb_backend objects it points to. A
 * backend object is shared by the configurations and by the flows of mblb
 * that use it, and counted (ref): the configurations hold their references
 * under mbstate_mutex, a flow takes one with refcount_inc_not_zero() on the
 * packet path when it is created and gives it back from process context
 * (mbstate_lb_backend_put(), which takes mbstate_mutex on the last one).
 * While its middlebox exists and it is configured or has flows, a backend is
 * attached: on mb->lb_backends and in the namespace's learning index; its
 * learned MAC and the port it is bound to (atomic64 each, where first) are
 * written on the packet path, and cleared under mbstate_mutex when that
 * port goes (a netdev notifier, under RTNL: RTNL, then mbstate_mutex).
 * mb->lb_port, the middlebox's own port, is set once by mblb_pre and
 * cleared the same way.
 *
 * mblb: mblb_scan_mutex (a collector pass, a namespace's exit, the
 * module's) is taken before mbstate_mutex, which is taken before
 * mblb_hook_mutex (mblb_net_use/unuse), never the other way round.
 */
#ifndef _MBVISOR_KERNEL_H
#define _MBVISOR_KERNEL_H

#include <linux/etherdevice.h>
#include <linux/if_vlan.h>
#include <linux/netdevice.h>
#include <linux/netfilter.h>
#include <linux/percpu.h>
#include <linux/rculist.h>
#include <linux/refcount.h>
#include <linux/u64_stats_sync.h>
#include <mbvisor/classifier.h>
#include <mbvisor/rule.h>

struct mb_pcpu_stats {
	u64_stats_t rx_packets;
	u64_stats_t rx_bytes;
	u64_stats_t fw_drop_packets;
	u64_stats_t fw_drop_bytes;
	u64_stats_t disabled_packets;
	u64_stats_t unbound_packets;
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

/* Per-CPU counters of a load-balancing middlebox (MBSTATE_LB_STATS_A_*). */
enum {
	MB_LB_NEW_FLOWS,
	MB_LB_REDIRECTED_PACKETS,
	MB_LB_REDIRECTED_BYTES,
	MB_LB_NOT_SELECTED,
	MB_LB_UNHANDLED,
	MB_LB_NO_FLOW,
	MB_LB_NO_BACKEND,
	MB_LB_MAC_UNKNOWN,
	MB_LB_TABLE_FULL,
	MB_LB_COLLISION,
	MB_LB_FROM_MB_PORT,
	MB_LB_MB_PORT_UNKNOWN,
	MB_LB_OVER_QUOTA,
	MB_LB_NSTATS
};

struct mb_lb_pcpu_stats {
	u64_stats_t v[MB_LB_NSTATS];
	struct u64_stats_sync syncp;
};

/* Per-CPU counters of one backend (MBSTATE_BE_A_*). */
enum {
	MBLB_BE_NEW_FLOWS,
	MBLB_BE_PACKETS,
	MBLB_BE_BYTES,
	MBLB_BE_RET_PACKETS,
	MBLB_BE_RET_BYTES,
	MBLB_BE_NSTATS
};

struct mblb_be_pcpu {
	u64_stats_t v[MBLB_BE_NSTATS];
	struct u64_stats_sync syncp;
};

/* mblb_backend.learned: a MAC (ether_addr_to_u64) and this bit if known. */
#define MBLB_MAC_VALID		BIT_ULL(48)

/*
 * mblb_backend.where: the bridge port (ifindex, bits 0-31) and VLAN (bits
 * 32-43, 0 untagged) its MAC was first learned on, and this bit once bound.
 * From then on only frames that enter on that port and VLAN may change the
 * learned MAC, and mblb rewrites replies only from that port (A2, A3 in
 * docs/SECURITY.md), until the port goes or leaves its bridge.
 */
#define MBLB_WHERE_VALID	BIT_ULL(48)

static inline u64 mblb_where(int ifindex, u16 vlan)
{
	return (u64)(u32)ifindex | (u64)(vlan & VLAN_VID_MASK) << 32 |
	       MBLB_WHERE_VALID;
}

static inline int mblb_where_port(u64 where)
{
	return where & MBLB_WHERE_VALID ? (int)(u32)where : 0;
}

struct mbstate_net;

/*
 * The flows of one middlebox, counted against mblb's per-middlebox quota
 * (module parameter max_flows_per_mb) so that one VM cannot take the whole
 * shared flow table. Shared by the middlebox and its backend objects, which
 * may outlive it while flows drain: each holds a reference.
 */
struct mblb_quota {
	refcount_t ref;
	atomic_t flows;			/* under mblb_lock */
	struct rcu_head rcu;
};

/* One backend of one middlebox; see "Load balancer" above. */
struct mblb_backend {
	refcount_t ref;
	__be32 ip;
	u8 mb_mac[ETH_ALEN];		/* its middlebox: never its MAC */
	atomic64_t learned;		/* MAC seen at the bridge */
	atomic64_t where;		/* MBLB_WHERE_*: where it was seen */
	u16 vlan;			/* its middlebox's VLAN, 0 if none */
	atomic_t flows;			/* flows of mblb using it */
	unsigned long flags;		/* MBLB_BE_F_* */
	struct mb_entry *mb;		/* while attached; mutex */
	struct mbstate_net *mn;		/* its namespace's, from attach on */
	struct mblb_quota *quota;	/* its middlebox's; holds a reference */
	struct list_head list;		/* on mb->lb_backends; mutex */
	struct hlist_node hnode;	/* learning index, RCU; mutex */
	struct mblb_be_pcpu __percpu *stats;
	struct rcu_head rcu;
};

/* Counted in the namespace's backends without a learned MAC. */
#define MBLB_BE_F_UNLEARNED	0

struct mblb_conf_be {
	struct mblb_backend *be;	/* holds a reference */
	u32 weight;
	bool has_mac;			/* static MAC */
	u8 mac[ETH_ALEN];
};

/* A load-balancer configuration; immutable once published. */
struct mblb_conf {
	u8 type;			/* 0: any source, 1: only src_ip */
	__be32 src_ip;
	u32 n;
	u16 *table;			/* Maglev: MB_MAGLEV_SIZE entries */
	struct rcu_head rcu;
	struct mblb_conf_be be[];
};

/* The MAC to send a new flow of @cb to, false while it is not known. */
static inline bool mblb_conf_be_mac(const struct mblb_conf_be *cb, u8 *mac)
{
	u64 v;

	if (cb->has_mac) {
		ether_addr_copy(mac, cb->mac);
		return true;
	}
	v = (u64)atomic64_read(&cb->be->learned);
	if (!(v & MBLB_MAC_VALID))
		return false;
	u64_to_ether_addr(v, mac);
	return true;
}

struct mb_entry {
	struct hlist_node hnode;	/* per-netns hash, RCU */
	struct list_head list;		/* per-netns list in insertion order */
	u8 mac[ETH_ALEN];
	__be32 ip;
	u16 vlan;			/* bound VLAN, 0 if none; never changes */
	int lb_port;			/* ifindex of the bridge port frames
					 * from its MAC came in on, 0 before
					 * the first; READ_ONCE (mblb) */
	u32 services;			/* MBSTATE_SVC_*, changed under mutex */
	bool enabled;			/* READ_ONCE on the packet path */
	u32 next_rule_id;
	u32 fw_gen;			/* bumped by each change of fw; mutex */
	struct mbfw_ruleset __rcu *fw;
	struct mblb_conf __rcu *lb_conf;	/* NULL without service L */
	struct mblb_quota *lb_quota;	/* holds a reference */
	struct list_head lb_backends;	/* attached mblb_backend, mutex */
	u32 lb_n_backends;		/* on lb_backends */
	struct mb_lb_pcpu_stats __percpu *lb_stats;
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
u16 mbhook_frame_vlan(struct net_device *port, const struct sk_buff *skb);
bool mbhook_frame_in_mb_vlan(const struct mb_entry *mb,
			     struct net_device *port,
			     const struct sk_buff *skb, bool *unbound);

/*
 * Called by mbhook when an offload comes or goes. When it goes, every
 * middlebox forgets that service and its state (a reload of the offload
 * module starts empty; mbhostd restores what its guests asked for).
 */
void mbstate_service_set(unsigned int service_bit, bool available);

/* Counts one event @what (MB_LB_*) of @mb's load balancer; packet path. */
static inline void mb_lb_count(struct mb_entry *mb, unsigned int what,
			       u64 n)
{
	struct mb_lb_pcpu_stats *st = this_cpu_ptr(mb->lb_stats);

	u64_stats_update_begin(&st->syncp);
	u64_stats_add(&st->v[what], n);
	u64_stats_update_end(&st->syncp);
}

/*
 * Gives back a flow's reference to @be. Process context: the last
 * reference detaches and frees it, under mbstate_mutex.
 */
void mbstate_lb_backend_put(struct mblb_backend *be);

/*
 * The bridge saw @ip at @mac (an ARP sender, or the source of an IPv4
 * frame) on the port with ifindex @port, in VLAN @vlan (0: untagged).
 * Updates the learned MAC of every attached backend with that address in
 * @net: a MAC it did not know yet (binding the backend to @port and @vlan),
 * or, if @update (ARP) and the frame came in where the backend is bound, a
 * changed one. Packet path, under rcu_read_lock(); cheap when @net has no
 * backend.
 */
void mbstate_lb_learn(const struct net *net, __be32 ip, const u8 *mac,
		      bool update, int port, u16 vlan);
bool mbstate_lb_learning(const struct net *net, bool update);

/* One flow, as mblb reports it to mbstate for MBSTATE_CMD_GET_FLOW. */
struct mb_lb_flow_info {
	u8 mb_mac[ETH_ALEN];
	u8 be_mac[ETH_ALEN];
	__be32 client_ip, vip, be_ip;
	__be16 client_port, vip_port;
	u8 proto;
	u8 state;			/* MBSTATE_FLOW_* */
	u32 idle_ms;
};

/*
 * What mblb offers mbstate, called in process context under mbstate_mutex.
 *
 * flow_next() fills @out with the first flow of @net (of the middlebox @mac
 * unless NULL) at or after position *pos, sets *pos past it and returns
 * true; false when there is none.
 *
 * net_use() is called before @net gets its first backend object, and
 * net_unuse() when its last one is freed: mblb's own bridge hooks run only
 * in between, so that a namespace without a load balancer does not pay for
 * them on every frame. Every flow holds a backend object, so there are no
 * flows outside that span either. net_use() may fail (a negative errno);
 * the request is then refused and nothing changed.
 */
struct mbstate_lb_ops {
	bool (*flow_next)(const struct net *net, const u8 *mac,
			  unsigned long *pos, struct mb_lb_flow_info *out);
	int (*net_use)(struct net *net);
	void (*net_unuse)(struct net *net);
};

/* mblb registers its ops at load (and NULL at unload). */
void mbstate_lb_ops_set(const struct mbstate_lb_ops *ops);

#endif /* _MBVISOR_KERNEL_H */
