// SPDX-License-Identifier: GPL-2.0
/*
 * mblb: the load-balancer offload of mbvisor.
 *
 * A middlebox registered for service L ("R L <MAC> <IP> <type> <srcIP>
 * <dstIP>", more backends with "A <MAC> L ...") keeps its decisions; the
 * bridge does the forwarding. For a client's flow to the middlebox's address
 * (the VIP) this module picks a backend by Maglev consistent hashing, remembers
 * the choice in a flow table, and rewrites every frame of the flow:
 *
 *   client -> VIP          at NF_BR_PRE_ROUTING, through mbhook (mblb_rx):
 *                          destination IP and MAC become the backend's; the
 *                          bridge then forwards the frame to the backend's
 *                          port, since br_handle_frame_finish() looks the
 *                          rewritten destination up in its FDB.
 *   backend -> client      at NF_BR_POST_ROUTING (mblb_post): source IP and
 *                          MAC become the VIP's and the middlebox's. Not at
 *                          PRE_ROUTING: br_handle_frame_finish() learns the
 *                          source MAC into the FDB after the PRE_ROUTING
 *                          hooks, and a rewritten source would move the
 *                          middlebox's MAC onto the backend's port.
 *
 * Our own PRE_ROUTING hook (mblb_pre, after mbhook's) learns backends' MACs
 * from ARP and IPv4 frames, and keeps established flows going when mbhook no
 * longer hands their frames to us (the middlebox was disabled with D or
 * unregistered with X: new flows then go to the middlebox, established ones
 * stay on their backend until they end).
 *
 * Both of our hooks are registered in a namespace only while it has
 * backends (mbstate calls mblb_net_use() and mblb_net_unuse()): every flow
 * holds one, and the frames of a bridge without a load balancer do not pay
 * for two more hook calls and a parse each.
 *
 * The flow table is preallocated (module parameter max_flows) and shared by
 * every network namespace; two RCU hash tables index it, by the client's
 * 5-tuple and by the backend's reply 5-tuple. Frames look flows up under
 * RCU, without a lock and without allocating; creating a flow takes
 * mblb_lock once. A delayed work item ends idle and closed flows and gives
 * their slots back after a grace period. When the table is full, or the
 * backend's MAC is unknown, or anything else keeps a frame from being
 * redirected, it goes on to the middlebox unchanged and a counter says why.
 */
#include <linux/etherdevice.h>
#include <linux/icmp.h>
#include <linux/if_arp.h>
#include <linux/ip.h>
#include <linux/jhash.h>
#include <linux/log2.h>
#include <linux/module.h>
#include <linux/netfilter_bridge.h>
#include <linux/random.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <linux/workqueue.h>
#include <net/checksum.h>
#include <net/ip.h>
#include <net/net_namespace.h>
#include <net/netns/generic.h>
#include <net/netns/hash.h>
#include <net/tcp.h>
#include <uapi/linux/netfilter_bridge.h>

#include <mbvisor/kernel.h>
#include <mbvisor/maglev.h>

static unsigned int max_flows = 65536;
module_param(max_flows, uint, 0444);
MODULE_PARM_DESC(max_flows, "Size of the flow table, for all namespaces (65536; 16 to 16777216)");

/*
 * The table is shared by every namespace and VM: one middlebox's flows
 * (a guest opening flows as fast as it can) must not take all of it from
 * the others (docs/SECURITY.md, A7).
 */
static unsigned int max_flows_per_mb = 16384;
module_param(max_flows_per_mb, uint, 0644);
MODULE_PARM_DESC(max_flows_per_mb, "Flows one middlebox may have in the table (16384)");

static unsigned int tcp_timeout = 3600;
module_param(tcp_timeout, uint, 0644);
MODULE_PARM_DESC(tcp_timeout, "Seconds an established TCP flow may stay idle (3600)");

static unsigned int tcp_syn_timeout = 60;
module_param(tcp_syn_timeout, uint, 0644);
MODULE_PARM_DESC(tcp_syn_timeout, "Seconds a TCP flow waits for the backend's answer (60)");

static unsigned int tcp_fin_timeout = 120;
module_param(tcp_fin_timeout, uint, 0644);
MODULE_PARM_DESC(tcp_fin_timeout, "Seconds a TCP flow lives idle after one FIN (120)");

static unsigned int tcp_close_timeout = 10;
module_param(tcp_close_timeout, uint, 0644);
MODULE_PARM_DESC(tcp_close_timeout, "Seconds a TCP flow lives idle after both FINs or a RST (10)");

static unsigned int udp_timeout = 60;
module_param(udp_timeout, uint, 0644);
MODULE_PARM_DESC(udp_timeout, "Seconds a UDP or ICMP echo flow may stay idle (60)");

/* Slots the collector looks at per lock hold. */
#define MBLB_GC_CHUNK	1024

/* A flow as the client sent it: client -> VIP. 16 bytes, no holes. */
struct mblb_key {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	u8 proto;
	u8 pad[3];
};

/* Bits of mblb_flow.flags; atomic bit operations on the packet path. */
enum {
	MBLB_F_LIVE,		/* in the hash tables (under mblb_lock) */
	MBLB_F_DEAD,		/* superseded by a new connection: skip it */
	MBLB_F_REPLIED,		/* the backend answered */
	MBLB_F_FIN_C,		/* FIN from the client */
	MBLB_F_FIN_B,		/* FIN from the backend */
	MBLB_F_RST,		/* RST from either side */
};

