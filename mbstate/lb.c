// SPDX-License-Identifier: GPL-2.0
/*
 * mbstate: the load-balancer part of the registry.
 *
 * A middlebox registered for service L has a configuration (struct
 * mblb_conf: type, source, backends with weights and optional static MACs,
 * and the Maglev table that spreads new flows over them). A configuration
 * is built whole from a request, under mbstate_mutex, and published with
 * rcu_assign_pointer(): every frame sees the old one or the new one. The
 * backend objects (struct mblb_backend) outlive configurations: a backend
 * that stays configured keeps its object, so its counters and learned MAC
 * survive changes, and a backend removed while mblb still has flows on it
 * stays attached as "draining" until the last of them ends. The locking
 * rules are in include/mbvisor/kernel.h.
 *
 * The flows themselves belong to mblb.ko; mbstate only shows them
 * (MBSTATE_CMD_GET_FLOW) through the ops mblb registers.
 */
#include <linux/etherdevice.h>
#include <linux/if_arp.h>
#include <linux/if_vlan.h>
#include <linux/netdevice.h>
#include <linux/slab.h>
#include <net/arp.h>
#include <net/genetlink.h>
#include <net/netlink.h>
#include <net/sock.h>

#include <mbvisor/maglev.h>
#include "mbstate.h"

static const struct mbstate_lb_ops *mbstate_lb_ops;	/* mutex */

/* Bridges of a namespace that one ARP probe for a backend goes out on. */
#define MBSTATE_LB_PROBE_BRIDGES	16

const struct nla_policy mbstate_be_policy[MBSTATE_BE_A_MAX + 1] = {
	[MBSTATE_BE_A_IPV4] = { .type = NLA_BE32 },
	[MBSTATE_BE_A_MAC] = NLA_POLICY_ETH_ADDR,
	[MBSTATE_BE_A_WEIGHT] = NLA_POLICY_MAX(NLA_U32, MBSTATE_LB_WEIGHT_MAX),
	[MBSTATE_BE_A_STATE] = MBSTATE_POLICY_REPLY_ONLY("MBSTATE_BE_A_STATE"),
	[MBSTATE_BE_A_MAC_SOURCE] = MBSTATE_POLICY_REPLY_ONLY("MBSTATE_BE_A_MAC_SOURCE"),
	[MBSTATE_BE_A_FLOWS] = MBSTATE_POLICY_REPLY_ONLY("MBSTATE_BE_A_FLOWS"),
	[MBSTATE_BE_A_NEW_FLOWS] = MBSTATE_POLICY_REPLY_ONLY("MBSTATE_BE_A_NEW_FLOWS"),
	[MBSTATE_BE_A_PACKETS] = MBSTATE_POLICY_REPLY_ONLY("MBSTATE_BE_A_PACKETS"),
	[MBSTATE_BE_A_BYTES] = MBSTATE_POLICY_REPLY_ONLY("MBSTATE_BE_A_BYTES"),
	[MBSTATE_BE_A_RET_PACKETS] = MBSTATE_POLICY_REPLY_ONLY("MBSTATE_BE_A_RET_PACKETS"),
	[MBSTATE_BE_A_RET_BYTES] = MBSTATE_POLICY_REPLY_ONLY("MBSTATE_BE_A_RET_BYTES"),
};

const struct nla_policy mbstate_lb_policy[MBSTATE_LB_A_MAX + 1] = {
	[MBSTATE_LB_A_TYPE] = NLA_POLICY_MAX(NLA_U8, 1),
	[MBSTATE_LB_A_SRC_IPV4] = { .type = NLA_BE32 },
	[MBSTATE_LB_A_DST_IPV4] = { .type = NLA_BE32 },
	[MBSTATE_LB_A_BACKENDS] = NLA_POLICY_NESTED_ARRAY(mbstate_be_policy),
	/* a backend nest belongs inside MBSTATE_LB_A_BACKENDS only */
	[MBSTATE_LB_A_BACKEND] = {
		.type = NLA_REJECT,
		.reject_message = "a backend nest belongs inside MBSTATE_LB_A_BACKENDS",
	},
	[MBSTATE_LB_A_FLOWS] = MBSTATE_POLICY_REPLY_ONLY("MBSTATE_LB_A_FLOWS"),
	[MBSTATE_LB_A_STATS] = MBSTATE_POLICY_REPLY_ONLY("MBSTATE_LB_A_STATS"),
};

static bool mbstate_ip_unicast(__be32 ip)
{
	return ip && !ipv4_is_multicast(ip) && !ipv4_is_lbcast(ip);
}

/* ---- Backend objects. ---- */

/* Gives back a reference to @q; any context (RCU callbacks too). */
void mbstate_lb_quota_put(struct mblb_quota *q)
{
	if (q && refcount_dec_and_test(&q->ref))
		kfree_rcu(q, rcu);
}

static void mbstate_lb_be_free(struct mblb_backend *be)
{
	mbstate_lb_quota_put(be->quota);
	free_percpu(be->stats);
	kfree(be);
}

static void mbstate_lb_be_free_rcu(struct rcu_head *head)
{
	mbstate_lb_be_free(container_of(head, struct mblb_backend, rcu));
}

static struct mblb_backend *mbstate_lb_be_new(__be32 ip, struct mb_entry *mb)
{
	struct mblb_backend *be = kzalloc(sizeof(*be), MBSTATE_GFP);

	if (!be)
		return NULL;
	be->stats = mbstate_alloc_pcpu_stats(struct mblb_be_pcpu);
	if (!be->stats) {
		kfree(be);
		return NULL;
	}
	refcount_set(&be->ref, 1);
	be->ip = ip;
	be->quota = mb->lb_quota;
	refcount_inc(&be->quota->ref);
	ether_addr_copy(be->mb_mac, mb->mac);
	be->vlan = mb->vlan;
	INIT_LIST_HEAD(&be->list);
	INIT_HLIST_NODE(&be->hnode);
	return be;
}

