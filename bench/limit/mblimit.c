// SPDX-License-Identifier: GPL-2.0
/*
 * mblimit: a bench-only module, never installed. It registers a hook at the
 * same point as mbhook (NFPROTO_BRIDGE / NF_BR_PRE_ROUTING, priority
 * NF_BR_PRI_FIRST, in every network namespace) that drops every frame
 * without looking at it. The packet rate with it loaded is the best any
 * filter at that hook can reach: `limit_pps` in docs/BENCHMARKS.md.
 *
 * With accept=1 it lets every frame pass instead: the cost of having any
 * hook at that point (`nullhook_pps`), which no filter can avoid either.
 *
 * Load it only in a throwaway VM (bench/run does): while it is loaded every
 * bridge in every namespace drops everything, ARP included.
 */
#include <linux/module.h>
#include <linux/netfilter_bridge.h>
#include <net/net_namespace.h>
#include <uapi/linux/netfilter_bridge.h>

static bool accept;
module_param(accept, bool, 0444);
MODULE_PARM_DESC(accept, "Let every frame pass instead of dropping it");

/* Called by the bridge for every frame, in softirq, under rcu_read_lock(). */
static unsigned int mblimit_drop(void *priv, struct sk_buff *skb,
				 const struct nf_hook_state *state)
{
	return NF_DROP;
}

static unsigned int mblimit_accept(void *priv, struct sk_buff *skb,
				   const struct nf_hook_state *state)
{
	return NF_ACCEPT;
}

/* .hook is chosen at load time: no test of the parameter per frame. */
static struct nf_hook_ops mblimit_ops[] = {
	{
		.hook = mblimit_drop,
		.pf = NFPROTO_BRIDGE,
		.hooknum = NF_BR_PRE_ROUTING,
		.priority = NF_BR_PRI_FIRST,
	},
};

static int __net_init mblimit_net_init(struct net *net)
{
	return nf_register_net_hooks(net, mblimit_ops, ARRAY_SIZE(mblimit_ops));
}

static void __net_exit mblimit_net_exit(struct net *net)
{
	nf_unregister_net_hooks(net, mblimit_ops, ARRAY_SIZE(mblimit_ops));
}

static struct pernet_operations mblimit_net_ops = {
	.init = mblimit_net_init,
	.exit = mblimit_net_exit,
};

static int __init mblimit_init(void)
{
	if (accept)
		mblimit_ops[0].hook = mblimit_accept;
	return register_pernet_subsys(&mblimit_net_ops);
}

static void __exit mblimit_exit(void)
{
	unregister_pernet_subsys(&mblimit_net_ops);
}

module_init(mblimit_init);
module_exit(mblimit_exit);
MODULE_LICENSE("GPL");
MODULE_AUTHOR("mbvisor developers");
MODULE_DESCRIPTION("mbvisor bench: drop every frame at the bridge pre-routing hook");