/*
 * One slot of the flow table. Everything but @last and @flags is written
 * under mblb_lock before the flow is linked and stays unchanged while it is
 * linked; a slot is reused only a grace period after it was unlinked.
 */
struct mblb_flow {
	struct hlist_node fwd;		/* mblb_fwd[], by key */
	struct hlist_node rev;		/* mblb_rev[], by reply tuple */
	const struct net *net;		/* compared, never dereferenced */
	struct mblb_key key;
	__be32 be_ip;
	u8 be_mac[ETH_ALEN];
	u8 mb_mac[ETH_ALEN];
	struct mblb_backend *be;	/* holds a reference */
	unsigned long last;		/* jiffies of the last frame */
	unsigned long flags;		/* MBLB_F_* */
	struct mblb_flow *next;		/* free list, or a batch being reaped */
};

/* What the hooks read from a frame. */
struct mblb_pkt {
	struct mblb_key k;
	u8 tcp_flags;
	unsigned int l4off;
};

struct mblb_net {
	atomic_t flows;			/* linked flows of this namespace */
	bool dying;			/* no new flows; under mblb_lock */
	bool hooked;			/* mblb_hook_ops registered here */
};

/*
 * Serialises hooking and unhooking a namespace. Taken under mbstate_mutex
 * (mblb_net_use(), mblb_net_unuse()), never the other way round.
 */
static DEFINE_MUTEX(mblb_hook_mutex);

/*
 * Held by whoever ends flows (mblb_scan: the collector, a namespace's exit,
 * the module's) from the first unlink to the last backend reference given
 * back. A namespace's exit takes it too, so it cannot return, and mbstate's
 * exit free the registry, while the collector still holds flows of that
 * namespace it unlinked but has not released (mbstate_lb_backend_put()
 * writes into the registry). Taken before mbstate_mutex, never under it.
 */
static DEFINE_MUTEX(mblb_scan_mutex);

static struct mblb_flow *mblb_flows;	/* max_flows slots */
static struct hlist_head *mblb_fwd, *mblb_rev;
static u32 mblb_hmask;
static struct mblb_flow *mblb_free;	/* under mblb_lock */
static DEFINE_SPINLOCK(mblb_lock);	/* links, unlinks, the free list */
static u32 mblb_seed __read_mostly;	/* hash tables */
static u32 mblb_flow_seed __read_mostly;	/* backend choice */
static unsigned int mblb_net_id __read_mostly;
static struct delayed_work mblb_gc_work;

static struct mblb_net *mblb_pernet(const struct net *net)
{
	return net_generic(net, mblb_net_id);
}

/* ---- Frames. ---- */

enum { MBLB_NOT_IP, MBLB_OTHER, MBLB_OK };

/*
 * Reads the addresses and ports of an IPv4 frame (skb->data is the IPv4
 * header at the bridge's hooks) without changing the skb. @reply: an ICMP
 * echo reply rather than a request is a flow's frame. Returns MBLB_OK for
 * TCP, UDP and ICMP echo that is not a fragment; MBLB_OTHER for other IPv4
 * (addresses filled in if the header is there).
 */
static int mblb_parse(const struct sk_buff *skb, struct mblb_pkt *p,
		      bool reply)
{
	const struct iphdr *iph;
	struct iphdr _iph;

	if (skb->protocol != htons(ETH_P_IP))
		return MBLB_NOT_IP;
	memset(p, 0, sizeof(*p));
	iph = skb_header_pointer(skb, 0, sizeof(_iph), &_iph);
	if (!iph || iph->version != 4 || iph->ihl < 5)
		return MBLB_OTHER;
	p->k.saddr = iph->saddr;
	p->k.daddr = iph->daddr;
	p->k.proto = iph->protocol;
	p->l4off = iph->ihl * 4;
	if (ip_is_fragment(iph))
		return MBLB_OTHER;

	switch (iph->protocol) {
	case IPPROTO_TCP: {
		const struct tcphdr *th;
		struct tcphdr _th;

		th = skb_header_pointer(skb, p->l4off, sizeof(_th), &_th);
		if (!th)
			return MBLB_OTHER;
		p->k.sport = th->source;
		p->k.dport = th->dest;
		p->tcp_flags = tcp_flag_byte(th);
		return MBLB_OK;
	}
	case IPPROTO_UDP: {
		const struct udphdr *uh;
		struct udphdr _uh;

		uh = skb_header_pointer(skb, p->l4off, sizeof(_uh), &_uh);
		if (!uh)
			return MBLB_OTHER;
		p->k.sport = uh->source;
		p->k.dport = uh->dest;
		return MBLB_OK;
	}
	case IPPROTO_ICMP: {
		const struct icmphdr *ih;
		struct icmphdr _ih;

		ih = skb_header_pointer(skb, p->l4off, sizeof(_ih), &_ih);
		if (!ih || ih->code ||
		    ih->type != (reply ? ICMP_ECHOREPLY : ICMP_ECHO))
			return MBLB_OTHER;
		p->k.sport = ih->un.echo.id;
		p->k.dport = ih->un.echo.id;
		return MBLB_OK;
	}
	}
	return MBLB_OTHER;
}

/* A TCP SYN that opens a connection (no ACK, RST or FIN). */
static bool mblb_syn(const struct mblb_pkt *p)
{
	return p->k.proto == IPPROTO_TCP &&
	       (p->tcp_flags & (TCPHDR_SYN | TCPHDR_ACK | TCPHDR_RST |
				TCPHDR_FIN)) == TCPHDR_SYN;
}