/* Links a new backend object to @mb and to the learning index. */
static void mbstate_lb_attach(struct mbstate_net *mn, struct mb_entry *mb,
			      struct mblb_backend *be)
{
	lockdep_assert_held(&mbstate_mutex);
	be->mb = mb;
	be->mn = mn;
	list_add_tail(&be->list, &mb->lb_backends);
	mb->lb_n_backends++;
	hash_add_rcu(mn->lb_index, &be->hnode, (__force u32)be->ip);
	WRITE_ONCE(mn->lb_n_index, mn->lb_n_index + 1);
	if (!(atomic64_read(&be->learned) & MBLB_MAC_VALID)) {
		set_bit(MBLB_BE_F_UNLEARNED, &be->flags);
		atomic_inc(&mn->lb_unlearned);
	}
}

/* Unlinks @be from its middlebox and the learning index, if linked. */
static void mbstate_lb_detach(struct mblb_backend *be)
{
	struct mbstate_net *mn = be->mn;

	lockdep_assert_held(&mbstate_mutex);
	if (!be->mb)
		return;
	list_del_init(&be->list);
	be->mb->lb_n_backends--;
	be->mb = NULL;
	hlist_del_init_rcu(&be->hnode);
	WRITE_ONCE(mn->lb_n_index, mn->lb_n_index - 1);
	if (test_and_clear_bit(MBLB_BE_F_UNLEARNED, &be->flags))
		atomic_dec(&mn->lb_unlearned);
}

/*
 * The last reference to @be is gone: detaches and frees it. The last
 * backend object of a namespace takes mblb's hooks out of it.
 */
static void mbstate_lb_be_release(struct mblb_backend *be)
{
	struct mbstate_net *mn = be->mn;

	lockdep_assert_held(&mbstate_mutex);
	mbstate_lb_detach(be);
	call_rcu(&be->rcu, mbstate_lb_be_free_rcu);
	/* without ops (mblb unloading), mblb's pernet exit unhooks */
	if (!--mn->lb_live && mbstate_lb_ops)
		mbstate_lb_ops->net_unuse(mn->net);
}

static void mbstate_lb_be_put_locked(struct mblb_backend *be)
{
	lockdep_assert_held(&mbstate_mutex);
	if (refcount_dec_and_test(&be->ref))
		mbstate_lb_be_release(be);
}

/**
 * mbstate_lb_backend_put - give back a flow's reference to a backend
 * @be: the backend
 *
 * Process context. The last reference detaches @be and frees it after a
 * grace period.
 */
void mbstate_lb_backend_put(struct mblb_backend *be)
{
	if (!refcount_dec_and_mutex_lock(&be->ref, &mbstate_mutex))
		return;
	mbstate_lb_be_release(be);
	mutex_unlock(&mbstate_mutex);
}
EXPORT_SYMBOL_GPL(mbstate_lb_backend_put);

/**
 * mbstate_lb_learn - the bridge saw @ip at @mac
 * @net: namespace of the bridge
 * @ip: an ARP sender's address or an IPv4 source address
 * @mac: the MAC address that goes with it
 * @update: replace a MAC learned before (ARP); otherwise only fill in one
 *	that is not known yet
 * @port: ifindex of the bridge port the frame came in on
 * @vlan: its VLAN, 0 if untagged
 *
 * The first frame that teaches a backend's MAC also binds the backend to
 * its port and VLAN; after that only ARP from that port and VLAN changes
 * the MAC, so another host (or VLAN) claiming the backend's address cannot
 * steer its flows elsewhere (docs/SECURITY.md, A3). mbstate_lb_probe()
 * makes that first frame the backend's answer to the host's own ARP probe,
 * sent when the backend is configured.
 *
 * Packet path, under rcu_read_lock(): no lock, no allocation.
 */
void mbstate_lb_learn(const struct net *net, __be32 ip, const u8 *mac,
		      bool update, int port, u16 vlan)
{
	struct mbstate_net *mn = mbstate_pernet(net);
	u64 v, here = mblb_where(port, vlan);
	struct mblb_backend *be;

	if (!mbstate_lb_learning(net, update))
		return;
	if (!is_valid_ether_addr(mac))
		return;
	v = ether_addr_to_u64(mac) | MBLB_MAC_VALID;
	hash_for_each_possible_rcu(mn->lb_index, be, hnode, (__force u32)ip) {
		s64 old, w;

		if (be->ip != ip || ether_addr_equal(mac, be->mb_mac))
			continue;
		/* a backend is in its middlebox's VLAN (if bound to one) */
		if (be->vlan && vlan != be->vlan)
			continue;
		w = atomic64_read(&be->where);
		if (!((u64)w & MBLB_WHERE_VALID)) {
			/* the first to bind it; a racing other port loses */
			if (atomic64_cmpxchg(&be->where, w, (s64)here) != w)
				continue;
		} else if ((u64)w != here) {
			continue;
		}
		old = atomic64_read(&be->learned);
		if ((u64)old == v)
			continue;
		if ((u64)old & MBLB_MAC_VALID) {
			if (update)
				atomic64_set(&be->learned, (s64)v);
			continue;
		}
		if (atomic64_cmpxchg(&be->learned, old, (s64)v) == old &&
		    test_and_clear_bit(MBLB_BE_F_UNLEARNED, &be->flags))
			atomic_dec(&mn->lb_unlearned);
	}
}
EXPORT_SYMBOL_GPL(mbstate_lb_learn);

