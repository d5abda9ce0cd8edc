// SPDX-License-Identifier: GPL-2.0
/*
 * mbhook: the bridge hook of mbvisor.
 *
 * A netfilter hook at NFPROTO_BRIDGE / NF_BR_PRE_ROUTING in every network
 * namespace. br_handle_frame() runs these hooks through nf_hook_bridge_pre()
 * just before it hands the frame to br_handle_frame_finish(), where the
 * bridge starts forwarding: a frame we drop here is never looked up in the
 * FDB, never flooded, never reaches the middlebox's port.
 *
 * Per frame: a broadcast or multicast destination passes untouched (ARP and
 * neighbour discovery must reach the middlebox); otherwise one hash lookup of
 * the destination MAC in the registry; on a VLAN-filtering bridge, the
 * frame's VLAN must be the middlebox's; only for a registered, enabled
 * middlebox are its offloads called, firewall first.
 */
#include <linux/etherdevice.h>
#include <linux/if_bridge.h>
#include <linux/if_vlan.h>
#include <linux/module.h>
#include <linux/netfilter_bridge.h>
#include <net/net_namespace.h>
#include <uapi/linux/netfilter_bridge.h>

#include <mbvisor/kernel.h>

static const struct mbhook_offload __rcu *mbhook_offloads[__MBSTATE_SVC_NUM];
static DEFINE_MUTEX(mbhook_mutex);	/* serialises (un)registration */

/*
 * The VLAN that the VLAN-filtering bridge @br will put a frame entering
 * through its port @port in, as br_allowed_ingress() decides it: the VID of
 * a tag of the bridge's VLAN protocol, else (no tag, VID 0, another
 * protocol) the port's PVID. 0 if the bridge will drop the frame: no PVID,
 * or the port is not a member of that VLAN. Under rcu_read_lock().
 *
 * The receive path has moved the outer tag into skb->vlan_tci before the
 * bridge sees the frame; a tag still in the packet is read too, as the
 * bridge does.
 */
static u16 mbhook_frame_vid(const struct net_device *br,
			    const struct net_device *port,
			    const struct sk_buff *skb)
{
	struct bridge_vlan_info info;
	u16 proto, vid = 0;

	if (br_vlan_get_proto(br, &proto))
		return 0;
	if (skb_vlan_tag_present(skb)) {
		if (skb->vlan_proto == htons(proto))
			vid = skb_vlan_tag_get_id(skb);
	} else if (skb->protocol == htons(proto)) {
		const struct vlan_hdr *vh;
		struct vlan_hdr _vh;

		/* skb->data is just past the Ethernet header: the tag */
		vh = skb_header_pointer(skb, 0, sizeof(_vh), &_vh);
		if (!vh)
			return 0;
		vid = ntohs(vh->h_vlan_TCI) & VLAN_VID_MASK;
	}
	if (!vid)
		return br_vlan_get_pvid_rcu(port, &vid) ? 0 : vid;
	if (br_vlan_get_info_rcu(port, vid, &info))
		return 0;
	return vid;
}

/* @port's bridge if it filters VLANs, else NULL. Under rcu_read_lock(). */
static struct net_device *mbhook_vlan_bridge(struct net_device *port)
{
	struct net_device *br = netdev_master_upper_dev_get_rcu(port);

	if (!br || !netif_is_bridge_master(br) || !br_vlan_enabled(br))
		return NULL;
	return br;
}

/**
 * mbhook_frame_vlan - the VLAN of a frame entering a bridge through @port
 * @port: the bridge port it came in on (nf_hook_state.in)
 * @skb: the frame, at NF_BR_PRE_ROUTING
 *
 * On a VLAN-filtering bridge, the VLAN the bridge will put it in (0 if it
 * will drop it); elsewhere the VID of its tag, 0 if untagged. mblb binds a
 * backend to the port and VLAN its MAC was learned in with it. Under
 * rcu_read_lock().
 */
u16 mbhook_frame_vlan(struct net_device *port, const struct sk_buff *skb)
{
	struct net_device *br = mbhook_vlan_bridge(port);

	if (br)
		return mbhook_frame_vid(br, port, skb);
	return skb_vlan_tag_present(skb) ? skb_vlan_tag_get_id(skb) : 0;
}
EXPORT_SYMBOL_GPL(mbhook_frame_vlan);

/**
 * mbhook_frame_in_mb_vlan - whether @skb, entering through @port, is in
 *	@mb's VLAN
 * @mb: a middlebox
 * @port: the bridge port it came in on
 * @skb: the frame, at NF_BR_PRE_ROUTING
 * @unbound: set if @mb is not bound to a VLAN and the bridge filters them
 *
 * A bridge without VLAN filtering forwards by MAC alone: yes. On a
 * VLAN-filtering bridge the MAC is unique only per VLAN: yes if the frame's
 * VLAN is the one @mb is bound to. A middlebox bound to none is not
 * offloaded there: another host may have its MAC in another VLAN, and
 * neither the registry nor the FDB can tell which one is the middlebox.
 * Under rcu_read_lock().
 */
bool mbhook_frame_in_mb_vlan(const struct mb_entry *mb,
			     struct net_device *port,
			     const struct sk_buff *skb, bool *unbound)
{
	struct net_device *br = mbhook_vlan_bridge(port);

	*unbound = false;
	if (!br)
		return true;
	if (mb->vlan)
		return mbhook_frame_vid(br, port, skb) == mb->vlan;
	*unbound = true;
	return false;
}
EXPORT_SYMBOL_GPL(mbhook_frame_in_mb_vlan);