/*
 * Rewrites the destination (@to_backend) or the source address of the
 * frame to @ip, its checksums, and the destination or source MAC to @mac.
 * CHECKSUM_PARTIAL frames (from veth and virtio) get their pseudo-header
 * sum updated, CHECKSUM_COMPLETE ones their skb->csum. Returns false, and
 * changes nothing, if the headers cannot be made writable.
 */
static bool mblb_rewrite(struct sk_buff *skb, const struct mblb_pkt *p,
			 bool to_backend, __be32 ip, const u8 *mac)
{
	unsigned int len = p->l4off;
	struct ethhdr *eth;
	struct iphdr *iph;
	__be32 *addr;

	if (p->k.proto == IPPROTO_TCP)
		len += sizeof(struct tcphdr);
	else if (p->k.proto == IPPROTO_UDP)
		len += sizeof(struct udphdr);
	/* the MAC header lies in the head, which this makes private too */
	if (skb_ensure_writable(skb, len))
		return false;
	iph = (struct iphdr *)skb->data;
	addr = to_backend ? &iph->daddr : &iph->saddr;
	if (p->k.proto == IPPROTO_TCP) {
		struct tcphdr *th = (struct tcphdr *)(skb->data + p->l4off);

		inet_proto_csum_replace4(&th->check, skb, *addr, ip, true);
	} else if (p->k.proto == IPPROTO_UDP) {
		struct udphdr *uh = (struct udphdr *)(skb->data + p->l4off);

		if (uh->check || skb->ip_summed == CHECKSUM_PARTIAL) {
			inet_proto_csum_replace4(&uh->check, skb, *addr, ip,
						 true);
			if (!uh->check)
				uh->check = CSUM_MANGLED_0;
		}
	}
	csum_replace4(&iph->check, *addr, ip);
	*addr = ip;
	eth = eth_hdr(skb);
	ether_addr_copy(to_backend ? eth->h_dest : eth->h_source, mac);
	skb_clear_hash(skb);
	return true;
}

static void mblb_be_new_flow(struct mblb_backend *be)
{
	struct mblb_be_pcpu *st = this_cpu_ptr(be->stats);

	u64_stats_update_begin(&st->syncp);
	u64_stats_inc(&st->v[MBLB_BE_NEW_FLOWS]);
	u64_stats_update_end(&st->syncp);
}

static void mblb_be_count(struct mblb_backend *be, unsigned int packets,
			  unsigned int bytes, unsigned int len)
{
	struct mblb_be_pcpu *st = this_cpu_ptr(be->stats);

	u64_stats_update_begin(&st->syncp);
	u64_stats_inc(&st->v[packets]);
	u64_stats_add(&st->v[bytes], len);
	u64_stats_update_end(&st->syncp);
}

/* ---- The flow table. ---- */

static u32 mblb_hash(const struct net *net, const struct mblb_key *k)
{
	return jhash_3words((__force u32)k->saddr, (__force u32)k->daddr,
			    (__force u32)k->sport << 16 | (__force u32)k->dport,
			    mblb_seed ^ k->proto ^ net_hash_mix(net)) &
	       mblb_hmask;
}

/* The tuple of the backend's replies to the flow @k sent to @be_ip. */
static void mblb_reply_key(const struct mblb_key *k, __be32 be_ip,
			   struct mblb_key *r)
{
	memset(r, 0, sizeof(*r));
	r->saddr = be_ip;
	r->daddr = k->saddr;
	r->sport = k->dport;
	r->dport = k->sport;
	r->proto = k->proto;
}

/* Packet path (rcu_read_lock) or under mblb_lock. Skips dead flows. */
static struct mblb_flow *mblb_lookup_fwd(const struct net *net,
					 const struct mblb_key *k)
{
	struct mblb_flow *f;

	hlist_for_each_entry_rcu(f, &mblb_fwd[mblb_hash(net, k)], fwd,
				 lockdep_is_held(&mblb_lock))
		if (f->net == net && !memcmp(&f->key, k, sizeof(*k)) &&
		    !test_bit(MBLB_F_DEAD, &f->flags))
			return f;
	return NULL;
}

static struct mblb_flow *mblb_lookup_rev(const struct net *net,
					 const struct mblb_key *r)
{
	struct mblb_flow *f;

	hlist_for_each_entry_rcu(f, &mblb_rev[mblb_hash(net, r)], rev,
				 lockdep_is_held(&mblb_lock))
		if (f->net == net && f->be_ip == r->saddr &&
		    f->key.saddr == r->daddr && f->key.dport == r->sport &&
		    f->key.sport == r->dport && f->key.proto == r->proto &&
		    !test_bit(MBLB_F_DEAD, &f->flags))
			return f;
	return NULL;
}

enum {
	MBLB_CREATED, MBLB_EXISTS, MBLB_FULL, MBLB_QUOTA, MBLB_COLLISION,
	MBLB_GONE
};

/*
 * Links a new flow for @p to @be, reached at @be_mac. Packet path (softirq,
 * rcu_read_lock): one lock, no allocation. Returns the flow (MBLB_CREATED,
 * or MBLB_EXISTS when another CPU created it first) or NULL with *why set.
 */