/**
 * mbstate_lb_learning - whether mbstate_lb_learn() would look at a frame
 * @net: namespace of the bridge
 * @update: an ARP frame (see mbstate_lb_learn())
 *
 * So that mblb works out a frame's VLAN only when it is needed: false
 * when @net has no backend, or (not ARP) every backend's MAC is known.
 * Packet path.
 */
bool mbstate_lb_learning(const struct net *net, bool update)
{
	struct mbstate_net *mn = mbstate_pernet(net);

	if (!READ_ONCE(mn->lb_n_index))
		return false;
	return update || atomic_read(&mn->lb_unlearned);
}
EXPORT_SYMBOL_GPL(mbstate_lb_learning);

/*
 * The bridge port with @ifindex went away, or left its bridge, in @mn's
 * namespace: what was learned on it is stale. A VM restarted gets a new tap
 * with a new ifindex; its old port's binding would otherwise stay for good
 * (a backend's replies never rewritten again, a middlebox's port never
 * found). The middlebox's port is learned again from its next frame, and a
 * backend bound there is unbound and its MAC unlearned: learned again, with
 * its new port, from its next ARP or IPv4 frame (docs/lb.md, "Learning").
 */
static void mbstate_lb_port_gone(struct mbstate_net *mn, int ifindex)
{
	struct mblb_backend *be;
	struct mb_entry *mb;
	unsigned int bkt;

	mutex_lock(&mbstate_mutex);
	list_for_each_entry(mb, &mn->mbs, list)
		if (READ_ONCE(mb->lb_port) == ifindex)
			WRITE_ONCE(mb->lb_port, 0);
	hash_for_each(mn->lb_index, bkt, be, hnode) {
		if (mblb_where_port((u64)atomic64_read(&be->where)) != ifindex)
			continue;
		atomic64_set(&be->learned, 0);
		atomic64_set(&be->where, 0);
		if (!test_and_set_bit(MBLB_BE_F_UNLEARNED, &be->flags))
			atomic_inc(&mn->lb_unlearned);
	}
	mutex_unlock(&mbstate_mutex);
}

static int mbstate_lb_netdev_event(struct notifier_block *nb,
				   unsigned long event, void *ptr)
{
	struct net_device *dev = netdev_notifier_info_to_dev(ptr);
	struct netdev_notifier_changeupper_info *info = ptr;

	switch (event) {
	case NETDEV_CHANGEUPPER:
		if (info->linking || !netif_is_bridge_master(info->upper_dev))
			return NOTIFY_DONE;
		break;
	case NETDEV_UNREGISTER:
		break;
	default:
		return NOTIFY_DONE;
	}
	mbstate_lb_port_gone(mbstate_pernet(dev_net(dev)), dev->ifindex);
	return NOTIFY_DONE;
}

static struct notifier_block mbstate_lb_netdev_nb = {
	.notifier_call = mbstate_lb_netdev_event,
};

int mbstate_lb_init(void)
{
	return register_netdevice_notifier(&mbstate_lb_netdev_nb);
}

void mbstate_lb_exit(void)
{
	unregister_netdevice_notifier(&mbstate_lb_netdev_nb);
}

/*
 * Asks every bridge of @mn's namespace who has @ip: an ARP probe (RFC 5227:
 * sender address 0.0.0.0, so no host caches anything from it) from the
 * bridge's own MAC, flooded to every port. For a backend's address, the
 * backend answers the bridge; mblb's PRE_ROUTING hook, already registered,
 * learns the answer and binds the backend to the port it came in on.
 * Without it a backend that has not spoken since it was configured is
 * unknown, and the first connections go to the middlebox instead. For the
 * middlebox's own address, its answer shows mblb the middlebox's port,
 * from which no flow may be opened (mblb_new_flow()). Under mbstate_mutex;
 * best effort (docs/lb.md, "Learning").
 */
static void mbstate_lb_probe(struct mbstate_net *mn, const struct mb_entry *mb,
			     __be32 ip)
{
	unsigned int sent = 0;
	struct net_device *dev;
	struct sk_buff *skb;

	rcu_read_lock();
	for_each_netdev_rcu(mn->net, dev) {
		if (!netif_is_bridge_master(dev) || !netif_running(dev))
			continue;
		skb = arp_create(ARPOP_REQUEST, ETH_P_ARP, ip, dev, 0, NULL,
				 dev->dev_addr, NULL);
		if (!skb)
			break;
		if (mb->vlan)
			__vlan_hwaccel_put_tag(skb, htons(ETH_P_8021Q),
					       mb->vlan);
		arp_xmit(skb);
		/* bounded whatever the namespace holds */
		if (++sent == MBSTATE_LB_PROBE_BRIDGES)
			break;
	}
	rcu_read_unlock();
}

/**
 * mbstate_lb_ops_set - mblb comes (@ops) or goes (NULL)
 * @ops: what mblb offers, valid until it calls this with NULL
 */
void mbstate_lb_ops_set(const struct mbstate_lb_ops *ops)
{
	mutex_lock(&mbstate_mutex);
	mbstate_lb_ops = ops;
	mutex_unlock(&mbstate_mutex);
}
EXPORT_SYMBOL_GPL(mbstate_lb_ops_set);

/* ---- Configurations. ---- */

static void mbstate_lb_conf_free(struct mblb_conf *conf)
{
	kvfree(conf->table);
	kfree(conf);
}

static void mbstate_lb_conf_free_rcu(struct rcu_head *head)
{
	mbstate_lb_conf_free(container_of(head, struct mblb_conf, rcu));
}

