// SPDX-License-Identifier: GPL-2.0
/*
 * mbstate: the registry of middlebox state.
 *
 * One struct mb_entry per registered middlebox, keyed by MAC address, in a
 * hash table per network namespace. The bridge hook (mbhook.ko) looks frames
 * up here under RCU; everything else changes under mbstate_mutex (see the
 * locking notes in include/mbvisor/kernel.h).
 */
#include <linux/etherdevice.h>
#include <linux/module.h>
#include <linux/random.h>
#include <asm/unaligned.h>
#include <net/net_namespace.h>
#include <net/netns/generic.h>

#include "mbstate.h"

DEFINE_MUTEX(mbstate_mutex);

unsigned int max_middleboxes = 1024;
module_param(max_middleboxes, uint, 0644);
MODULE_PARM_DESC(max_middleboxes, "Middleboxes per network namespace (1024)");

unsigned int max_rules = 100000;
module_param(max_rules, uint, 0644);
MODULE_PARM_DESC(max_rules, "Firewall rules per middlebox (100000)");

unsigned int max_entries = 1000000;
module_param(max_entries, uint, 0644);
MODULE_PARM_DESC(max_entries,
		 "Classifier entries per middlebox, after port ranges are expanded (1000000)");

/*
 * Each subtable (distinct mask) costs every frame addressed to the
 * middlebox one masked hash probe: this bounds a lookup, whatever rules
 * were added (docs/SECURITY.md, W1). One T rule with a source and a
 * destination port range needs up to 225.
 */
unsigned int max_subtables = 256;
module_param(max_subtables, uint, 0644);
MODULE_PARM_DESC(max_subtables,
		 "Classifier subtables (distinct masks) per middlebox: bounds the cost of a lookup (256)");

static unsigned int mbstate_net_id __read_mostly;
static LIST_HEAD(mbstate_nets);		/* every mbstate_net, under mutex */
static unsigned long mbstate_services;	/* offloads loaded, under mutex */

struct mbstate_net *mbstate_pernet(const struct net *net)
{
	return net_generic(net, mbstate_net_id);
}

static u64 mbstate_mac_key(const u8 *mac)
{
	/* Any function of the 6 bytes will do: two loads, not a loop of 6. */
	return get_unaligned((const u32 *)mac) |
	       (u64)get_unaligned((const u16 *)(mac + 4)) << 32;
}

/**
 * mbstate_lookup_rcu - the middlebox a frame with destination @mac is for
 * @net: namespace of the bridge port the frame came in on
 * @mac: destination MAC address
 *
 * Runs on the packet path under rcu_read_lock(): one hash lookup.
 */
struct mb_entry *mbstate_lookup_rcu(const struct net *net, const u8 *mac)
{
	/*
	 * net_generic() without its own rcu_read_lock()/rcu_read_unlock():
	 * the caller holds it, and with CONFIG_PREEMPT_RCU (Debian's kernels)
	 * that pair costs two function calls per frame.
	 */
	struct mbstate_net *mn = rcu_dereference(net->gen)->ptr[mbstate_net_id];
	struct mb_entry *mb;

	hash_for_each_possible_rcu(mn->table, mb, hnode, mbstate_mac_key(mac))
		if (ether_addr_equal(mb->mac, mac))
			return mb;
	return NULL;
}
EXPORT_SYMBOL_GPL(mbstate_lookup_rcu);

struct mb_entry *mbstate_find(struct mbstate_net *mn, const u8 *mac)
{
	struct mb_entry *mb;

	lockdep_assert_held(&mbstate_mutex);
	hash_for_each_possible(mn->table, mb, hnode, mbstate_mac_key(mac))
		if (ether_addr_equal(mb->mac, mac))
			return mb;
	return NULL;
}

bool mbstate_service_available(unsigned int service_bit)
{
	lockdep_assert_held(&mbstate_mutex);
	return test_bit(service_bit, &mbstate_services);
}