static struct mblb_flow *mblb_flow_create(const struct net *net,
					  const struct mblb_pkt *p,
					  struct mblb_backend *be,
					  const u8 *be_mac,
					  const u8 *mb_mac, int *why)
{
	struct mblb_net *ln = mblb_pernet(net);
	struct mblb_flow *f;
	struct mblb_key r;

	mblb_reply_key(&p->k, be->ip, &r);
	/* BH is disabled here already; _bh keeps this true for any caller */
	spin_lock_bh(&mblb_lock);
	f = mblb_lookup_fwd(net, &p->k);
	if (f) {
		*why = MBLB_EXISTS;
		goto out;
	}
	if (ln->dying) {
		*why = MBLB_GONE;
		goto out;
	}
	if (!mblb_free) {
		*why = MBLB_FULL;
		goto out;
	}
	if (atomic_read(&be->quota->flows) >= READ_ONCE(max_flows_per_mb)) {
		*why = MBLB_QUOTA;
		goto out;
	}
	/* the backend could not tell two such flows apart */
	if (mblb_lookup_rev(net, &r)) {
		*why = MBLB_COLLISION;
		goto out;
	}
	/* a configuration being replaced may have let go of @be */
	if (!refcount_inc_not_zero(&be->ref)) {
		*why = MBLB_GONE;
		goto out;
	}
	f = mblb_free;
	mblb_free = f->next;
	f->next = NULL;
	f->net = net;
	f->key = p->k;
	f->be_ip = be->ip;
	ether_addr_copy(f->be_mac, be_mac);
	ether_addr_copy(f->mb_mac, mb_mac);
	f->be = be;
	f->last = jiffies;
	f->flags = BIT(MBLB_F_LIVE);
	hlist_add_head_rcu(&f->fwd, &mblb_fwd[mblb_hash(net, &p->k)]);
	hlist_add_head_rcu(&f->rev, &mblb_rev[mblb_hash(net, &r)]);
	atomic_inc(&be->flows);
	atomic_inc(&be->quota->flows);
	atomic_inc(&ln->flows);
	*why = MBLB_CREATED;
out:
	spin_unlock_bh(&mblb_lock);
	return f;
}

/* Connection state from the frames seen; @reply: from the backend. */
static void mblb_track(struct mblb_flow *f, const struct mblb_pkt *p,
		       bool reply)
{
	unsigned long now = jiffies;

	if (READ_ONCE(f->last) != now)
		WRITE_ONCE(f->last, now);
	if (reply && !test_bit(MBLB_F_REPLIED, &f->flags))
		set_bit(MBLB_F_REPLIED, &f->flags);
	if (unlikely(p->tcp_flags & (TCPHDR_FIN | TCPHDR_RST))) {
		if (p->tcp_flags & TCPHDR_RST)
			set_bit(MBLB_F_RST, &f->flags);
		if (p->tcp_flags & TCPHDR_FIN)
			set_bit(reply ? MBLB_F_FIN_B : MBLB_F_FIN_C,
				&f->flags);
	}
}

/* A TCP flow that a FIN or RST ended (or is ending). */
static bool mblb_ending(const struct mblb_flow *f)
{
	return READ_ONCE(f->flags) &
	       (BIT(MBLB_F_FIN_C) | BIT(MBLB_F_FIN_B) | BIT(MBLB_F_RST));
}

/* Sends a frame of flow @f to its backend; false if it could not. */
static bool mblb_forward(struct sk_buff *skb, struct mblb_flow *f,
			 const struct mblb_pkt *p)
{
	unsigned int len = skb->len + ETH_HLEN;

	if (!mblb_rewrite(skb, p, true, f->be_ip, f->be_mac))
		return false;
	mblb_track(f, p, false);
	mblb_be_count(f->be, MBLB_BE_PACKETS, MBLB_BE_BYTES, len);
	return true;
}

/*
 * Picks a backend for a new flow of @mb and creates the flow. A frame that
 * came in on the middlebox's own bridge port never gets here (mblb_rx()):
 * the middlebox could otherwise make up flows of other hosts' addresses and
 * ports (spoofing its source, before any anti-spoofing filter, which runs
 * after mbhook), and have the replies of a real server to those hosts
 * rewritten (docs/SECURITY.md, A2). Until a frame from the middlebox's MAC
 * has shown its port, no flow is opened at all.
 */
static struct mblb_flow *mblb_new_flow(struct mb_entry *mb,
				       const struct mblb_conf *conf,
				       const struct net *net,
				       const struct mblb_pkt *p)
{
	const struct mblb_conf_be *cb;
	int why;
	struct mblb_flow *f;
	u8 mac[ETH_ALEN];
	u32 hash;
	u16 idx;

	/* mblb_rx() passed the frames from the middlebox's port already */
	if (!READ_ONCE(mb->lb_port)) {
		mb_lb_count(mb, MB_LB_MB_PORT_UNKNOWN, 1);
		return NULL;
	}
	if (conf->type == 1 && p->k.saddr != conf->src_ip) {
		mb_lb_count(mb, MB_LB_NOT_SELECTED, 1);
		return NULL;
	}
	/* a TCP segment of a connection that began at the middlebox */
	if (p->k.proto == IPPROTO_TCP && !mblb_syn(p)) {
		mb_lb_count(mb, MB_LB_NO_FLOW, 1);
		return NULL;
	}
	hash = jhash_3words((__force u32)p->k.saddr, (__force u32)p->k.daddr,
			    (__force u32)p->k.sport << 16 |
			    (__force u32)p->k.dport,
			    mblb_flow_seed ^ p->k.proto);
	idx = mb_maglev_lookup(conf->table, MB_MAGLEV_SIZE, hash);
	if (idx >= conf->n) {
		mb_lb_count(mb, MB_LB_NO_BACKEND, 1);
		return NULL;
	}
	cb = &conf->be[idx];
	if (!mblb_conf_be_mac(cb, mac)) {
		mb_lb_count(mb, MB_LB_MAC_UNKNOWN, 1);
		return NULL;
	}
	f = mblb_flow_create(net, p, cb->be, mac, mb->mac, &why);
	switch (why) {
	case MBLB_CREATED:
		mb_lb_count(mb, MB_LB_NEW_FLOWS, 1);
		mblb_be_new_flow(cb->be);
		break;
	case MBLB_FULL:
		mb_lb_count(mb, MB_LB_TABLE_FULL, 1);
		break;
	case MBLB_QUOTA:
		mb_lb_count(mb, MB_LB_OVER_QUOTA, 1);
		break;
	case MBLB_COLLISION:
		mb_lb_count(mb, MB_LB_COLLISION, 1);
		break;
	case MBLB_GONE:
		mb_lb_count(mb, MB_LB_NO_BACKEND, 1);
		break;
	}
	return f;
}