/* Drops @conf's references and frees it after a grace period. */
static void mbstate_lb_conf_release(struct mblb_conf *conf)
{
	u32 i;

	for (i = 0; i < conf->n; i++)
		mbstate_lb_be_put_locked(conf->be[i].be);
	call_rcu(&conf->rcu, mbstate_lb_conf_free_rcu);
}

static struct mblb_backend *mbstate_lb_find_be(struct mb_entry *mb,
					       __be32 ip)
{
	struct mblb_backend *be;

	list_for_each_entry(be, &mb->lb_backends, list)
		if (be->ip == ip)
			return be;
	return NULL;
}

/**
 * mbstate_lb_set - build a configuration from @req and publish it
 * @mn: the namespace's registry
 * @mb: the middlebox
 * @req: type, source and backends, already checked
 * @extack: where to say why it failed
 *
 * All or nothing: on error nothing changed. Backends that @req keeps share
 * their objects with the old configuration.
 */
int mbstate_lb_set(struct mbstate_net *mn, struct mb_entry *mb,
		   const struct mblb_req *req, struct netlink_ext_ack *extack)
{
	struct mb_maglev_backend *mbe = NULL;
	struct mb_maglev_scratch *scratch = NULL;
	struct mblb_backend *fresh[MBSTATE_LB_MAX_BACKENDS];
	struct mblb_conf *conf, *old;
	u32 i, n_fresh = 0;
	bool said = false;
	int ret = -ENOMEM;

	lockdep_assert_held(&mbstate_mutex);
	conf = kzalloc(struct_size(conf, be, req->n), MBSTATE_GFP);
	if (!conf)
		goto fail;
	conf->table = kvmalloc_array(MB_MAGLEV_SIZE, sizeof(*conf->table),
				     MBSTATE_GFP);
	scratch = kmalloc(sizeof(*scratch), GFP_KERNEL);
	mbe = kmalloc_array(max(req->n, 1U), sizeof(*mbe), GFP_KERNEL);
	if (!conf->table || !scratch || !mbe)
		goto fail;
	conf->type = req->type;
	conf->src_ip = req->src_ip;
	conf->n = req->n;

	for (i = 0; i < req->n; i++) {
		const struct mblb_spec *sp = &req->be[i];
		struct mblb_backend *be = mbstate_lb_find_be(mb, sp->ip);

		if (!be) {
			if (mb->lb_n_backends + n_fresh >=
			    MBSTATE_LB_MAX_BACKENDS) {
				NL_SET_ERR_MSG(extack,
					       "a middlebox has at most 64 backends, configured and draining together");
				ret = -ENOSPC;
				goto fail;
			}
			be = mbstate_lb_be_new(sp->ip, mb);
			if (!be)
				goto fail;
			fresh[n_fresh++] = be;
		}
		conf->be[i].be = be;
		conf->be[i].weight = sp->weight;
		conf->be[i].has_mac = sp->has_mac;
		ether_addr_copy(conf->be[i].mac, sp->mac);
		mbe[i].key = ntohl(sp->ip);
		mbe[i].weight = sp->weight;
	}
	if (mb_maglev_build(conf->table, MB_MAGLEV_SIZE, mbe, req->n,
			    scratch)) {
		/* the request was checked: distinct keys, small weights */
		NL_SET_ERR_MSG(extack, "internal error building the Maglev table");
		ret = -EINVAL;
		goto fail;
	}
	if (n_fresh && !mn->lb_live) {
		/* the namespace's first backend: mblb hooks into it now */
		ret = mbstate_lb_ops ? mbstate_lb_ops->net_use(mn->net) :
				       -EOPNOTSUPP;
		if (ret) {
			NL_SET_ERR_MSG(extack, "cannot hook the load balancer into this namespace's bridges");
			said = true;
			goto fail;
		}
	}

	/* Nothing can fail from here on. */
	for (i = 0; i < req->n; i++)
		if (conf->be[i].be->mb)
			refcount_inc(&conf->be[i].be->ref);
	for (i = 0; i < n_fresh; i++)
		mbstate_lb_attach(mn, mb, fresh[i]);
	mn->lb_live += n_fresh;
	old = mbstate_deref(mb->lb_conf);
	rcu_assign_pointer(mb->lb_conf, conf);
	if (old)
		mbstate_lb_conf_release(old);
	if (!READ_ONCE(mb->lb_port))
		mbstate_lb_probe(mn, mb, mb->ip);
	/* static MACs too: the answer binds the backend to its port */
	for (i = 0; i < conf->n; i++)
		if (!(atomic64_read(&conf->be[i].be->where) & MBLB_WHERE_VALID))
			mbstate_lb_probe(mn, mb, conf->be[i].be->ip);
	kfree(scratch);
	kfree(mbe);
	return 0;

fail:
	while (n_fresh--)
		mbstate_lb_be_free(fresh[n_fresh]);
	if (conf)
		mbstate_lb_conf_free(conf);
	kfree(scratch);
	kfree(mbe);
	if (ret == -ENOMEM && !said)
		NL_SET_ERR_MSG(extack, "out of memory building the load-balancer configuration");
	return ret;
}

/**
 * mbstate_lb_clear - forget @mb's load balancer
 * @mn: the namespace's registry
 * @mb: the middlebox
 *
 * New frames see no configuration; backends with flows left are detached
 * (mblb's flows keep them until they end).
 */
void mbstate_lb_clear(struct mbstate_net *mn, struct mb_entry *mb)
{
	struct mblb_conf *old = mbstate_deref(mb->lb_conf);
	struct mblb_backend *be, *tmp;

	RCU_INIT_POINTER(mb->lb_conf, NULL);
	if (old)
		mbstate_lb_conf_release(old);
	list_for_each_entry_safe(be, tmp, &mb->lb_backends, list)
		mbstate_lb_detach(be);
}