void mbstate_stats_read(const struct mb_entry *mb, u64 out[MB_ST_N])
{
	int cpu, i;

	memset(out, 0, MB_ST_N * sizeof(u64));
	for_each_possible_cpu(cpu) {
		const struct mb_pcpu_stats *s = per_cpu_ptr(mb->stats, cpu);
		u64 v[MB_ST_N];
		unsigned int start;

		do {
			start = u64_stats_fetch_begin(&s->syncp);
			v[MB_ST_RX_PACKETS] = u64_stats_read(&s->rx_packets);
			v[MB_ST_RX_BYTES] = u64_stats_read(&s->rx_bytes);
			v[MB_ST_FW_DROP_PACKETS] =
				u64_stats_read(&s->fw_drop_packets);
			v[MB_ST_FW_DROP_BYTES] =
				u64_stats_read(&s->fw_drop_bytes);
			v[MB_ST_DISABLED_PACKETS] =
				u64_stats_read(&s->disabled_packets);
			v[MB_ST_UNBOUND_PACKETS] =
				u64_stats_read(&s->unbound_packets);
		} while (u64_stats_fetch_retry(&s->syncp, start));
		for (i = 0; i < MB_ST_N; i++)
			out[i] += v[i];
	}
}

void mbstate_rule_ctr_read(const struct mbfw_rule *rule, u64 *packets,
			   u64 *bytes)
{
	int cpu;

	*packets = 0;
	*bytes = 0;
	for_each_possible_cpu(cpu) {
		const struct mb_rule_pcpu *c = per_cpu_ptr(rule->ctr, cpu);
		unsigned int start;
		u64 p, b;

		do {
			start = u64_stats_fetch_begin(&c->syncp);
			p = u64_stats_read(&c->packets);
			b = u64_stats_read(&c->bytes);
		} while (u64_stats_fetch_retry(&c->syncp, start));
		*packets += p;
		*bytes += b;
	}
}

/* Rules and rule sets. */

struct mbfw_rule *mbstate_rule_new(struct mb_entry *mb,
				   const struct mb_rule *r)
{
	struct mbfw_rule *rule;

	BUILD_BUG_ON(offsetof(struct mbfw_rule, r) != 0);
	rule = kzalloc(sizeof(*rule), MBSTATE_GFP);
	if (!rule)
		return NULL;
	rule->ctr = mbstate_alloc_pcpu_stats(struct mb_rule_pcpu);
	if (!rule->ctr) {
		kfree(rule);
		return NULL;
	}
	rule->r = *r;
	rule->id = ++mb->next_rule_id;
	return rule;
}

static void mbstate_rule_free_now(struct mbfw_rule *rule)
{
	free_percpu(rule->ctr);
	kfree(rule);
}

static void mbstate_rule_free_rcu(struct rcu_head *head)
{
	mbstate_rule_free_now(container_of(head, struct mbfw_rule, rcu));
}

/* Frees @rule after the readers that may still see it are gone. */
void mbstate_rule_free(struct mbfw_rule *rule)
{
	call_rcu(&rule->rcu, mbstate_rule_free_rcu);
}

static void mbstate_ruleset_free_now(struct mbfw_ruleset *rs, bool rules_too)
{
	u32 i;

	if (rules_too)
		for (i = 0; i < rs->n_rules; i++)
			mbstate_rule_free_now(rs->rules[i]);
	mbc_free(rs->table);
	kvfree(rs->rules);
	kfree(rs);
}

static void mbstate_ruleset_free_rcu(struct rcu_head *head)
{
	mbstate_ruleset_free_now(container_of(head, struct mbfw_ruleset, rcu),
				 false);
}

static void mbstate_ruleset_free_all_rcu(struct rcu_head *head)
{
	mbstate_ruleset_free_now(container_of(head, struct mbfw_ruleset, rcu),
				 true);
}

/**
 * mbstate_fw_replace - publish a new rule set for @mb
 * @mb: the middlebox
 * @rules: the rules of the new set (copied; the rule objects are shared)
 * @n: how many
 * @extack: where to say why it failed
 *
 * Builds the classifier for @rules and swaps it in: a frame sees either the
 * old set or the new one. On success the old set (its array and classifier,
 * not its rules) is retired with call_rcu(): the caller must not read it
 * after this returns 0, mbstate_mutex or not (a grace period may end at any
 * moment), so it collects beforehand what it needs of it, and frees the
 * rules the new set dropped with mbstate_rule_free() afterwards. On error
 * nothing changed.
 */