/*
 * Called by mbhook for a frame addressed to @mb (registered for L, enabled),
 * in softirq, under rcu_read_lock(). Always NF_ACCEPT: a redirected frame
 * goes on to the backend, any other to the middlebox.
 */
static unsigned int mblb_rx(struct mb_entry *mb, struct sk_buff *skb,
			    const struct nf_hook_state *state)
{
	const struct mblb_conf *conf = rcu_dereference(mb->lb_conf);
	unsigned int len = skb->len + ETH_HLEN;
	struct mb_lb_pcpu_stats *st;
	struct mblb_flow *f;
	struct mblb_pkt p;
	int r;

	if (!conf)
		return NF_ACCEPT;
	r = mblb_parse(skb, &p, false);
	if (r == MBLB_NOT_IP)
		return NF_ACCEPT;
	if (r != MBLB_OK || p.k.daddr != mb->ip) {
		mb_lb_count(mb, MB_LB_UNHANDLED, 1);
		return NF_ACCEPT;
	}
	/*
	 * From the middlebox's own port: a frame it wrote in someone else's
	 * name. It neither opens a flow nor joins one (docs/SECURITY.md, A2).
	 */
	if (skb->dev->ifindex == READ_ONCE(mb->lb_port)) {
		mb_lb_count(mb, MB_LB_FROM_MB_PORT, 1);
		return NF_ACCEPT;
	}
	/* established flows first: they keep their backend whatever changed */
	f = mblb_lookup_fwd(state->net, &p.k);
	if (f && mblb_syn(&p) && mblb_ending(f)) {
		/* the client reuses the ports for a new connection */
		set_bit(MBLB_F_DEAD, &f->flags);
		f = NULL;
	}
	if (!f) {
		f = mblb_new_flow(mb, conf, state->net, &p);
		if (!f)
			return NF_ACCEPT;
	}
	if (!mblb_forward(skb, f, &p)) {
		mb_lb_count(mb, MB_LB_UNHANDLED, 1);
		return NF_ACCEPT;
	}
	st = this_cpu_ptr(mb->lb_stats);
	u64_stats_update_begin(&st->syncp);
	u64_stats_inc(&st->v[MB_LB_REDIRECTED_PACKETS]);
	u64_stats_add(&st->v[MB_LB_REDIRECTED_BYTES], len);
	u64_stats_update_end(&st->syncp);
	return NF_ACCEPT;
}

/* ARP: learn the sender's MAC if it is a backend's address. */
static void mblb_learn_arp(const struct net *net, const struct sk_buff *skb)
{
	struct mblb_arp {
		struct arphdr h;
		u8 sha[ETH_ALEN];
		__be32 sip;
	} __packed _a;
	const struct mblb_arp *a;

	a = skb_header_pointer(skb, 0, sizeof(_a), &_a);
	if (!a || a->h.ar_hrd != htons(ARPHRD_ETHER) ||
	    a->h.ar_pro != htons(ETH_P_IP) || a->h.ar_hln != ETH_ALEN ||
	    a->h.ar_pln != 4 ||
	    (a->h.ar_op != htons(ARPOP_REQUEST) &&
	     a->h.ar_op != htons(ARPOP_REPLY)) || !a->sip)
		return;
	/* the sender's hardware address must be the frame's own */
	if (!ether_addr_equal(a->sha, eth_hdr(skb)->h_source))
		return;
	if (mbstate_lb_learning(net, true))
		mbstate_lb_learn(net, a->sip, a->sha, true, skb->dev->ifindex,
				 mbhook_frame_vlan(skb->dev, skb));
}

/*
 * Our NF_BR_PRE_ROUTING hook, after mbhook's; softirq, rcu_read_lock().
 * Learns backend MACs, and forwards the frames of established flows that
 * mbhook did not give to mblb_rx (their middlebox is disabled or gone): a
 * frame still addressed to the flow's middlebox MAC was not rewritten.
 */