/* mbhook_frame_in_mb_vlan(), counting the frames of an unbound @mb. */
static bool mbhook_for_mb(struct mb_entry *mb, struct sk_buff *skb,
			  const struct nf_hook_state *state)
{
	struct mb_pcpu_stats *st;
	bool unbound;

	if (mbhook_frame_in_mb_vlan(mb, state->in, skb, &unbound))
		return true;
	if (unbound) {
		st = this_cpu_ptr(mb->stats);
		u64_stats_update_begin(&st->syncp);
		u64_stats_inc(&st->unbound_packets);
		u64_stats_update_end(&st->syncp);
	}
	return false;
}

/* A frame for @mb: count it, call its offloads. Under rcu_read_lock(). */
static noinline unsigned int mbhook_mb_rx(struct mb_entry *mb,
					  struct sk_buff *skb,
					  const struct nf_hook_state *state)
{
	const struct mbhook_offload *off;
	struct mb_pcpu_stats *st;
	unsigned long services;
	unsigned int bit;

	if (!mbhook_for_mb(mb, skb, state))
		return NF_ACCEPT;
	st = this_cpu_ptr(mb->stats);
	u64_stats_update_begin(&st->syncp);
	u64_stats_inc(&st->rx_packets);
	u64_stats_add(&st->rx_bytes, skb->len + ETH_HLEN);
	if (!READ_ONCE(mb->enabled)) {
		u64_stats_inc(&st->disabled_packets);
		u64_stats_update_end(&st->syncp);
		return NF_ACCEPT;
	}
	u64_stats_update_end(&st->syncp);

	services = READ_ONCE(mb->services);
	for_each_set_bit(bit, &services, __MBSTATE_SVC_NUM) {
		unsigned int verdict;

		off = rcu_dereference(mbhook_offloads[bit]);
		if (!off)
			continue;
		verdict = off->rx(mb, skb, state);
		if (verdict != NF_ACCEPT)
			return verdict;
	}
	return NF_ACCEPT;
}

/*
 * Called by the bridge for every frame, in softirq, under rcu_read_lock().
 * Most frames are for no middlebox: this part is kept small so that they
 * leave without saving the registers that mbhook_mb_rx() needs.
 */
static unsigned int mbhook_rx(void *priv, struct sk_buff *skb,
			      const struct nf_hook_state *state)
{
	const struct ethhdr *eth = eth_hdr(skb);
	struct mb_entry *mb;

	if (unlikely(is_multicast_ether_addr(eth->h_dest)))
		return NF_ACCEPT;
	mb = mbstate_lookup_rcu(state->net, eth->h_dest);
	if (!mb)
		return NF_ACCEPT;
	return mbhook_mb_rx(mb, skb, state);
}

static const struct nf_hook_ops mbhook_ops[] = {
	{
		.hook = mbhook_rx,
		.pf = NFPROTO_BRIDGE,
		.hooknum = NF_BR_PRE_ROUTING,
		/* before br_netfilter and nftables: a drop costs the least */
		.priority = NF_BR_PRI_FIRST,
	},
};

/**
 * mbhook_register_offload - start calling @off for its service
 * @off: the offload; must stay valid until mbhook_unregister_offload()
 *
 * From now on middleboxes may register for @off's service.
 */
int mbhook_register_offload(const struct mbhook_offload *off)
{
	int ret = 0;

	if (off->service_bit >= __MBSTATE_SVC_NUM || !off->rx)
		return -EINVAL;
	mutex_lock(&mbhook_mutex);
	if (rcu_access_pointer(mbhook_offloads[off->service_bit])) {
		ret = -EBUSY;
		goto out;
	}
	rcu_assign_pointer(mbhook_offloads[off->service_bit], off);
	mbstate_service_set(off->service_bit, true);
	pr_info("offload %s registered\n", off->name);
out:
	mutex_unlock(&mbhook_mutex);
	return ret;
}
EXPORT_SYMBOL_GPL(mbhook_register_offload);

/**
 * mbhook_unregister_offload - stop calling @off
 * @off: the offload given to mbhook_register_offload()
 *
 * Returns when no frame is inside @off->rx any more; every middlebox has
 * then forgotten the service (see mbstate_service_set()).
 */
void mbhook_unregister_offload(const struct mbhook_offload *off)
{
	mutex_lock(&mbhook_mutex);
	if (rcu_access_pointer(mbhook_offloads[off->service_bit]) == off) {
		RCU_INIT_POINTER(mbhook_offloads[off->service_bit], NULL);
		synchronize_net();
		mbstate_service_set(off->service_bit, false);
		pr_info("offload %s unregistered\n", off->name);
	}
	mutex_unlock(&mbhook_mutex);
}
EXPORT_SYMBOL_GPL(mbhook_unregister_offload);

static int __net_init mbhook_net_init(struct net *net)
{
	return nf_register_net_hooks(net, mbhook_ops, ARRAY_SIZE(mbhook_ops));
}

static void __net_exit mbhook_net_exit(struct net *net)
{
	nf_unregister_net_hooks(net, mbhook_ops, ARRAY_SIZE(mbhook_ops));
}

static struct pernet_operations mbhook_net_ops = {
	.init = mbhook_net_init,
	.exit = mbhook_net_exit,
};

static int __init mbhook_init(void)
{
	return register_pernet_subsys(&mbhook_net_ops);
}

static void __exit mbhook_exit(void)
{
	/* offload modules depend on us: all of them are gone already */
	unregister_pernet_subsys(&mbhook_net_ops);
}

module_init(mbhook_init);
module_exit(mbhook_exit);
MODULE_LICENSE("GPL");
MODULE_AUTHOR("mbvisor developers");
MODULE_DESCRIPTION("mbvisor: bridge pre-routing hook for middlebox offloads");