int mbstate_fw_replace(struct mb_entry *mb, struct mbfw_rule **rules, u32 n,
		       struct netlink_ext_ack *extack)
{
	struct mbfw_ruleset *old = mbstate_deref(mb->fw), *rs = NULL;
	struct mbc_limits lim = {
		.max_entries = READ_ONCE(max_entries),
		.max_subtables = READ_ONCE(max_subtables),
	};
	enum mbc_over over;

	lockdep_assert_held(&mbstate_mutex);
	if (n) {
		rs = kzalloc(sizeof(*rs), MBSTATE_GFP);
		if (!rs)
			goto nomem;
		rs->rules = kvmalloc_array(n, sizeof(*rs->rules), MBSTATE_GFP);
		if (!rs->rules)
			goto nomem;
		memcpy(rs->rules, rules, n * sizeof(*rules));
		rs->n_rules = n;
		rs->table = mbc_build((const struct mb_rule *const *)rules, n,
				      get_random_u32(), &lim, &over);
		if (!rs->table) {
			if (over == MBC_OVER_NONE)
				goto nomem;
			if (over == MBC_OVER_ENTRIES)
				NL_SET_ERR_MSG(extack,
					       "rules expand to more classifier entries than the module parameter max_entries allows");
			else
				NL_SET_ERR_MSG(extack,
					       "rules need more distinct masks (classifier subtables) than the module parameter max_subtables allows");
			kvfree(rs->rules);
			kfree(rs);
			return -E2BIG;
		}
		rs->n_entries = rs->table->n_entries;
	}
	rcu_assign_pointer(mb->fw, rs);
	mb->fw_gen++;
	if (old)
		call_rcu(&old->rcu, mbstate_ruleset_free_rcu);
	return 0;

nomem:
	if (rs)
		kvfree(rs->rules);
	kfree(rs);
	NL_SET_ERR_MSG(extack, "out of memory building the rule set");
	return -ENOMEM;
}

/* Forgets every rule of @mb. */
void mbstate_fw_clear(struct mb_entry *mb)
{
	struct mbfw_ruleset *old = mbstate_deref(mb->fw);

	RCU_INIT_POINTER(mb->fw, NULL);
	mb->fw_gen++;
	if (old)
		call_rcu(&old->rcu, mbstate_ruleset_free_all_rcu);
}

/* Middleboxes. */

struct mb_entry *mbstate_mb_new(struct mbstate_net *mn, const u8 *mac,
				__be32 ip, u16 vlan)
{
	struct mb_entry *mb;

	lockdep_assert_held(&mbstate_mutex);
	mb = kzalloc(sizeof(*mb), MBSTATE_GFP);
	if (!mb)
		return NULL;
	mb->stats = mbstate_alloc_pcpu_stats(struct mb_pcpu_stats);
	mb->lb_stats = mbstate_alloc_pcpu_stats(struct mb_lb_pcpu_stats);
	mb->lb_quota = kzalloc(sizeof(*mb->lb_quota), MBSTATE_GFP);
	if (!mb->stats || !mb->lb_stats || !mb->lb_quota) {
		free_percpu(mb->stats);
		free_percpu(mb->lb_stats);
		kfree(mb->lb_quota);
		kfree(mb);
		return NULL;
	}
	refcount_set(&mb->lb_quota->ref, 1);
	/* a middlebox registered again is another: its rule dumps restart */
	mb->fw_gen = mn->gen;
	INIT_LIST_HEAD(&mb->lb_backends);
	ether_addr_copy(mb->mac, mac);
	mb->ip = ip;
	mb->vlan = vlan;
	mb->enabled = true;
	list_add_tail(&mb->list, &mn->mbs);
	hash_add_rcu(mn->table, &mb->hnode, mbstate_mac_key(mac));
	mn->count++;
	return mb;
}

static void mbstate_mb_free_rcu(struct rcu_head *head)
{
	struct mb_entry *mb = container_of(head, struct mb_entry, rcu);
	struct mbfw_ruleset *rs = rcu_dereference_raw(mb->fw);

	if (rs)
		mbstate_ruleset_free_now(rs, true);
	free_percpu(mb->stats);
	free_percpu(mb->lb_stats);
	mbstate_lb_quota_put(mb->lb_quota);
	kfree(mb);
}