static unsigned int mblb_pre(void *priv, struct sk_buff *skb,
			     const struct nf_hook_state *state)
{
	const struct ethhdr *eth = eth_hdr(skb);
	struct mb_entry *mb;
	struct mblb_flow *f;
	struct mblb_pkt p;
	bool unbound;
	int r;

	/*
	 * Where the middleboxes are: the port their first frame came from
	 * (the answer to the host's probe at R L, as a rule), in their VLAN
	 * as mbhook tells frames for them apart. It stays until that port
	 * goes or leaves its bridge (mbstate's netdev notifier): a frame with
	 * the middlebox's MAC from another port (its second NIC, a
	 * colluding VM) does not move it (mblb_rx()).
	 */
	mb = mbstate_lookup_rcu(state->net, eth->h_source);
	if (mb && !READ_ONCE(mb->lb_port) &&
	    mbhook_frame_in_mb_vlan(mb, skb->dev, skb, &unbound))
		WRITE_ONCE(mb->lb_port, skb->dev->ifindex);
	if (skb->protocol == htons(ETH_P_ARP)) {
		mblb_learn_arp(state->net, skb);
		return NF_ACCEPT;
	}
	r = mblb_parse(skb, &p, false);
	if (r == MBLB_NOT_IP)
		return NF_ACCEPT;
	if (p.k.saddr && mbstate_lb_learning(state->net, false))
		mbstate_lb_learn(state->net, p.k.saddr, eth->h_source, false,
				 skb->dev->ifindex,
				 mbhook_frame_vlan(skb->dev, skb));
	if (r != MBLB_OK || !atomic_read(&mblb_pernet(state->net)->flows) ||
	    is_multicast_ether_addr(eth->h_dest))
		return NF_ACCEPT;
	f = mblb_lookup_fwd(state->net, &p.k);
	if (!f || !ether_addr_equal(eth->h_dest, f->mb_mac))
		return NF_ACCEPT;
	if (mblb_syn(&p) && mblb_ending(f)) {
		/* a new connection: the middlebox decides now */
		set_bit(MBLB_F_DEAD, &f->flags);
		return NF_ACCEPT;
	}
	mblb_forward(skb, f, &p);
	return NF_ACCEPT;
}

/*
 * Whether @skb, a reply of @f's backend by its addresses, is the backend's:
 * from the flow's backend MAC and, once mbstate bound that MAC to a bridge
 * port (the answer to its ARP probe, as a rule; mbstate_lb_learn()), from
 * that port (skb_iif: the port's ifindex while the bridge forwards it).
 * The binding is read now, not when the flow began: a static MAC is bound
 * by the backend's first frame, which may be its first reply. A learned
 * MAC other than the flow's (the backend moved, or someone else claimed
 * its address first) leaves only the MAC to check.
 */
static bool mblb_from_backend(const struct mblb_flow *f,
			      const struct sk_buff *skb)
{
	u64 mac = ether_addr_to_u64(f->be_mac) | MBLB_MAC_VALID;
	int port;

	if (!ether_addr_equal(eth_hdr(skb)->h_source, f->be_mac))
		return false;
	/* learned is set after where: acquire pairs with that */
	if ((u64)atomic64_read_acquire(&f->be->learned) != mac)
		return true;
	port = mblb_where_port((u64)atomic64_read(&f->be->where));
	return !port || skb->skb_iif == port;
}

/*
 * Our NF_BR_POST_ROUTING hook: the return path. Softirq (or BH disabled
 * for the bridge's own frames), rcu_read_lock(). A reply of a backend to a
 * client gets the VIP and the middlebox's MAC as its source; only a frame
 * that is the backend's, by its source MAC and by the port it entered the
 * bridge on (skb_iif, the port's ifindex while the bridge forwards it), so
 * that nobody else can speak for the VIP by claiming a backend's address
 * (docs/SECURITY.md, A2).
 */
static unsigned int mblb_post(void *priv, struct sk_buff *skb,
			      const struct nf_hook_state *state)
{
	unsigned int len = skb->len + ETH_HLEN;
	struct mblb_flow *f;
	struct mblb_pkt p;

	if (!atomic_read(&mblb_pernet(state->net)->flows) ||
	    mblb_parse(skb, &p, true) != MBLB_OK)
		return NF_ACCEPT;
	f = mblb_lookup_rev(state->net, &p.k);
	if (!f || !mblb_from_backend(f, skb))
		return NF_ACCEPT;
	if (!mblb_rewrite(skb, &p, false, f->key.daddr, f->mb_mac))
		return NF_ACCEPT;
	mblb_track(f, &p, true);
	mblb_be_count(f->be, MBLB_BE_RET_PACKETS, MBLB_BE_RET_BYTES, len);
	return NF_ACCEPT;
}

/* ---- Ending flows. ---- */

static unsigned long mblb_timeout(const struct mblb_flow *f)
{
	unsigned long fl = READ_ONCE(f->flags);
	unsigned int t;

	if (f->key.proto != IPPROTO_TCP)
		t = READ_ONCE(udp_timeout);
	else if ((fl & BIT(MBLB_F_RST)) ||
		 ((fl & BIT(MBLB_F_FIN_C)) && (fl & BIT(MBLB_F_FIN_B))))
		t = READ_ONCE(tcp_close_timeout);
	else if (fl & (BIT(MBLB_F_FIN_C) | BIT(MBLB_F_FIN_B)))
		t = READ_ONCE(tcp_fin_timeout);
	else if (fl & BIT(MBLB_F_REPLIED))
		t = READ_ONCE(tcp_timeout);
	else
		t = READ_ONCE(tcp_syn_timeout);
	return (unsigned long)t * HZ;
}