/* ---- Requests. ---- */

/* Parses one MBSTATE_BE_A_* nest. @del: removing, the address only. */
static int mbstate_be_parse(const struct nlattr *nest, struct mblb_spec *sp,
			    __be32 mb_ip, const u8 *mb_mac, bool del,
			    struct netlink_ext_ack *extack)
{
	struct nlattr *tb[MBSTATE_BE_A_MAX + 1];
	int ret;

	ret = nla_parse_nested(tb, MBSTATE_BE_A_MAX, nest, mbstate_be_policy,
			       extack);
	if (ret)
		return ret;
	memset(sp, 0, sizeof(*sp));
	if (!tb[MBSTATE_BE_A_IPV4]) {
		NL_SET_ERR_MSG_ATTR(extack, nest,
				    "a backend needs its IPv4 address (MBSTATE_BE_A_IPV4)");
		return -EINVAL;
	}
	sp->ip = nla_get_in_addr(tb[MBSTATE_BE_A_IPV4]);
	if (!mbstate_ip_unicast(sp->ip)) {
		NL_SET_ERR_MSG_ATTR(extack, tb[MBSTATE_BE_A_IPV4],
				    "the backend must be a unicast address");
		return -EINVAL;
	}
	if (sp->ip == mb_ip) {
		NL_SET_ERR_MSG_ATTR(extack, tb[MBSTATE_BE_A_IPV4],
				    "the backend must not be the middlebox itself");
		return -EINVAL;
	}
	if (del) {
		if (tb[MBSTATE_BE_A_MAC] || tb[MBSTATE_BE_A_WEIGHT]) {
			NL_SET_ERR_MSG_ATTR(extack, nest,
					    "removing a backend takes its address only");
			return -EINVAL;
		}
		return 0;
	}
	sp->weight = tb[MBSTATE_BE_A_WEIGHT] ?
		     nla_get_u32(tb[MBSTATE_BE_A_WEIGHT]) : 1;
	if (tb[MBSTATE_BE_A_MAC]) {
		nla_memcpy(sp->mac, tb[MBSTATE_BE_A_MAC], ETH_ALEN);
		if (!is_valid_ether_addr(sp->mac)) {
			NL_SET_ERR_MSG_ATTR(extack, tb[MBSTATE_BE_A_MAC],
					    "the backend MAC address must be unicast and not zero");
			return -EINVAL;
		}
		if (ether_addr_equal(sp->mac, mb_mac)) {
			NL_SET_ERR_MSG_ATTR(extack, tb[MBSTATE_BE_A_MAC],
					    "the backend MAC address must not be the middlebox's own");
			return -EINVAL;
		}
		sp->has_mac = true;
	}
	return 0;
}

/**
 * mbstate_lb_req_parse - the MBSTATE_A_LB nest of a registration
 * @info: the request
 * @ip: the middlebox's address
 * @mac: the middlebox's MAC
 * @req: filled in
 *
 * Checks everything that does not depend on the registry's state.
 */
int mbstate_lb_req_parse(struct genl_info *info, __be32 ip, const u8 *mac,
			 struct mblb_req *req)
{
	struct netlink_ext_ack *extack = info->extack;
	struct nlattr *nest = info->attrs[MBSTATE_A_LB];
	struct nlattr *tb[MBSTATE_LB_A_MAX + 1], *pos;
	int ret, rem;
	u32 i;

	if (!nest) {
		NL_SET_ERR_MSG(extack,
			       "load-balancer registration needs MBSTATE_A_LB (type, source, backends)");
		return -EINVAL;
	}
	ret = nla_parse_nested(tb, MBSTATE_LB_A_MAX, nest, mbstate_lb_policy,
			       extack);
	if (ret)
		return ret;
	if (!tb[MBSTATE_LB_A_TYPE]) {
		NL_SET_ERR_MSG_ATTR(extack, nest,
				    "load-balancer registration needs a type");
		return -EINVAL;
	}
	if (!tb[MBSTATE_LB_A_DST_IPV4] == !tb[MBSTATE_LB_A_BACKENDS]) {
		NL_SET_ERR_MSG_ATTR(extack, nest,
				    "give the backends either as MBSTATE_LB_A_DST_IPV4 (one) or as MBSTATE_LB_A_BACKENDS, not both");
		return -EINVAL;
	}
	memset(req, 0, sizeof(*req));
	req->type = nla_get_u8(tb[MBSTATE_LB_A_TYPE]);
	req->src_ip = tb[MBSTATE_LB_A_SRC_IPV4] ?
		      nla_get_in_addr(tb[MBSTATE_LB_A_SRC_IPV4]) : 0;
	if (req->type == 0 && req->src_ip) {
		NL_SET_ERR_MSG_ATTR(extack, tb[MBSTATE_LB_A_SRC_IPV4],
				    "type 0 redirects every source: the source must be 0.0.0.0");
		return -EINVAL;
	}
	if (req->type == 1 && !mbstate_ip_unicast(req->src_ip)) {
		NL_SET_ERR_MSG_ATTR(extack, nest,
				    "type 1 needs a unicast source address");
		return -EINVAL;
	}

	if (tb[MBSTATE_LB_A_DST_IPV4]) {
		struct mblb_spec *sp = &req->be[0];

		sp->ip = nla_get_in_addr(tb[MBSTATE_LB_A_DST_IPV4]);
		sp->weight = 1;
		if (!mbstate_ip_unicast(sp->ip)) {
			NL_SET_ERR_MSG_ATTR(extack, tb[MBSTATE_LB_A_DST_IPV4],
					    "the destination must be a unicast address");
			return -EINVAL;
		}
		if (sp->ip == ip) {
			NL_SET_ERR_MSG_ATTR(extack, tb[MBSTATE_LB_A_DST_IPV4],
					    "the destination must not be the middlebox itself");
			return -EINVAL;
		}
		req->n = 1;
		return 0;
	}

