/* SPDX-License-Identifier: GPL-2.0 */
/* Internals of mbstate.ko shared by registry.c and netlink.c. */
#ifndef _MBSTATE_MBSTATE_H
#define _MBSTATE_MBSTATE_H

#include <linux/hashtable.h>
#include <linux/mutex.h>
#include <linux/netlink.h>
#include <net/genetlink.h>
#include <mbvisor/kernel.h>

extern struct mutex mbstate_mutex;
extern unsigned int max_middleboxes;
extern unsigned int max_rules;
extern unsigned int max_entries;
extern unsigned int max_subtables;

/*
 * Everything a request leaves behind (middleboxes, rules, their per-CPU
 * counters, rule sets and classifier tables, load-balancer configurations)
 * is charged to the memory cgroup of the task that sent the request: an
 * administrator's shell, or the mbhostd@ unit of a VM. The registry's own
 * limits are per namespace, and a user namespace makes namespaces cheap
 * (docs/SECURITY.md, W2); the cgroup bounds the total.
 */
#define MBSTATE_GFP		GFP_KERNEL_ACCOUNT
#define mbstate_alloc_pcpu_stats(type) \
	__netdev_alloc_pcpu_stats(type, MBSTATE_GFP)

#define mbstate_deref(p) \
	rcu_dereference_protected(p, lockdep_is_held(&mbstate_mutex))

/* Per network namespace registry. */
struct mbstate_net {
	DECLARE_HASHTABLE(table, 8);
	struct list_head mbs;		/* every middlebox, insertion order */
	struct list_head all;		/* in mbstate_nets */
	struct net *net;
	u32 count;
	u32 gen;			/* bumped by every change, never 0 */
	/* load balancer: attached backends by address, for MAC learning */
	DECLARE_HASHTABLE(lb_index, 6);
	u32 lb_n_index;			/* backends in lb_index; READ_ONCE */
	atomic_t lb_unlearned;		/* of them, without a learned MAC */
	u32 lb_live;			/* backend objects not freed; mutex */
};

/* One backend of a load-balancer request. */
struct mblb_spec {
	__be32 ip;
	u32 weight;
	bool has_mac;
	u8 mac[ETH_ALEN];
};

/* A load-balancer configuration as requested, checked. */
struct mblb_req {
	u8 type;
	__be32 src_ip;
	u32 n;
	struct mblb_spec be[MBSTATE_LB_MAX_BACKENDS];
};

struct mbstate_net *mbstate_pernet(const struct net *net);
struct mb_entry *mbstate_find(struct mbstate_net *mn, const u8 *mac);
bool mbstate_service_available(unsigned int service_bit);
struct mb_entry *mbstate_mb_new(struct mbstate_net *mn, const u8 *mac,
				__be32 ip, u16 vlan);
void mbstate_mb_del(struct mbstate_net *mn, struct mb_entry *mb);
/* Indices of mbstate_stats_read()'s result. */
enum {
	MB_ST_RX_PACKETS,
	MB_ST_RX_BYTES,
	MB_ST_FW_DROP_PACKETS,
	MB_ST_FW_DROP_BYTES,
	MB_ST_DISABLED_PACKETS,
	MB_ST_UNBOUND_PACKETS,
	MB_ST_N
};

void mbstate_stats_read(const struct mb_entry *mb, u64 out[MB_ST_N]);
void mbstate_rule_ctr_read(const struct mbfw_rule *rule, u64 *packets,
			   u64 *bytes);

/* Rule sets: build a new one and publish it in place of the old one. */
int mbstate_fw_replace(struct mb_entry *mb, struct mbfw_rule **rules, u32 n,
		       struct netlink_ext_ack *extack);
struct mbfw_rule *mbstate_rule_new(struct mb_entry *mb,
				   const struct mb_rule *r);
void mbstate_rule_free(struct mbfw_rule *rule);
void mbstate_fw_clear(struct mb_entry *mb);

/*
 * Policy of an attribute that only replies carry (counters, IDs, state):
 * refused in a request with a sentence naming it, not the core's generic
 * "Attribute failed policy validation".
 */
#define MBSTATE_POLICY_REPLY_ONLY(name)					\
	{ .type = NLA_REJECT,						\
	  .reject_message = name " is a reply attribute, not part of a request" }

/* The load balancer (lb.c). */
extern const struct nla_policy mbstate_be_policy[MBSTATE_BE_A_MAX + 1];
extern const struct nla_policy mbstate_lb_policy[MBSTATE_LB_A_MAX + 1];
int mbstate_lb_req_parse(struct genl_info *info, __be32 ip, const u8 *mac,
			 struct mblb_req *req);
int mbstate_lb_set(struct mbstate_net *mn, struct mb_entry *mb,
		   const struct mblb_req *req, struct netlink_ext_ack *extack);
void mbstate_lb_clear(struct mbstate_net *mn, struct mb_entry *mb);
void mbstate_lb_quota_put(struct mblb_quota *q);
void mbstate_lb_stats_read(const struct mb_entry *mb, u64 out[MB_LB_NSTATS]);
int mbstate_lb_put(struct sk_buff *skb, struct mb_entry *mb);
size_t mbstate_lb_msg_size(const struct mb_entry *mb);
int mbstate_new_backend_doit(struct sk_buff *skb, struct genl_info *info);
int mbstate_del_backend_doit(struct sk_buff *skb, struct genl_info *info);
int mbstate_get_flow_dumpit(struct sk_buff *skb, struct netlink_callback *cb);

extern struct genl_family mbstate_family;
int mbstate_lb_init(void);
void mbstate_lb_exit(void);
int mbstate_genl_init(void);
void mbstate_genl_exit(void);
void mbstate_notify_mb(struct mbstate_net *mn, struct mb_entry *mb, u8 cmd);
void mbstate_notify_rules(struct mbstate_net *mn, struct mb_entry *mb, u8 cmd,
			  const struct mbfw_rule *one);

#endif /* _MBSTATE_MBSTATE_H */