/* Unlinks @f onto the batch *@reap. Under mblb_lock. */
static void mblb_unlink(struct mblb_flow *f, struct mblb_flow **reap)
{
	lockdep_assert_held(&mblb_lock);
	hlist_del_rcu(&f->fwd);
	hlist_del_rcu(&f->rev);
	clear_bit(MBLB_F_LIVE, &f->flags);
	/* the namespace lives at least until its flows are flushed */
	atomic_dec(&mblb_pernet(f->net)->flows);
	atomic_dec(&f->be->flows);
	atomic_dec(&f->be->quota->flows);
	f->next = *reap;
	*reap = f;
}

/*
 * Gives the slots of an unlinked batch back, once no frame can be looking
 * at them, and their references to the backends. Process context.
 */
static void mblb_recycle(struct mblb_flow *reap)
{
	struct mblb_flow *f, *last = NULL;

	if (!reap)
		return;
	synchronize_rcu();
	for (f = reap; f; f = f->next) {
		mbstate_lb_backend_put(f->be);
		f->be = NULL;
		f->net = NULL;
		last = f;
	}
	spin_lock_bh(&mblb_lock);
	last->next = mblb_free;
	mblb_free = reap;
	spin_unlock_bh(&mblb_lock);
}

/*
 * Ends flows: of @net (every one of them), or all (@net NULL and !@gc), or
 * the idle, closed and dead ones (@gc). Process context.
 */
static void mblb_scan(const struct net *net, bool gc)
{
	struct mblb_flow *reap = NULL;
	unsigned long now = jiffies;
	unsigned int i = 0, end;

	mutex_lock(&mblb_scan_mutex);
	while (i < max_flows) {
		end = min(i + MBLB_GC_CHUNK, max_flows);
		spin_lock_bh(&mblb_lock);
		for (; i < end; i++) {
			struct mblb_flow *f = &mblb_flows[i];

			if (!test_bit(MBLB_F_LIVE, &f->flags))
				continue;
			if (gc ? test_bit(MBLB_F_DEAD, &f->flags) ||
				 time_after(now, READ_ONCE(f->last) +
						 mblb_timeout(f)) :
				 !net || f->net == net)
				mblb_unlink(f, &reap);
		}
		spin_unlock_bh(&mblb_lock);
		cond_resched();
	}
	mblb_recycle(reap);
	mutex_unlock(&mblb_scan_mutex);
}

static void mblb_gc(struct work_struct *work)
{
	mblb_scan(NULL, true);
	queue_delayed_work(system_power_efficient_wq, &mblb_gc_work, HZ);
}

/* ---- Flows for mbstate's MBSTATE_CMD_GET_FLOW. ---- */

static u8 mblb_flow_state(const struct mblb_flow *f)
{
	unsigned long fl = READ_ONCE(f->flags);

	if ((fl & BIT(MBLB_F_RST)) ||
	    ((fl & BIT(MBLB_F_FIN_C)) && (fl & BIT(MBLB_F_FIN_B))))
		return MBSTATE_FLOW_CLOSED;
	if (fl & (BIT(MBLB_F_FIN_C) | BIT(MBLB_F_FIN_B)))
		return MBSTATE_FLOW_CLOSING;
	if (fl & BIT(MBLB_F_REPLIED))
		return MBSTATE_FLOW_ESTABLISHED;
	return MBSTATE_FLOW_NEW;
}

/* Process context; looks at MBLB_GC_CHUNK slots per lock hold. */
static bool mblb_flow_next(const struct net *net, const u8 *mac,
			   unsigned long *pos, struct mb_lb_flow_info *out)
{
	unsigned long i = *pos, end;
	bool found = false;

	while (i < max_flows && !found) {
		end = min_t(unsigned long, i + MBLB_GC_CHUNK, max_flows);
		spin_lock_bh(&mblb_lock);
		for (; i < end && !found; i++) {
			const struct mblb_flow *f = &mblb_flows[i];

			if (!test_bit(MBLB_F_LIVE, &f->flags) ||
			    test_bit(MBLB_F_DEAD, &f->flags) ||
			    f->net != net ||
			    (mac && !ether_addr_equal(mac, f->mb_mac)))
				continue;
			ether_addr_copy(out->mb_mac, f->mb_mac);
			ether_addr_copy(out->be_mac, f->be_mac);
			out->client_ip = f->key.saddr;
			out->vip = f->key.daddr;
			out->be_ip = f->be_ip;
			out->client_port = f->key.sport;
			out->vip_port = f->key.dport;
			out->proto = f->key.proto;
			out->state = mblb_flow_state(f);
			out->idle_ms = jiffies_to_msecs(jiffies -
							READ_ONCE(f->last));
			found = true;
		}
		spin_unlock_bh(&mblb_lock);
		cond_resched();
	}
	*pos = i;
	return found;
}

/* ---- Registration. ---- */

static const struct mbhook_offload mblb_offload = {
	.service_bit = MBSTATE_SVC_L_BIT,
	.name = "load-balancer",
	.rx = mblb_rx,
};

/*
 * Registered by mblb_net_use(): a frame of a namespace without backends
 * never enters mblb. mbhook's hook calls mblb_rx() for new flows.
 */
static const struct nf_hook_ops mblb_hook_ops[] = {
	{
		.hook = mblb_pre,
		.pf = NFPROTO_BRIDGE,
		.hooknum = NF_BR_PRE_ROUTING,
		/* after mbhook (NF_BR_PRI_FIRST), before br_netfilter */
		.priority = NF_BR_PRI_FIRST + 1,
	}, {
		.hook = mblb_post,
		.pf = NFPROTO_BRIDGE,
		.hooknum = NF_BR_POST_ROUTING,
		.priority = NF_BR_PRI_FIRST,
	},
};