	nla_for_each_nested(pos, tb[MBSTATE_LB_A_BACKENDS], rem) {
		if (nla_type(pos) != MBSTATE_LB_A_BACKEND) {
			NL_SET_ERR_MSG_ATTR(extack, pos,
					    "MBSTATE_LB_A_BACKENDS holds only MBSTATE_LB_A_BACKEND nests");
			return -EINVAL;
		}
		if (req->n == MBSTATE_LB_MAX_BACKENDS) {
			NL_SET_ERR_MSG_ATTR(extack, pos,
					    "a middlebox has at most 64 backends");
			return -E2BIG;
		}
		ret = mbstate_be_parse(pos, &req->be[req->n], ip, mac, false,
				       extack);
		if (ret)
			return ret;
		for (i = 0; i < req->n; i++) {
			if (req->be[i].ip == req->be[req->n].ip) {
				NL_SET_ERR_MSG_ATTR(extack, pos,
						    "this backend is listed twice");
				return -EINVAL;
			}
		}
		req->n++;
	}
	if (!req->n) {
		NL_SET_ERR_MSG_ATTR(extack, tb[MBSTATE_LB_A_BACKENDS],
				    "load-balancer registration needs at least one backend");
		return -EINVAL;
	}
	return 0;
}

/* The request that rebuilds @mb's current configuration. */
static void mbstate_lb_req_from(const struct mblb_conf *conf,
				struct mblb_req *req)
{
	u32 i;

	memset(req, 0, sizeof(*req));
	req->type = conf->type;
	req->src_ip = conf->src_ip;
	req->n = conf->n;
	for (i = 0; i < conf->n; i++) {
		req->be[i].ip = conf->be[i].be->ip;
		req->be[i].weight = conf->be[i].weight;
		req->be[i].has_mac = conf->be[i].has_mac;
		ether_addr_copy(req->be[i].mac, conf->be[i].mac);
	}
}

/* MBSTATE_CMD_NEW_BACKEND and MBSTATE_CMD_DEL_BACKEND. */
static int mbstate_backend_doit(struct genl_info *info, bool del)
{
	struct mbstate_net *mn = mbstate_pernet(genl_info_net(info));
	struct netlink_ext_ack *extack = info->extack;
	struct mblb_spec sp;
	struct mblb_conf *conf;
	struct mblb_req *req;
	struct mb_entry *mb;
	int ret;
	u32 i;

	if (GENL_REQ_ATTR_CHECK(info, MBSTATE_A_MAC) ||
	    GENL_REQ_ATTR_CHECK(info, MBSTATE_A_BACKEND)) {
		NL_SET_ERR_MSG(extack,
			       "a backend change needs the middlebox MAC address and MBSTATE_A_BACKEND");
		return -EINVAL;
	}
	req = kmalloc(sizeof(*req), GFP_KERNEL);
	if (!req)
		return -ENOMEM;
	mutex_lock(&mbstate_mutex);
	mb = mbstate_find(mn, nla_data(info->attrs[MBSTATE_A_MAC]));
	if (!mb) {
		NL_SET_ERR_MSG_ATTR(extack, info->attrs[MBSTATE_A_MAC],
				    "no middlebox is registered with this MAC address");
		ret = -ENOENT;
		goto out;
	}
	conf = mbstate_deref(mb->lb_conf);
	if (!(mb->services & MBSTATE_SVC_L) || !conf) {
		NL_SET_ERR_MSG(extack,
			       "the middlebox is not registered for the load balancer (R L <MAC> <IP> <type> <srcIP> <dstIP>)");
		ret = -EOPNOTSUPP;
		goto out;
	}
	ret = mbstate_be_parse(info->attrs[MBSTATE_A_BACKEND], &sp, mb->ip,
			       mb->mac, del, extack);
	if (ret)
		goto out;
	mbstate_lb_req_from(conf, req);
	for (i = 0; i < req->n && req->be[i].ip != sp.ip; i++)
		;
	if (del) {
		if (i == req->n) {
			NL_SET_ERR_MSG_ATTR(extack, info->attrs[MBSTATE_A_BACKEND],
					    "the middlebox has no such backend configured");
			ret = -ENOENT;
			goto out;
		}
		memmove(&req->be[i], &req->be[i + 1],
			(req->n - i - 1) * sizeof(req->be[0]));
		req->n--;
	} else {
		if (i == MBSTATE_LB_MAX_BACKENDS) {
			NL_SET_ERR_MSG(extack, "a middlebox has at most 64 backends");
			ret = -ENOSPC;
			goto out;
		}
		req->be[i] = sp;
		if (i == req->n)
			req->n++;
	}
	ret = mbstate_lb_set(mn, mb, req, extack);
	if (ret)
		goto out;
	mn->gen++;
	mbstate_notify_mb(mn, mb, del ? MBSTATE_CMD_DEL_BACKEND :
					MBSTATE_CMD_NEW_BACKEND);
out:
	mutex_unlock(&mbstate_mutex);
	kfree(req);
	return ret;
}

int mbstate_new_backend_doit(struct sk_buff *skb, struct genl_info *info)
{
	return mbstate_backend_doit(info, false);
}

int mbstate_del_backend_doit(struct sk_buff *skb, struct genl_info *info)
{
	return mbstate_backend_doit(info, true);
}

/* ---- Replies. ---- */

