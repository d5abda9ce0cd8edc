// SPDX-License-Identifier: GPL-2.0
/*
 * mbfw: the firewall offload of mbvisor.
 *
 * A frame addressed to a middlebox that registered for the firewall service
 * (R F) is matched against the middlebox's rules (classes I, M and T of the
 * report's table 4.1); a match drops it at the bridge and counts it on the
 * rule and on the middlebox. The rules live in mbstate.ko, compiled into a
 * tuple-space classifier (include/mbvisor/classifier.h).
 */
#include <linux/etherdevice.h>
#include <linux/module.h>
#include <linux/skbuff.h>

#include <mbvisor/kernel.h>

static const void *mbfw_skb_hdr(const void *ctx, unsigned int off,
				 unsigned int len, void *buf)
{
	return skb_header_pointer((struct sk_buff *)ctx, off, len, buf);
}

/* Called by mbhook in softirq, under rcu_read_lock(). */
static unsigned int mbfw_rx(struct mb_entry *mb, struct sk_buff *skb,
			    const struct nf_hook_state *state)
{
	const struct mbfw_ruleset *rs = rcu_dereference(mb->fw);
	const struct ethhdr *eth = eth_hdr(skb);
	struct mb_pcpu_stats *st;
	struct mb_rule_pcpu *rc;
	unsigned int len;
	struct mb_key key;
	int idx;

	if (!rs)
		return NF_ACCEPT;
	memset(&key, 0, sizeof(key));
	ether_addr_copy(key.dmac, eth->h_dest);
	ether_addr_copy(key.smac, eth->h_source);
	key.ethertype = ntohs(skb->protocol);
	mb_key_parse_l3(&key, mbfw_skb_hdr, skb);

	idx = mbc_lookup(rs->table, &key);
	if (idx < 0)
		return NF_ACCEPT;

	len = skb->len + ETH_HLEN;
	rc = this_cpu_ptr(rs->rules[idx]->ctr);
	u64_stats_update_begin(&rc->syncp);
	u64_stats_inc(&rc->packets);
	u64_stats_add(&rc->bytes, len);
	u64_stats_update_end(&rc->syncp);
	st = this_cpu_ptr(mb->stats);
	u64_stats_update_begin(&st->syncp);
	u64_stats_inc(&st->fw_drop_packets);
	u64_stats_add(&st->fw_drop_bytes, len);
	u64_stats_update_end(&st->syncp);
	return NF_DROP;
}

static const struct mbhook_offload mbfw_offload = {
	.service_bit = MBSTATE_SVC_F_BIT,
	.name = "firewall",
	.rx = mbfw_rx,
};

static int __init mbfw_init(void)
{
	return mbhook_register_offload(&mbfw_offload);
}

static void __exit mbfw_exit(void)
{
	mbhook_unregister_offload(&mbfw_offload);
}

module_init(mbfw_init);
module_exit(mbfw_exit);
MODULE_LICENSE("GPL");
MODULE_AUTHOR("mbvisor developers");
MODULE_DESCRIPTION("mbvisor: firewall offload at the bridge");