void mbstate_mb_del(struct mbstate_net *mn, struct mb_entry *mb)
{
	lockdep_assert_held(&mbstate_mutex);
	mbstate_lb_clear(mn, mb);
	hash_del_rcu(&mb->hnode);
	list_del(&mb->list);
	mn->count--;
	call_rcu(&mb->rcu, mbstate_mb_free_rcu);
}

/**
 * mbstate_service_set - an offload module came or went
 * @service_bit: MBSTATE_SVC_*_BIT
 * @available: whether it can be registered for from now on
 *
 * Called by mbhook after it stopped calling the offload (so no frame is in
 * it). When an offload goes, every middlebox drops that service and its
 * state; a middlebox left with no service is unregistered.
 */
void mbstate_service_set(unsigned int service_bit, bool available)
{
	struct mbstate_net *mn;
	struct mb_entry *mb, *tmp;

	if (WARN_ON(service_bit >= __MBSTATE_SVC_NUM))
		return;
	mutex_lock(&mbstate_mutex);
	if (available) {
		set_bit(service_bit, &mbstate_services);
		goto out;
	}
	clear_bit(service_bit, &mbstate_services);
	list_for_each_entry(mn, &mbstate_nets, all) {
		list_for_each_entry_safe(mb, tmp, &mn->mbs, list) {
			if (!(mb->services & BIT(service_bit)))
				continue;
			mb->services &= ~BIT(service_bit);
			if (service_bit == MBSTATE_SVC_F_BIT)
				mbstate_fw_clear(mb);
			if (service_bit == MBSTATE_SVC_L_BIT)
				mbstate_lb_clear(mn, mb);
			mn->gen++;
			if (mb->services) {
				mbstate_notify_mb(mn, mb, MBSTATE_CMD_SET_MB);
			} else {
				mbstate_notify_mb(mn, mb, MBSTATE_CMD_DEL_MB);
				mbstate_mb_del(mn, mb);
			}
		}
	}
out:
	mutex_unlock(&mbstate_mutex);
}
EXPORT_SYMBOL_GPL(mbstate_service_set);

/* Network namespaces. */

static int __net_init mbstate_net_init(struct net *net)
{
	struct mbstate_net *mn = mbstate_pernet(net);

	hash_init(mn->table);
	hash_init(mn->lb_index);
	atomic_set(&mn->lb_unlearned, 0);
	INIT_LIST_HEAD(&mn->mbs);
	mn->net = net;
	mn->gen = 1;
	mutex_lock(&mbstate_mutex);
	list_add(&mn->all, &mbstate_nets);
	mutex_unlock(&mbstate_mutex);
	return 0;
}

static void __net_exit mbstate_net_exit(struct net *net)
{
	struct mbstate_net *mn = mbstate_pernet(net);
	struct mb_entry *mb, *tmp;

	mutex_lock(&mbstate_mutex);
	list_for_each_entry_safe(mb, tmp, &mn->mbs, list)
		mbstate_mb_del(mn, mb);
	list_del(&mn->all);
	mutex_unlock(&mbstate_mutex);
}

static struct pernet_operations mbstate_net_ops = {
	.init = mbstate_net_init,
	.exit = mbstate_net_exit,
	.id = &mbstate_net_id,
	.size = sizeof(struct mbstate_net),
};

static int __init mbstate_init(void)
{
	int ret;

	ret = register_pernet_subsys(&mbstate_net_ops);
	if (ret)
		return ret;
	ret = mbstate_lb_init();
	if (ret)
		goto err_lb;
	ret = mbstate_genl_init();
	if (ret)
		goto err_genl;
	pr_info("middlebox registry loaded\n");
	return 0;

err_genl:
	mbstate_lb_exit();
err_lb:
	unregister_pernet_subsys(&mbstate_net_ops);
	return ret;
}

static void __exit mbstate_exit(void)
{
	mbstate_genl_exit();
	mbstate_lb_exit();
	unregister_pernet_subsys(&mbstate_net_ops);
	rcu_barrier();	/* every call_rcu() above has run */
}

module_init(mbstate_init);
module_exit(mbstate_exit);
MODULE_LICENSE("GPL");
MODULE_AUTHOR("mbvisor developers");
MODULE_DESCRIPTION("mbvisor: registry of middlebox state");
MODULE_ALIAS_GENL_FAMILY(MBSTATE_GENL_NAME);