void mbstate_lb_stats_read(const struct mb_entry *mb, u64 out[MB_LB_NSTATS])
{
	int cpu, i;

	memset(out, 0, MB_LB_NSTATS * sizeof(u64));
	for_each_possible_cpu(cpu) {
		const struct mb_lb_pcpu_stats *s = per_cpu_ptr(mb->lb_stats,
							       cpu);
		u64 v[MB_LB_NSTATS];
		unsigned int start;

		do {
			start = u64_stats_fetch_begin(&s->syncp);
			for (i = 0; i < MB_LB_NSTATS; i++)
				v[i] = u64_stats_read(&s->v[i]);
		} while (u64_stats_fetch_retry(&s->syncp, start));
		for (i = 0; i < MB_LB_NSTATS; i++)
			out[i] += v[i];
	}
}

static void mbstate_be_stats_read(const struct mblb_backend *be,
				  u64 out[MBLB_BE_NSTATS])
{
	int cpu, i;

	memset(out, 0, MBLB_BE_NSTATS * sizeof(u64));
	for_each_possible_cpu(cpu) {
		const struct mblb_be_pcpu *s = per_cpu_ptr(be->stats, cpu);
		u64 v[MBLB_BE_NSTATS];
		unsigned int start;

		do {
			start = u64_stats_fetch_begin(&s->syncp);
			for (i = 0; i < MBLB_BE_NSTATS; i++)
				v[i] = u64_stats_read(&s->v[i]);
		} while (u64_stats_fetch_retry(&s->syncp, start));
		for (i = 0; i < MBLB_BE_NSTATS; i++)
			out[i] += v[i];
	}
}

static int mbstate_be_put(struct sk_buff *skb, const struct mblb_backend *be,
			  const struct mblb_conf_be *cb)
{
	static const u8 attr[MBLB_BE_NSTATS] = {
		[MBLB_BE_NEW_FLOWS] = MBSTATE_BE_A_NEW_FLOWS,
		[MBLB_BE_PACKETS] = MBSTATE_BE_A_PACKETS,
		[MBLB_BE_BYTES] = MBSTATE_BE_A_BYTES,
		[MBLB_BE_RET_PACKETS] = MBSTATE_BE_A_RET_PACKETS,
		[MBLB_BE_RET_BYTES] = MBSTATE_BE_A_RET_BYTES,
	};
	u64 st[MBLB_BE_NSTATS], learned;
	u8 state, source = MBSTATE_BE_MAC_UNKNOWN, mac[ETH_ALEN];
	struct nlattr *nest;
	int i;

	if (!cb)
		state = MBSTATE_BE_DRAINING;
	else
		state = cb->weight ? MBSTATE_BE_ACTIVE : MBSTATE_BE_STANDBY;
	learned = (u64)atomic64_read(&be->learned);
	if (cb && cb->has_mac) {
		source = MBSTATE_BE_MAC_STATIC;
		ether_addr_copy(mac, cb->mac);
	} else if (learned & MBLB_MAC_VALID) {
		source = MBSTATE_BE_MAC_LEARNED;
		u64_to_ether_addr(learned, mac);
	}
	mbstate_be_stats_read(be, st);

	nest = nla_nest_start(skb, MBSTATE_LB_A_BACKEND);
	if (!nest ||
	    nla_put_in_addr(skb, MBSTATE_BE_A_IPV4, be->ip) ||
	    (source != MBSTATE_BE_MAC_UNKNOWN &&
	     nla_put(skb, MBSTATE_BE_A_MAC, ETH_ALEN, mac)) ||
	    nla_put_u32(skb, MBSTATE_BE_A_WEIGHT, cb ? cb->weight : 0) ||
	    nla_put_u8(skb, MBSTATE_BE_A_STATE, state) ||
	    nla_put_u8(skb, MBSTATE_BE_A_MAC_SOURCE, source) ||
	    nla_put_u32(skb, MBSTATE_BE_A_FLOWS, atomic_read(&be->flows)))
		return -EMSGSIZE;
	for (i = 0; i < MBLB_BE_NSTATS; i++)
		if (nla_put_u64_64bit(skb, attr[i], st[i], MBSTATE_BE_A_PAD))
			return -EMSGSIZE;
	nla_nest_end(skb, nest);
	return 0;
}