/* ---- Hooks, only in namespaces with a load balancer. ---- */

/* mbstate: @net gets its first backend. */
static int mblb_net_use(struct net *net)
{
	struct mblb_net *ln = mblb_pernet(net);
	int ret = 0;

	mutex_lock(&mblb_hook_mutex);
	if (!ln->hooked) {
		ret = nf_register_net_hooks(net, mblb_hook_ops,
					    ARRAY_SIZE(mblb_hook_ops));
		ln->hooked = !ret;
	}
	mutex_unlock(&mblb_hook_mutex);
	return ret;
}

/* mbstate: @net's last backend is gone, and with it the last flow. */
static void mblb_net_unuse(struct net *net)
{
	struct mblb_net *ln = mblb_pernet(net);

	mutex_lock(&mblb_hook_mutex);
	if (ln->hooked) {
		nf_unregister_net_hooks(net, mblb_hook_ops,
					ARRAY_SIZE(mblb_hook_ops));
		ln->hooked = false;
	}
	mutex_unlock(&mblb_hook_mutex);
}

static const struct mbstate_lb_ops mblb_ops = {
	.flow_next = mblb_flow_next,
	.net_use = mblb_net_use,
	.net_unuse = mblb_net_unuse,
};

static int __net_init mblb_net_init(struct net *net)
{
	struct mblb_net *ln = mblb_pernet(net);

	atomic_set(&ln->flows, 0);
	ln->dying = false;
	ln->hooked = false;
	return 0;
}

/* No flow may be created in @net from now on (mblb_flow_create). */
static void __net_exit mblb_net_pre_exit(struct net *net)
{
	spin_lock_bh(&mblb_lock);
	mblb_pernet(net)->dying = true;
	spin_unlock_bh(&mblb_lock);
}

/*
 * The namespace goes, or mblb does: our hooks go, then the namespace's
 * flows. Their backends' release calls mblb_net_unuse() once more (unless
 * mblb is going and mbstate has no ops): it finds nothing to unhook.
 * mblb_scan() waits for a collector run that is still releasing flows of
 * @net it unlinked (they are no longer live, so the scan itself would miss
 * them): when this returns, no flow of @net holds a backend.
 */
static void __net_exit mblb_net_exit(struct net *net)
{
	mblb_net_unuse(net);
	mblb_scan(net, false);
}

static struct pernet_operations mblb_net_ops = {
	.init = mblb_net_init,
	.pre_exit = mblb_net_pre_exit,
	.exit = mblb_net_exit,
	.id = &mblb_net_id,
	.size = sizeof(struct mblb_net),
};

static int __init mblb_init(void)
{
	unsigned int i, buckets;
	int ret;

	if (max_flows < 16 || max_flows > (1U << 24)) {
		pr_err("max_flows must be 16 to 16777216, not %u\n", max_flows);
		return -EINVAL;
	}
	buckets = roundup_pow_of_two(max_flows);
	mblb_hmask = buckets - 1;
	mblb_flows = kvcalloc(max_flows, sizeof(*mblb_flows), GFP_KERNEL);
	mblb_fwd = kvcalloc(buckets, sizeof(*mblb_fwd), GFP_KERNEL);
	mblb_rev = kvcalloc(buckets, sizeof(*mblb_rev), GFP_KERNEL);
	if (!mblb_flows || !mblb_fwd || !mblb_rev) {
		ret = -ENOMEM;
		goto err_alloc;
	}
	for (i = 0; i + 1 < max_flows; i++)
		mblb_flows[i].next = &mblb_flows[i + 1];
	mblb_free = &mblb_flows[0];
	mblb_seed = get_random_u32();
	mblb_flow_seed = get_random_u32();
	INIT_DELAYED_WORK(&mblb_gc_work, mblb_gc);

	ret = register_pernet_subsys(&mblb_net_ops);
	if (ret)
		goto err_alloc;
	mbstate_lb_ops_set(&mblb_ops);
	ret = mbhook_register_offload(&mblb_offload);
	if (ret)
		goto err_offload;
	queue_delayed_work(system_power_efficient_wq, &mblb_gc_work, HZ);
	pr_info("flow table of %u flows\n", max_flows);
	return 0;

err_offload:
	mbstate_lb_ops_set(NULL);
	unregister_pernet_subsys(&mblb_net_ops);
err_alloc:
	kvfree(mblb_rev);
	kvfree(mblb_fwd);
	kvfree(mblb_flows);
	return ret;
}

static void __exit mblb_exit(void)
{
	/* no new flows: mbhook stops calling mblb_rx, configurations go */
	mbhook_unregister_offload(&mblb_offload);
	mbstate_lb_ops_set(NULL);
	cancel_delayed_work_sync(&mblb_gc_work);
	/* our hooks go, then every namespace's flows */
	unregister_pernet_subsys(&mblb_net_ops);
	mblb_scan(NULL, false);
	kvfree(mblb_rev);
	kvfree(mblb_fwd);
	kvfree(mblb_flows);
}

module_init(mblb_init);
module_exit(mblb_exit);
MODULE_LICENSE("GPL");
MODULE_AUTHOR("mbvisor developers");
MODULE_DESCRIPTION("mbvisor: load-balancer offload at the bridge");