/* The MBSTATE_A_LB nest of a GET_MB reply or a notification. */
int mbstate_lb_put(struct sk_buff *skb, struct mb_entry *mb)
{
	static const u8 attr[MB_LB_NSTATS] = {
		[MB_LB_NEW_FLOWS] = MBSTATE_LB_STATS_A_NEW_FLOWS,
		[MB_LB_REDIRECTED_PACKETS] = MBSTATE_LB_STATS_A_REDIRECTED_PACKETS,
		[MB_LB_REDIRECTED_BYTES] = MBSTATE_LB_STATS_A_REDIRECTED_BYTES,
		[MB_LB_NOT_SELECTED] = MBSTATE_LB_STATS_A_NOT_SELECTED,
		[MB_LB_UNHANDLED] = MBSTATE_LB_STATS_A_UNHANDLED,
		[MB_LB_NO_FLOW] = MBSTATE_LB_STATS_A_NO_FLOW,
		[MB_LB_NO_BACKEND] = MBSTATE_LB_STATS_A_NO_BACKEND,
		[MB_LB_MAC_UNKNOWN] = MBSTATE_LB_STATS_A_MAC_UNKNOWN,
		[MB_LB_TABLE_FULL] = MBSTATE_LB_STATS_A_TABLE_FULL,
		[MB_LB_COLLISION] = MBSTATE_LB_STATS_A_COLLISION,
		[MB_LB_FROM_MB_PORT] = MBSTATE_LB_STATS_A_FROM_MB_PORT,
		[MB_LB_MB_PORT_UNKNOWN] = MBSTATE_LB_STATS_A_MB_PORT_UNKNOWN,
		[MB_LB_OVER_QUOTA] = MBSTATE_LB_STATS_A_OVER_QUOTA,
	};
	const struct mblb_conf *conf = mbstate_deref(mb->lb_conf);
	struct nlattr *nest, *list, *st_nest;
	const struct mblb_backend *be;
	u64 st[MB_LB_NSTATS];
	u32 flows = 0, i;

	if (!conf)
		return 0;
	nest = nla_nest_start(skb, MBSTATE_A_LB);
	if (!nest ||
	    nla_put_u8(skb, MBSTATE_LB_A_TYPE, conf->type) ||
	    nla_put_in_addr(skb, MBSTATE_LB_A_SRC_IPV4, conf->src_ip) ||
	    nla_put_in_addr(skb, MBSTATE_LB_A_DST_IPV4,
			    conf->n ? conf->be[0].be->ip : 0))
		return -EMSGSIZE;
	list = nla_nest_start(skb, MBSTATE_LB_A_BACKENDS);
	if (!list)
		return -EMSGSIZE;
	for (i = 0; i < conf->n; i++)
		if (mbstate_be_put(skb, conf->be[i].be, &conf->be[i]))
			return -EMSGSIZE;
	list_for_each_entry(be, &mb->lb_backends, list) {
		flows += atomic_read(&be->flows);
		for (i = 0; i < conf->n && conf->be[i].be != be; i++)
			;
		if (i == conf->n && mbstate_be_put(skb, be, NULL))
			return -EMSGSIZE;
	}
	nla_nest_end(skb, list);
	mbstate_lb_stats_read(mb, st);
	if (nla_put_u32(skb, MBSTATE_LB_A_FLOWS, flows))
		return -EMSGSIZE;
	st_nest = nla_nest_start(skb, MBSTATE_LB_A_STATS);
	if (!st_nest)
		return -EMSGSIZE;
	for (i = 0; i < MB_LB_NSTATS; i++)
		if (nla_put_u64_64bit(skb, attr[i], st[i],
				      MBSTATE_LB_STATS_A_PAD))
			return -EMSGSIZE;
	nla_nest_end(skb, st_nest);
	nla_nest_end(skb, nest);
	return 0;
}

/* Room a middlebox message needs beyond NLMSG_GOODSIZE for its backends. */
size_t mbstate_lb_msg_size(const struct mb_entry *mb)
{
	return mb->lb_n_backends * 192;
}

/* ---- Flows. ---- */

static int mbstate_flow_put(struct sk_buff *skb,
			    const struct mb_lb_flow_info *fi)
{
	struct nlattr *nest;

	if (nla_put(skb, MBSTATE_A_MAC, ETH_ALEN, fi->mb_mac))
		return -EMSGSIZE;
	nest = nla_nest_start(skb, MBSTATE_A_FLOW);
	if (!nest ||
	    nla_put_u8(skb, MBSTATE_FLOW_A_PROTO, fi->proto) ||
	    nla_put_in_addr(skb, MBSTATE_FLOW_A_CLIENT_IPV4, fi->client_ip) ||
	    nla_put_u16(skb, MBSTATE_FLOW_A_CLIENT_PORT,
			ntohs(fi->client_port)) ||
	    nla_put_in_addr(skb, MBSTATE_FLOW_A_VIP_IPV4, fi->vip) ||
	    nla_put_u16(skb, MBSTATE_FLOW_A_VIP_PORT, ntohs(fi->vip_port)) ||
	    nla_put_in_addr(skb, MBSTATE_FLOW_A_BACKEND_IPV4, fi->be_ip) ||
	    nla_put(skb, MBSTATE_FLOW_A_BACKEND_MAC, ETH_ALEN, fi->be_mac) ||
	    nla_put_u8(skb, MBSTATE_FLOW_A_STATE, fi->state) ||
	    nla_put_u32(skb, MBSTATE_FLOW_A_IDLE_MS, fi->idle_ms))
		return -EMSGSIZE;
	nla_nest_end(skb, nest);
	return 0;
}

/* MBSTATE_CMD_GET_FLOW: the cursor (a position in mblb's table) in args[0]. */
int mbstate_get_flow_dumpit(struct sk_buff *skb, struct netlink_callback *cb)
{
	const struct genl_dumpit_info *info = genl_dumpit_info(cb);
	const struct net *net = sock_net(skb->sk);
	struct nlattr *mac = info->attrs[MBSTATE_A_MAC];
	unsigned long pos = cb->args[0], prev;
	struct mb_lb_flow_info fi;
	int ret;

	mutex_lock(&mbstate_mutex);
	if (!mbstate_lb_ops) {
		NL_SET_ERR_MSG(cb->extack,
			       "the load-balancer offload is not loaded (modprobe mblb)");
		ret = -EOPNOTSUPP;
		goto out;
	}
	for (;;) {
		void *hdr;

		prev = pos;
		if (!mbstate_lb_ops->flow_next(net, mac ? nla_data(mac) : NULL,
					       &pos, &fi))
			break;
		hdr = genlmsg_put(skb, NETLINK_CB(cb->skb).portid,
				  cb->nlh->nlmsg_seq, &mbstate_family,
				  NLM_F_MULTI, MBSTATE_CMD_GET_FLOW);
		if (!hdr) {
			pos = prev;
			break;
		}
		if (mbstate_flow_put(skb, &fi)) {
			genlmsg_cancel(skb, hdr);
			pos = prev;
			break;
		}
		genlmsg_end(skb, hdr);
	}
	cb->args[0] = pos;
	ret = skb->len;
out:
	mutex_unlock(&mbstate_mutex);
	return ret;
}
