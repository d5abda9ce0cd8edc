// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * mbhostd - serves the shared-memory command channel of middlebox VMs.
 *
 * For each VM it maps the host side of the VM's ivshmem memory
 * (/dev/shm/NAME), reads the commands the VM writes there
 * (docs/protocol.md), checks that each one names a MAC address the VM owns,
 * runs it against the mbstate registry through common/mbnl.c (as mbadm
 * does), and writes the answer back. It publishes the counters of the VM's
 * middleboxes, rate-limits a flooding VM, and keeps in a state file what
 * each VM asked for, so that a restart of mbhostd loses no command and
 * applies none twice, and a reload of the kernel modules is followed by a
 * restore. See mbhostd(8) and docs/protocol.md.
 *
 * One thread runs everything (epoll); a second one only follows the
 * registry's change notifications (mbnl_monitor blocks) and reports through
 * a pipe.
 */

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <pwd.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <linux/mbstate.h>
#include <mbvisor/cmd.h>
#include <mbvisor/mbnl.h>
#include <mbvisor/shmproto.h>
#include "domain.h"
#include "ivserver.h"

#ifndef MBVISOR_VERSION
#define MBVISOR_VERSION "0.1.0"
#endif

#define STATE_MAGIC		"mbhostd-state 1"
#define STATE_MAX_SIZE		(64 << 20)
#define DEFAULT_STATE_DIR	"/run/mbvisor"
#define DEFAULT_SIZE		(1 << 20)
#define BATCH			16	/* commands per VM per pass */
#define VM_NAME_MAX		64
#define RATELIMIT_PAUSE_MS	100
#define LOG_WINDOW_MS		10000
#define LOG_WINDOW_LINES	20
#define MAX_VMS			256
#define DEFAULT_QEMU_USER	"libvirt-qemu"	/* Debian's, if it exists */
#define RECONCILE_MAX_MS	5000	/* restore retries back off to it */

enum { EXIT_USAGE = 2 };

/* --- Logging ------------------------------------------------------------ */

static bool log_journal;	/* stderr goes to journald: "<N>" prefixes */
static bool log_debug;

static void vlogmsg(int prio, const char *fmt, va_list ap)
{
	static const char *const names[] = {
		"emerg", "alert", "crit", "error", "warning", "notice",
		"info", "debug",
	};
	char buf[2048];

	if (prio == 7 && !log_debug)
		return;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	if (log_journal)
		fprintf(stderr, "<%d>%s\n", prio, buf);
	else
		fprintf(stderr, "mbhostd: %s: %s\n", names[prio & 7], buf);
}

static void logmsg(int prio, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void logmsg(int prio, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlogmsg(prio, fmt, ap);
	va_end(ap);
}

#define LOG_ERR		3
#define LOG_WARNING	4
#define LOG_NOTICE	5
#define LOG_INFO	6
#define LOG_DEBUG	7

/* systemd sets JOURNAL_STREAM to the device:inode of the stream it gave us
 * (sd-daemon(3), systemd.exec(5)); only then are "<N>" prefixes read. */
static void log_init(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 &&
	    !fstat(STDERR_FILENO, &st) && st.st_dev == dev &&
	    st.st_ino == ino)
		log_journal = true;
	setvbuf(stderr, NULL, _IOLBF, 0);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* --- Configuration and per-VM state ------------------------------------- */

/*
 * A load balancer as the VM configured it (R L, A/D <MAC> L): type, source
 * and the configured backends in the registry's order (R L's first, then
 * each A <MAC> L that added one). Draining backends are not kept: a
 * restore follows a reload, which ended their flows. With no backend left
 * (D <MAC> L removed the last one), @gone is the last one removed: the
 * registry takes no R L without a backend, so the state file and a restore
 * register with it at weight 0 (standby: no new flow) and remove it again.
 */
struct ms_lb {
	__u8 type;
	__be32 src_ip;
	__be32 gone;
	size_t n;
	struct mb_lb_backend be[MBSTATE_LB_MAX_BACKENDS];
};

/* What a restore still has to do after the services are back. Saved in
 * the state file ("fixup <MAC> <bits>"): a restore half done when mbhostd
 * or the VM restarts is finished then, not forgotten. */
#define FIX_RULES	(1U << 0)	/* the rules, after R F */
#define FIX_LB_GONE	(1U << 1)	/* D <MAC> L gone, after R L */
#define FIX_SWITCH	(1U << 2)	/* the enabled switch */
#define FIX_ALL		(FIX_RULES | FIX_LB_GONE | FIX_SWITCH)

/* What a VM asked for, per MAC it owns: what a restore puts back. */
struct mac_state {
	__u8 mac[MB_ETH_ALEN];
	__u32 services;		/* 0: not registered */
	__be32 ip;
	__u16 vlan;		/* the VLAN it is registered with, 0: none */
	struct ms_lb lb;
	bool enabled;
	struct mb_rule *rules;
	size_t nrules, cap;
	unsigned int fixup;	/* FIX_*: a restore half done */
};

struct rsp_rec {
	__u32 seq;
	int status;
	int error;
	size_t len;
	char msg[MBSHM_RSP_MSG_MAX + 1];
};

struct src;

struct vm {
	char name[VM_NAME_MAX + 1];
	char shm_path[PATH_MAX];
	char sock_path[108];		/* doorbell: our ivshmem server */
	unsigned int vectors;
	size_t create_size;		/* create the shm file with this size */
	/* --domain / --domain-xml, resolved after option parsing */
	const char *domain, *domain_xml, *shm_name;

	struct mac_state *macs;
	size_t nmacs;
	__u16 vlan;			/* --vlan: its registrations' VLAN */
	/* What the host allows the VM to name (audit A2): backends, none by
	 * default; its middleboxes' addresses, any if the list is empty. */
	struct allow_list backends;	/* --allow-backend, metadata */
	struct allow_list addrs;	/* --allow-ip, metadata */

	int shm_fd;
	int lock_fd;
	dev_t shm_dev, failed_dev;
	ino_t shm_ino, failed_ino;
	bool waiting;			/* for the VM to create its memory */
	void *base;
	struct mbshm_layout l;
	char state_path[PATH_MAX];

	/* The channel, as this host knows it (never read back from shm). */
	__u64 epoch, heartbeat;
	__u32 next;			/* next command to read */
	__u32 host_status;
	uint16_t family;		/* mbstate family id of the last commit */
	bool pending;			/* a command was sent to the kernel */
	__u32 pending_seq;
	char pending_text[MB_CMD_MAX_LEN + 1];
	struct rsp_rec *unpub;		/* answered, not yet in the ring */
	size_t nunpub;

	/* doorbell */
	bool has_server;
	struct ivserver srv;
	bool rung;
	struct src *hostev_src[IVSERVER_MAX_VECTORS];
	/* doorbell budget: wakeups this second, then deaf until the tick */
	unsigned int db_wakeups;
	bool db_muted;
	unsigned long db_mutes, db_ignored;

	struct mbshm_stats_entry *stats;	/* publish_stats()'s buffer */

	/* polling, rate limit */
	unsigned int poll_ms;
	uint64_t next_poll, resume_at;
	double tokens;
	uint64_t refill_at;
	unsigned long limited, limited_logged;

	/* log rate limit */
	uint64_t log_window;
	unsigned int log_lines, log_suppressed;

	bool loaded;			/* macs hold the VM's state (start_vm) */
	bool reconcile;			/* compare the registry with macs */
	uint64_t reconcile_at;		/* not before (retries) */
	unsigned int reconcile_fails;	/* in a row: the retry backs off */
};

static struct {
	const char *state_dir;
	const char *libvirt_uri;
	double rate, burst;
	unsigned int poll_min, poll_max;
	bool check_only;
	mode_t socket_mode;		/* doorbell sockets */
	gid_t socket_gid;		/* (gid_t)-1: our own group */
	const char *socket_group;
	/* QEMU's user: may own the shm files, may connect to the sockets */
	char *qemu_user;		/* NULL: root only */
	uid_t qemu_uid;
	unsigned int doorbell_rate;	/* wakeups per VM per second */
} opt = {
	.state_dir = DEFAULT_STATE_DIR,
	.socket_mode = 0660,
	.socket_gid = (gid_t)-1,
	.rate = 50,
	.burst = 100,
	.poll_min = 1,
	.poll_max = 100,
	.doorbell_rate = 200,
};

static struct vm *vms[MAX_VMS];
static size_t nvms;
static struct mbnl *nl;			/* main thread's handle, or NULL */

static void vm_log(struct vm *vm, int prio, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Messages a guest can cause go through here: at most LOG_WINDOW_LINES per
 * LOG_WINDOW_MS per VM, then a count of what was left out. */
static void vm_log(struct vm *vm, int prio, const char *fmt, ...)
{
	uint64_t now = now_ms();
	char buf[1024];
	va_list ap;

	if (now - vm->log_window >= LOG_WINDOW_MS) {
		if (vm->log_suppressed)
			logmsg(LOG_WARNING, "vm %s: %u messages suppressed",
			       vm->name, vm->log_suppressed);
		vm->log_window = now;
		vm->log_lines = 0;
		vm->log_suppressed = 0;
	}
	if (++vm->log_lines > LOG_WINDOW_LINES) {
		vm->log_suppressed++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	logmsg(prio, "vm %s: %s", vm->name, buf);
}

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n, size);

	if (!p) {
		logmsg(LOG_ERR, "out of memory");
		exit(1);
	}
	return p;
}

static const char *mac_str(const __u8 *mac, char buf[18])
{
	mb_format_mac(mac, buf);
	return buf;
}

static struct mac_state *vm_mac(struct vm *vm, const __u8 *mac)
{
	size_t i;

	for (i = 0; i < vm->nmacs; i++)
		if (!memcmp(vm->macs[i].mac, mac, MB_ETH_ALEN))
			return &vm->macs[i];
	return NULL;
}

static void vm_add_mac(struct vm *vm, const __u8 *mac)
{
	struct mac_state *m;

	if (vm_mac(vm, mac))
		return;
	m = realloc(vm->macs, (vm->nmacs + 1) * sizeof(*m));
	if (!m) {
		logmsg(LOG_ERR, "out of memory");
		exit(1);
	}
	vm->macs = m;
	m = &vm->macs[vm->nmacs++];
	memset(m, 0, sizeof(*m));
	memcpy(m->mac, mac, MB_ETH_ALEN);
	m->enabled = true;
}

static void ms_clear(struct mac_state *m)
{
	free(m->rules);
	m->rules = NULL;
	m->nrules = m->cap = 0;
	m->services = 0;
	m->ip = 0;
	memset(&m->lb, 0, sizeof(m->lb));
	m->enabled = true;
	m->fixup = 0;
}

static struct mb_lb_backend *ms_lb_find(struct ms_lb *lb, __be32 ip)
{
	size_t i;

	for (i = 0; i < lb->n; i++)
		if (lb->be[i].ip == ip)
			return &lb->be[i];
	return NULL;
}

/* A <MAC> L, as the registry does it: change the backend, or append it. */
static void ms_lb_add(struct ms_lb *lb, const struct mb_lb_backend *be)
{
	struct mb_lb_backend *old = ms_lb_find(lb, be->ip);

	if (old)
		*old = *be;
	else if (lb->n < MBSTATE_LB_MAX_BACKENDS)
		lb->be[lb->n++] = *be;
	lb->gone = 0;
}

/* D <MAC> L, as the registry does it: the others keep their order. */
static void ms_lb_del(struct ms_lb *lb, __be32 ip)
{
	struct mb_lb_backend *be = ms_lb_find(lb, ip);
	size_t i;

	if (!be)
		return;
	i = (size_t)(be - lb->be);
	memmove(&lb->be[i], &lb->be[i + 1], (lb->n - i - 1) * sizeof(*be));
	lb->n--;
	memset(&lb->be[lb->n], 0, sizeof(*be));
	if (!lb->n)
		lb->gone = ip;
}

/* The registry's load balancer of @mb into @lb: configured backends, with
 * their MAC where it is static (a learned one is learned again). */
static void ms_lb_from_mb(struct ms_lb *lb, const struct mbnl_mb *mb)
{
	const struct mbnl_backend *b;
	struct mb_lb_backend *be;
	__u32 i;

	memset(lb, 0, sizeof(*lb));
	if (!mb->has_lb)
		return;
	lb->type = mb->lb.type;
	lb->src_ip = mb->lb.src_ip;
	for (i = 0; i < mb->n_backends && i < MBSTATE_LB_MAX_BACKENDS; i++) {
		b = &mb->backends[i];
		if (b->state == MBSTATE_BE_DRAINING) {
			if (!lb->gone)
				lb->gone = b->ip;
			continue;
		}
		be = &lb->be[lb->n++];
		be->ip = b->ip;
		be->weight = b->weight;
		if (b->mac_source == MBSTATE_BE_MAC_STATIC) {
			be->has_mac = 1;
			memcpy(be->mac, b->mac, MB_ETH_ALEN);
		}
	}
	if (lb->n)
		lb->gone = 0;
}

/*
 * The R L command that registers @m's load balancer, into @c: with its
 * first backend, or with the last one removed at weight 0 when it has none
 * (then D <MAC> L follows). False if there is not even that.
 */
static bool ms_lb_reg(const struct mac_state *m, struct mb_cmd *c)
{
	memset(c, 0, sizeof(*c));
	c->op = MB_OP_REGISTER;
	memcpy(c->mac, m->mac, MB_ETH_ALEN);
	c->service = MBSTATE_SVC_L;
	c->ip = m->ip;
	c->vlan = m->vlan;
	c->lb.type = m->lb.type;
	c->lb.src_ip = m->lb.src_ip;
	if (m->lb.n) {
		c->backend = m->lb.be[0];
	} else {
		c->backend.ip = m->lb.gone;
		c->backend.weight = 0;
	}
	c->lb.dst_ip = c->backend.ip;
	return c->backend.ip != 0;
}

static void ms_add_rule(struct mac_state *m, const struct mb_rule *r)
{
	if (m->nrules == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 16;
		struct mb_rule *p = realloc(m->rules, cap * sizeof(*p));

		if (!p) {
			logmsg(LOG_ERR, "out of memory");
			exit(1);
		}
		m->rules = p;
		m->cap = cap;
	}
	m->rules[m->nrules] = *r;
	m->rules[m->nrules++].valued = r->fields;
}

static bool ms_has_rule(const struct mac_state *m, const struct mb_rule *r)
{
	struct mb_rule a = *r;
	size_t i;

	a.valued = a.fields;
	for (i = 0; i < m->nrules; i++)
		if (!memcmp(&m->rules[i], &a, sizeof(a)))
			return true;
	return false;
}

/* --- Netlink ------------------------------------------------------------ */

/* The main thread's handle; opened on demand, NULL when mbstate is gone. */
static struct mbnl *nl_get(char *err, size_t errlen)
{
	if (!nl)
		nl = mbnl_open(err, errlen);
	return nl;
}

static void nl_reset(void)
{
	mbnl_close(nl);
	nl = NULL;
}

static int collect_rule(const struct mbnl_rule *r, void *arg)
{
	ms_add_rule(arg, &r->rule);
	return 0;
}

/* Replaces @m's rules with the registry's. */
static int ms_load_rules(struct mac_state *m, char *err, size_t errlen)
{
	struct mac_state tmp = { 0 };
	int ret;

	ret = mbnl_dump_rules(nl, m->mac, collect_rule, &tmp, err, errlen);
	if (ret) {
		free(tmp.rules);
		return ret;
	}
	free(m->rules);
	m->rules = tmp.rules;
	m->nrules = tmp.nrules;
	m->cap = tmp.cap;
	return 0;
}

/* @m := what the registry has for its MAC (adopting a VM without state). */
static int ms_adopt(struct mac_state *m, char *err, size_t errlen)
{
	struct mbnl_mb mb;
	int ret;

	ms_clear(m);
	ret = mbnl_get_mb(nl, m->mac, &mb, err, errlen);
	if (ret == -ENOENT)
		return 0;
	if (ret)
		return ret;
	m->services = mb.services;
	m->ip = mb.ip;
	m->vlan = mb.vlan;
	m->enabled = mb.enabled;
	ms_lb_from_mb(&m->lb, &mb);
	if (mb.services & MBSTATE_SVC_F)
		return ms_load_rules(m, err, errlen);
	return 0;
}

/* What a command that the kernel accepted did to @m. */
static void ms_apply(struct mac_state *m, const struct mb_cmd *cmd)
{
	char err[MB_ERR_LEN];

	switch (cmd->op) {
	case MB_OP_REGISTER:
		if (!m->services) {
			ms_clear(m);
			m->ip = cmd->ip;
			m->vlan = cmd->vlan;
		}
		m->services |= cmd->service;
		if (cmd->service & MBSTATE_SVC_L) {
			m->fixup &= ~FIX_LB_GONE;
			memset(&m->lb, 0, sizeof(m->lb));
			m->lb.type = cmd->lb.type;
			m->lb.src_ip = cmd->lb.src_ip;
			ms_lb_add(&m->lb, &cmd->backend);
		}
		break;
	case MB_OP_ADD_BACKEND:
		ms_lb_add(&m->lb, &cmd->backend);
		m->fixup &= ~FIX_LB_GONE;	/* it has a backend again */
		break;
	case MB_OP_DEL_BACKEND:
		ms_lb_del(&m->lb, cmd->backend.ip);
		break;
	case MB_OP_UNREGISTER:
		ms_clear(m);
		break;
	case MB_OP_ENABLE:
	case MB_OP_DISABLE:
		m->enabled = cmd->op == MB_OP_ENABLE;
		break;
	case MB_OP_ADD_RULE:
		ms_add_rule(m, &cmd->rule);
		break;
	case MB_OP_DEL_RULE:
		/* Which rules a selector took is the kernel's business. */
		if (ms_load_rules(m, err, sizeof(err)))
			logmsg(LOG_WARNING,
			       "cannot re-read the rules after a delete: %s",
			       err);
		break;
	default:
		break;
	}
}

/* The commands that rebuild @m, one a line, into @f. */
static void ms_write_cmds(FILE *f, const char *prefix,
			  const struct mac_state *m)
{
	char buf[MB_CMD_MAX_LEN + 1];
	struct mb_cmd c;
	size_t i;

	if (m->services & MBSTATE_SVC_F) {
		memset(&c, 0, sizeof(c));
		c.op = MB_OP_REGISTER;
		memcpy(c.mac, m->mac, MB_ETH_ALEN);
		c.service = MBSTATE_SVC_F;
		c.ip = m->ip;
		c.vlan = m->vlan;
		if (mb_cmd_format(&c, buf, sizeof(buf)) > 0)
			fprintf(f, "%s%s\n", prefix, buf);
	}
	/* R L with the first backend, A <MAC> L for each other one; or,
	 * without any, R L with the last one removed and its D <MAC> L. */
	if ((m->services & MBSTATE_SVC_L) && ms_lb_reg(m, &c) &&
	    mb_cmd_format(&c, buf, sizeof(buf)) > 0) {
		fprintf(f, "%s%s\n", prefix, buf);
		for (i = 1; i < m->lb.n; i++) {
			memset(&c, 0, sizeof(c));
			c.op = MB_OP_ADD_BACKEND;
			memcpy(c.mac, m->mac, MB_ETH_ALEN);
			c.backend = m->lb.be[i];
			if (mb_cmd_format(&c, buf, sizeof(buf)) > 0)
				fprintf(f, "%s%s\n", prefix, buf);
		}
		if (!m->lb.n) {
			memset(&c, 0, sizeof(c));
			c.op = MB_OP_DEL_BACKEND;
			memcpy(c.mac, m->mac, MB_ETH_ALEN);
			c.backend.ip = m->lb.gone;
			if (mb_cmd_format(&c, buf, sizeof(buf)) > 0)
				fprintf(f, "%s%s\n", prefix, buf);
		}
	}
	if (!m->services)
		return;
	if (!m->enabled) {
		memset(&c, 0, sizeof(c));
		c.op = MB_OP_DISABLE;
		memcpy(c.mac, m->mac, MB_ETH_ALEN);
		if (mb_cmd_format(&c, buf, sizeof(buf)) > 0)
			fprintf(f, "%s%s\n", prefix, buf);
	}
	for (i = 0; i < m->nrules; i++) {
		memset(&c, 0, sizeof(c));
		c.op = MB_OP_ADD_RULE;
		memcpy(c.mac, m->mac, MB_ETH_ALEN);
		c.rule = m->rules[i];
		if (mb_cmd_format(&c, buf, sizeof(buf)) > 0)
			fprintf(f, "%s%s\n", prefix, buf);
	}
}

/* R L and its backends in one step (MBSTATE_A_REPLACE: it adds the
 * service to a middlebox registered for F). */
static int ms_restore_lb(struct mac_state *m, char *err, size_t errlen)
{
	struct mb_cmd c;

	if (!ms_lb_reg(m, &c)) {
		/* Only an adopted registration can be like this. */
		snprintf(err, errlen,
			 "its load balancer has no backend to register with");
		return -EINVAL;
	}
	return mbnl_lb_replace(nl, &c, m->lb.n ? m->lb.be + 1 : NULL,
			       m->lb.n ? m->lb.n - 1 : 0, err, errlen);
}

/* The rules after R F: the registry has none. One request, all or none,
 * when they fit into one; else cleared and sent in several. */
static int ms_restore_rules(struct mac_state *m, char *err, size_t errlen)
{
	int ret;

	if (mbnl_rules_per_request(m->rules, m->nrules) == m->nrules)
		return mbnl_add_rules(nl, m->mac, m->rules, m->nrules, true,
				      err, errlen);
	ret = mbnl_add_rules(nl, m->mac, m->rules, 0, true, err, errlen);
	if (ret)
		return ret;
	return mbnl_add_rules(nl, m->mac, m->rules, m->nrules, false, err,
			      errlen);
}

static int state_save(struct vm *vm);

/*
 * Puts back what the registry lost of @m: a service it no longer has (the
 * registry was reloaded, an offload module was unloaded), with the rules,
 * the load balancer's backends and the enabled switch. Differences that
 * are not losses are left alone. Each service is restored on its own: one
 * that cannot be (its module is not loaded) does not hold the other back.
 * What is left to do is in m->fixup and the next call finishes it; it is
 * saved (state_save()) before the services are registered again, so that
 * a restart in between finishes it too.
 */
static int ms_restore(struct vm *vm, struct mac_state *m)
{
	char err[MB_ERR_LEN + 8] = "", why[MB_ERR_LEN], mac[18];
	unsigned int fixup;
	__u32 have, lost;
	struct mbnl_mb mb;
	struct mb_cmd c;
	int ret, first = 0;

	if (!m->services)
		return 0;
	ret = mbnl_get_mb(nl, m->mac, &mb, err, sizeof(err));
	if (ret && ret != -ENOENT)
		goto fail;
	have = ret ? 0 : mb.services;
	lost = m->services & ~have;
	if (!lost && !m->fixup)
		return 0;

	/* What follows a registration, known and saved before it. */
	fixup = m->fixup;
	if (lost & MBSTATE_SVC_F)
		fixup |= FIX_SWITCH | (m->nrules ? FIX_RULES : 0);
	if (lost & MBSTATE_SVC_L)
		fixup |= FIX_SWITCH | (m->lb.n ? 0 : FIX_LB_GONE);
	if (fixup != m->fixup) {
		m->fixup = fixup;
		if (state_save(vm))
			vm_log(vm, LOG_ERR,
			       "cannot write %s: %s (a restart before the restore is done leaves it undone)",
			       vm->state_path, strerror(errno));
	}

	if (lost & MBSTATE_SVC_F) {
		memset(&c, 0, sizeof(c));
		c.op = MB_OP_REGISTER;
		memcpy(c.mac, m->mac, MB_ETH_ALEN);
		c.service = MBSTATE_SVC_F;
		c.ip = m->ip;
		c.vlan = m->vlan;
		ret = mbnl_exec(nl, &c, why, sizeof(why));
		if (!ret) {
			have |= MBSTATE_SVC_F;
		} else if (!first) {
			first = ret;
			snprintf(err, sizeof(err), "R F: %s", why);
		}
	}
	if (lost & MBSTATE_SVC_L) {
		ret = ms_restore_lb(m, why, sizeof(why));
		if (!ret) {
			have |= MBSTATE_SVC_L;
		} else if (!first) {
			first = ret;
			snprintf(err, sizeof(err), "R L: %s", why);
		}
	}
	if ((m->fixup & FIX_RULES) && (have & MBSTATE_SVC_F)) {
		ret = ms_restore_rules(m, why, sizeof(why));
		if (!ret) {
			m->fixup &= ~FIX_RULES;
		} else if (!first) {
			first = ret;
			snprintf(err, sizeof(err), "rules: %s", why);
		}
	}
	/* Only while the load balancer still has no backend: after an
	 * A <MAC> L, D <MAC> L of the gone one would be refused forever. */
	if ((m->fixup & FIX_LB_GONE) &&
	    (!(m->services & MBSTATE_SVC_L) || m->lb.n || !m->lb.gone))
		m->fixup &= ~FIX_LB_GONE;
	if ((m->fixup & FIX_LB_GONE) && (have & MBSTATE_SVC_L)) {
		memset(&c, 0, sizeof(c));
		c.op = MB_OP_DEL_BACKEND;
		memcpy(c.mac, m->mac, MB_ETH_ALEN);
		c.backend.ip = m->lb.gone;
		ret = mbnl_exec(nl, &c, why, sizeof(why));
		if (!ret || ret == -ENOENT) {
			m->fixup &= ~FIX_LB_GONE;
		} else if (!first) {
			first = ret;
			snprintf(err, sizeof(err), "D L: %s", why);
		}
	}
	if ((m->fixup & FIX_SWITCH) && have) {
		memset(&c, 0, sizeof(c));
		c.op = m->enabled ? MB_OP_ENABLE : MB_OP_DISABLE;
		memcpy(c.mac, m->mac, MB_ETH_ALEN);
		ret = mbnl_exec(nl, &c, why, sizeof(why));
		if (!ret) {
			m->fixup &= ~FIX_SWITCH;
		} else if (!first) {
			first = ret;
			snprintf(err, sizeof(err), "%c: %s",
				 m->enabled ? 'A' : 'D', why);
		}
	}
	if (first) {
		ret = first;
		goto fail;
	}
	vm_log(vm, LOG_NOTICE,
	       "restored %s: services %#x, %zu rules, %zu backends, %s",
	       mac_str(m->mac, mac), m->services, m->nrules, m->lb.n,
	       m->enabled ? "enabled" : "disabled");
	return 0;
fail:
	vm_log(vm, LOG_WARNING, "cannot restore %s yet: %s",
	       mac_str(m->mac, mac), err);
	return ret;
}

/* --- State file --------------------------------------------------------- */

static void put_escaped(FILE *f, const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c >= 0x7f || c == '\\')
			fprintf(f, "\\x%02x", c);
		else
			fputc(c, f);
	}
}

static size_t unescape(char *s)
{
	char *in = s, *out = s;
	unsigned int v;

	while (*in) {
		if (in[0] == '\\' && in[1] == 'x' && sscanf(in + 2, "%2x", &v) == 1) {
			*out++ = (char)v;
			in += 4;
		} else {
			*out++ = *in++;
		}
	}
	*out = '\0';
	return (size_t)(out - s);
}

/*
 * Writes the VM's state file: a new file, fsync, rename over the old one,
 * fsync of the directory. A crash at any point leaves the old file or the
 * new one, whole.
 */
static int state_save(struct vm *vm)
{
	char tmp[PATH_MAX + 8], *buf = NULL, *dir, *slash;
	size_t size = 0, i, off;
	FILE *f;
	int fd, dfd, ret = -1;

	f = open_memstream(&buf, &size);
	if (!f)
		return -1;
	fprintf(f, "%s\nvm %s\nepoch %016" PRIx64 "\nfamily %u\nnext %u\n",
		STATE_MAGIC, vm->name, (uint64_t)vm->epoch, vm->family,
		vm->next);
	if (vm->pending)
		fprintf(f, "pending %u %s\n", vm->pending_seq,
			vm->pending_text);
	for (i = 0; i < vm->nunpub; i++) {
		const struct rsp_rec *r = &vm->unpub[i];

		fprintf(f, "rsp %u %d %d ", r->seq, r->status, r->error);
		put_escaped(f, r->msg, r->len);
		fputc('\n', f);
	}
	for (i = 0; i < vm->nmacs; i++)
		ms_write_cmds(f, "cmd ", &vm->macs[i]);
	/* After the commands: replaying them clears the flags. */
	for (i = 0; i < vm->nmacs; i++) {
		const struct mac_state *m = &vm->macs[i];
		char mac[18];

		if (m->services && m->fixup)
			fprintf(f, "fixup %s %x\n", mac_str(m->mac, mac),
				m->fixup);
	}
	fprintf(f, "end\n");
	if (fclose(f))
		goto out;

	snprintf(tmp, sizeof(tmp), "%s.tmp", vm->state_path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		goto out;
	for (off = 0; off < size;) {
		ssize_t n = write(fd, buf + off, size - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			close(fd);
			unlink(tmp);
			goto out;
		}
		off += (size_t)n;
	}
	if (fsync(fd) || close(fd) || rename(tmp, vm->state_path)) {
		unlink(tmp);
		goto out;
	}
	dir = strdup(vm->state_path);
	if (dir) {
		slash = strrchr(dir, '/');
		if (slash)
			*slash = '\0';
		dfd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY |
			   O_CLOEXEC);
		if (dfd >= 0) {
			fsync(dfd);
			close(dfd);
		}
		free(dir);
	}
	ret = 0;
out:
	free(buf);
	return ret;
}

static void add_unpub(struct vm *vm, __u32 seq, int status, int error,
		      const char *msg)
{
	struct rsp_rec *r = &vm->unpub[vm->nunpub++];

	r->seq = seq;
	r->status = status;
	r->error = error;
	r->len = strlen(msg);
	if (r->len > MBSHM_RSP_MSG_MAX)
		r->len = MBSHM_RSP_MSG_MAX;
	memcpy(r->msg, msg, r->len);
	r->msg[r->len] = '\0';
}

/*
 * What a state file (or the registry, adopted) says against what the host
 * allows now (the allowed addresses may have changed since): a restore
 * never names what a command could not. A registration with an address
 * not allowed is forgotten; backends not allowed are dropped, pinned MACs
 * applied.
 */
static void ms_allowed_now(struct vm *vm, struct mac_state *m)
{
	char mac[18], ip[16];
	const struct allow *a;
	size_t i;

	if (!m->services)
		return;
	mac_str(m->mac, mac);
	if (vm->addrs.n && !allow_match(&vm->addrs, m->ip)) {
		mb_format_ipv4(m->ip, ip);
		logmsg(LOG_WARNING,
		       "vm %s: %s is registered with %s, which the host does not allow: not kept, not restored",
		       vm->name, mac, ip);
		ms_clear(m);
		return;
	}
	if (!(m->services & MBSTATE_SVC_L))
		return;
	for (i = 0; i < m->lb.n;) {
		struct mb_lb_backend *be = &m->lb.be[i];

		a = allow_match(&vm->backends, be->ip);
		if (!a || (a->has_mac && be->has_mac &&
			   memcmp(a->mac, be->mac, MB_ETH_ALEN))) {
			mb_format_ipv4(be->ip, ip);
			logmsg(LOG_WARNING,
			       "vm %s: %s has backend %s, which the host does not allow: dropped, not restored",
			       vm->name, mac, ip);
			ms_lb_del(&m->lb, be->ip);
			continue;
		}
		if (a->has_mac) {
			be->has_mac = 1;
			memcpy(be->mac, a->mac, MB_ETH_ALEN);
		}
		i++;
	}
	if (!m->lb.n && m->lb.gone && !allow_match(&vm->backends, m->lb.gone))
		m->lb.gone = 0;
	if (!m->lb.n && !m->lb.gone) {
		logmsg(LOG_WARNING,
		       "vm %s: %s has no backend the host allows: its load balancer is not kept, not restored",
		       vm->name, mac);
		m->services &= ~MBSTATE_SVC_L;
		memset(&m->lb, 0, sizeof(m->lb));
		if (!m->services)
			ms_clear(m);
	}
}

/*
 * Loads the state file: 1 loaded, 0 none, -1 unusable (moved aside). Lines
 * the parser refuses make the whole file unusable: a state file is ours,
 * and a damaged one is not guessed at.
 */
static int state_load(struct vm *vm)
{
	char *buf, *line, *save = NULL, aside[PATH_MAX + 16];
	bool magic = false, end = false, bad = false;
	unsigned long long ull;
	struct stat st;
	size_t n = 0;
	ssize_t r;
	int fd;

	fd = open(vm->state_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		logmsg(LOG_ERR, "vm %s: %s: %s", vm->name, vm->state_path,
		       strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) || st.st_size > STATE_MAX_SIZE) {
		close(fd);
		bad = true;
		goto unusable;
	}
	buf = xcalloc(1, (size_t)st.st_size + 1);
	while (n < (size_t)st.st_size) {
		r = read(fd, buf + n, (size_t)st.st_size - n);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	buf[n] = '\0';

	for (line = strtok_r(buf, "\n", &save); line && !bad && !end;
	     line = strtok_r(NULL, "\n", &save)) {
		char *arg = strchr(line, ' ');
		char err[MB_ERR_LEN];
		struct mac_state *m;
		struct mb_cmd cmd;

		if (arg)
			*arg++ = '\0';
		if (!magic) {
			magic = arg && !strcmp(line, "mbhostd-state") &&
				!strcmp(arg, "1");
			bad = !magic;
		} else if (!strcmp(line, "vm") && arg) {
			bad = strcmp(arg, vm->name) != 0;
		} else if (!strcmp(line, "epoch") && arg) {
			bad = sscanf(arg, "%llx", &ull) != 1;
			vm->epoch = ull;
		} else if (!strcmp(line, "family") && arg) {
			bad = sscanf(arg, "%llu", &ull) != 1 || ull > 0xffff;
			vm->family = (uint16_t)ull;
		} else if (!strcmp(line, "next") && arg) {
			bad = sscanf(arg, "%llu", &ull) != 1 || ull > UINT32_MAX;
			vm->next = (__u32)ull;
		} else if (!strcmp(line, "pending") && arg) {
			char *text = strchr(arg, ' ');

			bad = !text || sscanf(arg, "%llu", &ull) != 1 ||
			      strlen(text + 1) > MB_CMD_MAX_LEN;
			if (!bad) {
				vm->pending = true;
				vm->pending_seq = (__u32)ull;
				strcpy(vm->pending_text, text + 1);
			}
		} else if (!strcmp(line, "rsp") && arg) {
			int status, error, pos = 0;
			char *msg;

			bad = sscanf(arg, "%llu %d %d %n", &ull, &status,
				     &error, &pos) != 3 || !pos ||
			      vm->nunpub >= BATCH + 2;
			if (!bad) {
				msg = arg + pos;
				unescape(msg);
				add_unpub(vm, (__u32)ull, status, error, msg);
			}
		} else if (!strcmp(line, "cmd") && arg) {
			bad = mb_cmd_parse(arg, strlen(arg), &cmd, err,
					   sizeof(err)) != 0;
			if (bad) {
				logmsg(LOG_ERR, "vm %s: state file: %s: `%s'",
				       vm->name, err, arg);
				break;
			}
			m = vm_mac(vm, cmd.mac);
			if (!m) {
				logmsg(LOG_WARNING,
				       "vm %s: state file names %s, which this VM no longer owns: forgotten",
				       vm->name, arg);
				continue;
			}
			ms_apply(m, &cmd);
		} else if (!strcmp(line, "fixup") && arg) {
			char *bits = strchr(arg, ' ');
			__u8 mac[MB_ETH_ALEN];

			if (bits)
				*bits++ = '\0';
			bad = !bits || mb_parse_mac(arg, mac) ||
			      sscanf(bits, "%llx", &ull) != 1 ||
			      (ull & ~(unsigned long long)FIX_ALL);
			m = bad ? NULL : vm_mac(vm, mac);
			if (m)
				m->fixup = m->services ? (unsigned int)ull : 0;
		} else if (!strcmp(line, "end")) {
			end = true;
		} else {
			bad = true;
		}
	}
	free(buf);
	if (!bad && end) {
		for (n = 0; n < vm->nmacs; n++)
			ms_allowed_now(vm, &vm->macs[n]);
		/* The host's --vlan is what a restore registers with now. */
		for (n = 0; n < vm->nmacs; n++) {
			struct mac_state *ms = &vm->macs[n];
			char mac[18];

			if (!ms->services || ms->vlan == vm->vlan)
				continue;
			logmsg(LOG_WARNING,
			       "vm %s: state file registered %s with VLAN %u, --vlan is %u now: restoring with %u",
			       vm->name, mac_str(ms->mac, mac), ms->vlan,
			       vm->vlan, vm->vlan);
			ms->vlan = vm->vlan;
		}
		return 1;
	}
unusable:
	snprintf(aside, sizeof(aside), "%s.corrupt", vm->state_path);
	rename(vm->state_path, aside);
	logmsg(LOG_ERR,
	       "vm %s: state file %s is damaged (moved to %s): starting a new epoch",
	       vm->name, vm->state_path, aside);
	vm->pending = false;
	vm->nunpub = 0;
	vm->family = 0;
	for (n = 0; n < vm->nmacs; n++)
		ms_clear(&vm->macs[n]);
	return -1;
}

/* --- The channel -------------------------------------------------------- */

static bool doorbell_active(const struct vm *vm)
{
	return vm->has_server && vm->srv.npeers > 0;
}

/*
 * The cmd_cons the header may show: the first command whose answer is not
 * in the ring yet. Answers a failed state write holds back (vm->unpub,
 * the commands just before vm->next) stay invisible, and so must the
 * index past them: a guest would read an old slot as its answer, and a
 * restarted host would answer those commands again.
 */
static __u32 published_cons(const struct vm *vm)
{
	return vm->nunpub ? vm->unpub[0].seq : vm->next;
}

static void publish_header(struct vm *vm)
{
	struct mbshm_host_view h = {
		.flags = doorbell_active(vm) ? MBSHM_HF_DOORBELL : 0,
		.host_peer = doorbell_active(vm) ? IVSERVER_HOST_ID :
						    MBSHM_NO_PEER,
		.host_vector = 0,
		.host_status = vm->host_status,
		.epoch = vm->epoch,
		.heartbeat = vm->heartbeat,
		.cmd_cons = published_cons(vm),
	};

	mbshm_host_publish(vm->base, &vm->l, &h);
}

/* Writes the answered commands into the ring, moves cmd_cons, rings. */
static void publish(struct vm *vm)
{
	size_t i;

	if (!vm->nunpub)
		return;
	for (i = 0; i < vm->nunpub; i++) {
		const struct rsp_rec *r = &vm->unpub[i];

		mbshm_host_respond(vm->base, &vm->l, r->seq, vm->epoch,
				   r->status, r->error, r->msg, r->len);
	}
	vm->nunpub = 0;
	mbshm_host_set_cons(vm->base, vm->next);
	if (doorbell_active(vm))
		ivserver_ring_all(&vm->srv, 0);
}

/* Makes the answers so far durable, then visible. */
static int commit(struct vm *vm)
{
	if (state_save(vm)) {
		vm_log(vm, LOG_ERR, "cannot write %s: %s", vm->state_path,
		       strerror(errno));
		return -1;
	}
	publish(vm);
	return 0;
}

static void answer(struct vm *vm, int status, int error, const char *msg)
{
	add_unpub(vm, vm->next, status, error, msg);
	vm->next++;
}

static bool take_token(struct vm *vm, uint64_t now)
{
	vm->tokens += (double)(now - vm->refill_at) * opt.rate / 1000.0;
	if (vm->tokens > opt.burst)
		vm->tokens = opt.burst;
	vm->refill_at = now;
	if (vm->tokens < 1.0)
		return false;
	vm->tokens -= 1.0;
	return true;
}

struct query_ctx {
	char *buf;
	size_t len, max;
	size_t shown, total;
	__u8 mac[MB_ETH_ALEN];
};

static void q_line(struct query_ctx *q, const char *s)
{
	size_t n = strlen(s);

	if (q->len + n + 1 > q->max)
		return;
	memcpy(q->buf + q->len, s, n);
	q->len += n;
	q->buf[q->len++] = '\n';
	q->buf[q->len] = '\0';
}

/* Room kept for the closing lines of a Q answer. */
#define Q_TAIL	200

static int q_rule(const struct mbnl_rule *r, void *arg)
{
	struct query_ctx *q = arg;
	char text[MB_CMD_MAX_LEN + 1], line[MB_CMD_MAX_LEN + 80];
	struct mb_cmd c;

	q->total++;
	memset(&c, 0, sizeof(c));
	c.op = MB_OP_ADD_RULE;
	memcpy(c.mac, q->mac, MB_ETH_ALEN);
	c.rule = r->rule;
	if (mb_cmd_format(&c, text, sizeof(text)) < 0)
		return 0;
	snprintf(line, sizeof(line), "%s # id %u, %" PRIu64 " packets, %"
		 PRIu64 " bytes", text, r->id, r->packets, r->bytes);
	if (q->len + strlen(line) + 1 + Q_TAIL > q->max)
		return 0;
	q_line(q, line);
	q->shown++;
	return 0;
}

/* Q <MAC>: the state as text, replayable commands first. */
static int query(struct vm *vm, const struct mb_cmd *cmd, char *out,
		 size_t max, int *error)
{
	struct query_ctx q = { .buf = out, .max = max };
	struct mac_state tmp = { 0 };
	char line[256], mac[18];
	struct mbnl_mb mb;
	int ret;

	(void)vm;
	out[0] = '\0';
	ret = mbnl_get_mb(nl, cmd->mac, &mb, out, max);
	if (ret) {
		*error = -ret;
		return MBSHM_ST_REFUSED;
	}
	memcpy(q.mac, cmd->mac, MB_ETH_ALEN);
	memcpy(tmp.mac, cmd->mac, MB_ETH_ALEN);
	tmp.services = mb.services;
	tmp.ip = mb.ip;
	tmp.vlan = mb.vlan;
	ms_lb_from_mb(&tmp.lb, &mb);
	tmp.enabled = mb.enabled;
	{
		char *cmds = NULL;
		size_t size = 0;
		FILE *f = open_memstream(&cmds, &size);

		if (f) {
			ms_write_cmds(f, "", &tmp);
			fclose(f);
			if (cmds && q.len + size + 1 < max) {
				memcpy(out + q.len, cmds, size);
				q.len += size;
				out[q.len] = '\0';
			}
			free(cmds);
		}
	}
	if (mb.services & MBSTATE_SVC_F) {
		ret = mbnl_dump_rules(nl, cmd->mac, q_rule, &q, line,
				      sizeof(line));
		if (ret) {
			snprintf(out, max, "%s", line);
			*error = -ret;
			return MBSHM_ST_REFUSED;
		}
	}
	if (q.shown < q.total) {
		snprintf(line, sizeof(line),
			 "# %zu more rules not shown (mbadm show %s on the host)",
			 q.total - q.shown, mac_str(cmd->mac, mac));
		q_line(&q, line);
	}
	snprintf(line, sizeof(line),
		 "# %s, %" PRIu32 " rules; received %" PRIu64 " packets, %"
		 PRIu64 " bytes; firewall drops %" PRIu64 " packets, %" PRIu64
		 " bytes; passed while disabled %" PRIu64,
		 mb.enabled ? "enabled" : "disabled", mb.nrules,
		 mb.stats.rx_packets, mb.stats.rx_bytes,
		 mb.stats.fw_drop_packets, mb.stats.fw_drop_bytes,
		 mb.stats.disabled_packets);
	q_line(&q, line);
	if (q.len && out[q.len - 1] == '\n')
		out[--q.len] = '\0';
	return MBSHM_ST_OK;
}

static const char *unavailable(const char *why)
{
	static char msg[MB_ERR_LEN + 64];

	snprintf(msg, sizeof(msg),
		 "the host's registry is not available (%s); nothing was changed",
		 why);
	return msg;
}

/*
 * Fault injection for the restart tests (tests/vm/t60-mbhostd.sh):
 * MBHOSTD_FAULT=before-exec[:N] or after-exec[:N] makes mbhostd die with
 * _exit(99), as kill -9 would, around its N-th netlink command (default
 * the first): after "pending" was recorded, before or after the kernel ran
 * it. Nothing else reads the variable.
 */
static void fault(const char *point)
{
	static long count;
	const char *f = getenv("MBHOSTD_FAULT");
	size_t n = strlen(point);
	long want = 1;

	if (!f || strncmp(f, point, n) || (f[n] && f[n] != ':'))
		return;
	if (f[n] == ':')
		want = strtol(f + n + 1, NULL, 10);
	if (++count == want) {
		logmsg(LOG_WARNING, "MBHOSTD_FAULT=%s: dying here", f);
		_exit(99);
	}
}

/* Runs @cmd against the kernel with the exactly-once protocol: the state
 * file says "pending" while the kernel may be working on it. */
static void apply(struct vm *vm, const struct mb_cmd *cmd,
		  struct mac_state *m)
{
	char err[MB_ERR_LEN], text[MB_CMD_MAX_LEN + 1];
	char msg[MB_CMD_MAX_LEN + 16];
	int ret;

	if (!nl_get(err, sizeof(err))) {
		answer(vm, MBSHM_ST_UNAVAIL, ENOENT, unavailable(err));
		return;
	}
	if (mb_cmd_format(cmd, text, sizeof(text)) < 0) {
		answer(vm, MBSHM_ST_INTERNAL, EINVAL,
		       "the host cannot format this command");
		return;
	}
	vm->pending = true;
	vm->pending_seq = vm->next;
	strcpy(vm->pending_text, text);
	/* Not while a restore is under way: a restart would take the
	 * registry for restored and judge the pending command by it. */
	if (!vm->reconcile)
		vm->family = mbnl_family_id(nl);
	if (commit(vm)) {
		vm->pending = false;
		answer(vm, MBSHM_ST_INTERNAL, EIO,
		       "the host cannot record the command in its state file; nothing was changed");
		return;
	}

	fault("before-exec");
	ret = mbnl_exec(nl, cmd, err, sizeof(err));
	fault("after-exec");
	if (!ret) {
		ms_apply(m, cmd);
		snprintf(msg, sizeof(msg), "ok: %s", text);
		answer(vm, MBSHM_ST_OK, 0, msg);
	} else {
		vm_log(vm, LOG_INFO, "refused `%s': %s", text, err);
		answer(vm, MBSHM_ST_REFUSED, -ret, err);
	}
	vm->pending = false;
	commit(vm);
}

/*
 * The addresses a command names against what the host allows the VM
 * (audit A2): a middlebox's own address (R) when the host gave the VM's
 * addresses; a load-balancer backend (R L, A <MAC> L) always, none being
 * allowed by default, since a backend receives the traffic of the VIP and,
 * with the client's address kept, could be any server of the network. A
 * backend whose MAC the host pins gets it: a guest's other MAC is refused,
 * none is replaced by the pinned one (a learned MAC is whatever a host on
 * the bridge claims in ARP). 0 if allowed (@cmd maybe completed), else -1
 * with the guest's sentence in @msg. @cmd is the host's copy.
 */
static int check_addrs(const struct vm *vm, struct mb_cmd *cmd, char *msg,
		       size_t len)
{
	char ip[16], mac[18], pinned[18], list[512];
	const struct allow *a;
	struct mb_lb_backend *be = &cmd->backend;

	if (cmd->op == MB_OP_REGISTER && vm->addrs.n &&
	    !allow_match(&vm->addrs, cmd->ip)) {
		mb_format_ipv4(cmd->ip, ip);
		allow_format(&vm->addrs, 8, list, sizeof(list));
		snprintf(msg, len,
			 "Permission denied: %s is not an address of VM `%s'; the host allows %s",
			 ip, vm->name, list);
		return -1;
	}
	if (!(cmd->op == MB_OP_ADD_BACKEND ||
	      (cmd->op == MB_OP_REGISTER && cmd->service == MBSTATE_SVC_L)))
		return 0;
	mb_format_ipv4(be->ip, ip);
	a = allow_match(&vm->backends, be->ip);
	if (!a) {
		if (vm->backends.n)
			allow_format(&vm->backends, 8, list, sizeof(list));
		else
			snprintf(list, sizeof(list),
				 "no backend (mbhostd --allow-backend, or <mbvisor:backend> in the domain's metadata)");
		snprintf(msg, len,
			 "Permission denied: backend %s is not allowed for VM `%s'; the host allows %s; nothing was changed",
			 ip, vm->name, list);
		return -1;
	}
	if (!a->has_mac)
		return 0;
	if (be->has_mac && memcmp(be->mac, a->mac, MB_ETH_ALEN)) {
		snprintf(msg, len,
			 "Permission denied: backend %s has MAC %s for VM `%s' (pinned by the host), not %s; nothing was changed",
			 ip, mac_str(a->mac, pinned), vm->name,
			 mac_str(be->mac, mac));
		return -1;
	}
	be->has_mac = 1;
	memcpy(be->mac, a->mac, MB_ETH_ALEN);
	return 0;
}

/* Reads, checks and answers one command. */
static void handle_one(struct vm *vm, uint64_t now)
{
	char msg[MBSHM_RSP_MSG_MAX + 1], mac[18], own[18];
	struct mbshm_fetched f;
	struct mac_state *m;
	struct mb_cmd cmd;
	int st, error = 0;

	mbshm_host_fetch(vm->base, &vm->l, vm->next, &f);
	/* Every command costs a token, garbage included: what a flood costs
	 * the host is bounded whatever it sends. */
	if (!take_token(vm, now)) {
		snprintf(msg, sizeof(msg),
			 "Rate limited: more than %g commands per second (bursts of %g); the command was not applied, retry later",
			 opt.rate, opt.burst);
		vm->limited++;
		answer(vm, MBSHM_ST_RATELIMIT, EBUSY, msg);
		return;
	}
	if (f.status != MBSHM_ST_OK) {
		vm_log(vm, LOG_WARNING, "command %u: %s", f.seq, f.msg);
		answer(vm, f.status, EINVAL, f.msg);
		return;
	}
	st = mbshm_host_parse(&f, &cmd, msg, sizeof(msg));
	if (st != MBSHM_ST_OK) {
		vm_log(vm, LOG_INFO, "command %u: %s", f.seq, msg);
		answer(vm, st, EINVAL, msg);
		return;
	}
	m = vm_mac(vm, cmd.mac);
	if (!m) {
		snprintf(msg, sizeof(msg),
			 "Permission denied: %s is not a MAC address of VM `%s' (it owns %s%s); a VM may only change its own middleboxes",
			 mac_str(cmd.mac, mac), vm->name,
			 mac_str(vm->macs[0].mac, own),
			 vm->nmacs > 1 ? " and others" : "");
		vm_log(vm, LOG_WARNING, "command %u refused: %s names %s",
		       f.seq, f.text, mac);
		answer(vm, MBSHM_ST_PERM, EPERM, msg);
		return;
	}
	if (cmd.op == MB_OP_REGISTER) {
		/* The host knows where the VM is, the VM may lie: with the
		 * VLAN of its choice, a guest's rules would apply to another
		 * host that has its MAC in that VLAN (W7). */
		if (cmd.vlan) {
			snprintf(msg, sizeof(msg),
				 "Permission denied: a VM does not choose the VLAN of its registration; the host binds it (mbhostd --vlan%s)",
				 vm->vlan ? ", set for this VM" : ", not set for this VM");
			vm_log(vm, LOG_WARNING,
			       "command %u refused: `%s' names a VLAN",
			       f.seq, f.text);
			answer(vm, MBSHM_ST_PERM, EPERM, msg);
			return;
		}
		cmd.vlan = vm->vlan;
	}
	if (check_addrs(vm, &cmd, msg, sizeof(msg))) {
		vm_log(vm, LOG_WARNING, "command %u refused: %s", f.seq, msg);
		answer(vm, MBSHM_ST_PERM, EPERM, msg);
		return;
	}
	if (cmd.op == MB_OP_QUERY) {
		char err[MB_ERR_LEN];

		if (!nl_get(err, sizeof(err))) {
			answer(vm, MBSHM_ST_UNAVAIL, ENOENT, unavailable(err));
			return;
		}
		st = query(vm, &cmd, msg, sizeof(msg), &error);
		answer(vm, st, error, msg);
		return;
	}
	apply(vm, &cmd, m);
}

/* Serves up to BATCH commands; true if more are waiting. */
static bool process_vm(struct vm *vm, uint64_t now)
{
	int n, i;

	if (now < vm->resume_at)
		return false;
	/* Answers a failed state write left behind go first: nothing new is
	 * taken while the host cannot record what it does. */
	if (vm->nunpub && commit(vm)) {
		vm->resume_at = now + 1000;
		return false;
	}
	n = mbshm_host_pending(vm->base, &vm->l, vm->next);
	if (n < 0) {
		if (vm->host_status != MBSHM_HS_BAD_PROD) {
			vm->host_status = MBSHM_HS_BAD_PROD;
			publish_header(vm);
			vm_log(vm, LOG_WARNING,
			       "producer index %u is not within %u of %u: ignored until the guest fixes it",
			       mbshm_host_prod(vm->base), vm->l.cmd_slots,
			       vm->next);
		}
		return false;
	}
	if (vm->host_status != MBSHM_HS_OK) {
		vm->host_status = MBSHM_HS_OK;
		publish_header(vm);
	}
	for (i = 0; i < n && i < BATCH; i++)
		handle_one(vm, now);
	if (vm->nunpub)
		commit(vm);
	if (vm->limited != vm->limited_logged) {
		/* Bounded work for a flooding guest: pause its ring. */
		vm->resume_at = now + RATELIMIT_PAUSE_MS;
		vm_log(vm, LOG_WARNING, "rate limited: %lu commands refused so far",
		       vm->limited);
		vm->limited_logged = vm->limited;
		return false;
	}
	return n > BATCH;
}

/* --- Restart and restore ------------------------------------------------ */

/* Whether the pending command @cmd took effect before we died. Only called
 * when the registry was not reloaded since (see start_vm). */
static bool pending_applied(struct vm *vm, const struct mb_cmd *cmd,
			    struct mac_state *m)
{
	char err[MB_ERR_LEN];
	struct mac_state now = { 0 };
	struct mbnl_mb mb;
	bool applied = false;
	int ret;

	(void)vm;
	ret = mbnl_get_mb(nl, cmd->mac, &mb, err, sizeof(err));
	switch (cmd->op) {
	case MB_OP_REGISTER:
		return !ret && (mb.services & cmd->service) &&
		       !(m->services & cmd->service);
	case MB_OP_UNREGISTER:
		return ret == -ENOENT && m->services;
	case MB_OP_ADD_RULE:
		if (ret || ms_has_rule(m, &cmd->rule))
			return false;
		memcpy(now.mac, cmd->mac, MB_ETH_ALEN);
		if (!ms_load_rules(&now, err, sizeof(err)))
			applied = ms_has_rule(&now, &cmd->rule);
		free(now.rules);
		return applied;
	case MB_OP_DEL_RULE:
		/* A delete that succeeds removes at least one rule. */
		return !ret && mb.nrules < m->nrules;
	case MB_OP_DEL_BACKEND: {
		__u32 i;

		/* Applied: we had it configured, the registry has not. */
		if (ret || !ms_lb_find(&m->lb, cmd->backend.ip))
			return false;
		for (i = 0; i < mb.n_backends; i++)
			if (mb.backends[i].ip == cmd->backend.ip &&
			    mb.backends[i].state != MBSTATE_BE_DRAINING)
				return false;
		return true;
	}
	default:
		/* A <MAC> L sets a backend to what it says, and A and D
		 * <MAC> a switch: running them again is safe. */
		return false;
	}
}

static void resolve_pending(struct vm *vm)
{
	char err[MB_ERR_LEN], msg[MBSHM_RSP_MSG_MAX + 1];
	struct mac_state *m;
	struct mb_cmd cmd;

	if (!vm->pending)
		return;
	vm->pending = false;
	if (mb_cmd_parse(vm->pending_text, strlen(vm->pending_text), &cmd,
			 err, sizeof(err)) || !(m = vm_mac(vm, cmd.mac)) ||
	    vm->pending_seq != vm->next) {
		logmsg(LOG_ERR, "vm %s: pending command %u `%s' is unusable: skipped",
		       vm->name, vm->pending_seq, vm->pending_text);
		return;
	}
	if (!nl_get(err, sizeof(err))) {
		/* The registry is gone: so is whatever the command did. */
		answer(vm, MBSHM_ST_UNAVAIL, ENOENT, unavailable(err));
		return;
	}
	if (pending_applied(vm, &cmd, m)) {
		ms_apply(m, &cmd);
		/* Kept (and restored) only as far as allowed now. */
		ms_allowed_now(vm, m);
		snprintf(msg, sizeof(msg),
			 "ok: %s (applied before mbhostd restarted)",
			 vm->pending_text);
		logmsg(LOG_NOTICE, "vm %s: command %u `%s' had been applied",
		       vm->name, vm->next, vm->pending_text);
		answer(vm, MBSHM_ST_OK, 0, msg);
		return;
	}
	/* Checked when it came; the host's configuration may have changed. */
	if (check_addrs(vm, &cmd, msg, sizeof(msg))) {
		logmsg(LOG_NOTICE, "vm %s: command %u `%s' had not been applied and is not allowed now",
		       vm->name, vm->next, vm->pending_text);
		answer(vm, MBSHM_ST_PERM, EPERM, msg);
		return;
	}
	logmsg(LOG_NOTICE, "vm %s: command %u `%s' had not been applied: running it",
	       vm->name, vm->next, vm->pending_text);
	apply(vm, &cmd, m);
}

/* Milliseconds before the next restore after @fails failures in a row:
 * 1 s, 2 s, 4 s, then RECONCILE_MAX_MS. */
static uint64_t reconcile_delay(unsigned int fails)
{
	uint64_t ms = 1000ULL << (fails < 5 ? fails : 5);

	return ms < RECONCILE_MAX_MS ? ms : RECONCILE_MAX_MS;
}

static void reconcile_vm(struct vm *vm)
{
	char err[MB_ERR_LEN];
	size_t i;
	bool ok = true, dirty = false;

	/* Not before start_vm() loaded its state: macs would be empty. A VM
	 * whose memory is gone (stop_vm(), shm_lost()) keeps its state and
	 * is restored all the same. */
	if (!vm->loaded || !vm->reconcile || now_ms() < vm->reconcile_at)
		return;
	/* Retried while it fails (a module not loaded yet) after 1, 2, 4,
	 * then every RECONCILE_MAX_MS (5 s): a restore that cannot succeed
	 * (the module is not coming back) costs a message now and then, not
	 * a loop, and a module loaded again gets its state back within 5 s.
	 * The registry coming back ('U' from the monitor) starts again at
	 * 1 s. */
	vm->reconcile_at = now_ms() + reconcile_delay(vm->reconcile_fails);
	if (vm->reconcile_fails < 31)
		vm->reconcile_fails++;
	if (!nl_get(err, sizeof(err)))
		return;
	for (i = 0; i < vm->nmacs; i++) {
		unsigned int fixup = vm->macs[i].fixup;

		if (ms_restore(vm, &vm->macs[i]))
			ok = false;
		if (vm->macs[i].fixup != fixup)
			dirty = true;
	}
	if (ok) {
		vm->reconcile_at = 0;
		vm->reconcile_fails = 0;
		vm->reconcile = false;
		if (vm->family != mbnl_family_id(nl)) {
			vm->family = mbnl_family_id(nl);
			dirty = true;
		}
	}
	if (!dirty)
		return;
	/* A VM whose memory is gone has only its state file. */
	if (vm->base)
		commit(vm);
	else if (state_save(vm))
		vm_log(vm, LOG_ERR, "cannot write %s: %s", vm->state_path,
		       strerror(errno));
}

/*
 * DOC: Whose shared memory (audit A4)
 *
 * /dev/shm is writable by everyone (mode 1777): a file or a symbolic link
 * planted at a VM's path must not become its channel, nor make mbhostd
 * write through a link into a file of root's. So:
 *
 *  - the directory (opened once, then used with openat()) must belong to
 *    root or to us, and be writable by no one else unless it is sticky;
 *  - the file is opened with O_NOFOLLOW, and must be a regular file owned
 *    by root (us) or by QEMU's user (--qemu-user), writable by no other
 *    user: not by others, by its group only if that is root's (gid 0):
 *    QEMU's user's group (kvm for libvirt-qemu on Debian) may have
 *    ordinary users in it;
 *  - a file mbhostd creates itself (doorbell, --size) is created with
 *    O_CREAT | O_EXCL, mode 0600; one that exists already is taken only if
 *    it is ours (root's): it is the one an earlier run created, and QEMU
 *    may still map it. Anyone else's is refused, not removed: it says who
 *    planted it, and removing it would race with them again.
 *
 * A refused file is logged with its owner and mode, and not touched.
 */
static int check_shm_dir(struct vm *vm, int dfd, const char *dir)
{
	struct stat st;

	if (fstat(dfd, &st)) {
		logmsg(LOG_ERR, "vm %s: %s: %s", vm->name, dir,
		       strerror(errno));
		return -1;
	}
	if ((st.st_uid != 0 && st.st_uid != geteuid()) ||
	    ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX))) {
		logmsg(LOG_ERR,
		       "vm %s: refusing %s: its directory %s (uid %u, mode %04o) must belong to root and be writable by nobody else unless sticky",
		       vm->name, vm->shm_path, dir, (unsigned int)st.st_uid,
		       (unsigned int)(st.st_mode & 07777));
		return -1;
	}
	return 0;
}

/* -1: refused (logged); 0: a file mbhostd may serve. */
static int check_shm_file(struct vm *vm, const struct stat *st)
{
	bool ours = st->st_uid == 0 || st->st_uid == geteuid();
	bool qemus = opt.qemu_user && st->st_uid == opt.qemu_uid;
	const char *why = NULL;

	if (!S_ISREG(st->st_mode))
		why = "not a regular file";
	else if (vm->create_size && !ours)
		why = "mbhostd creates this file, and it belongs to another user";
	else if (!ours && !qemus)
		why = opt.qemu_user ?
		      "it belongs to neither root nor QEMU's user (--qemu-user)" :
		      "it does not belong to root (QEMU's user: --qemu-user)";
	else if (st->st_mode & S_IWOTH)
		why = "it is writable by others";
	else if ((st->st_mode & S_IWGRP) && st->st_gid != 0)
		why = "it is writable by its group, which is not root's (gid 0)";
	if (!why)
		return 0;
	logmsg(LOG_ERR,
	       "vm %s: refusing %s (uid %u, gid %u, mode %04o): %s; not served",
	       vm->name, vm->shm_path, (unsigned int)st->st_uid,
	       (unsigned int)st->st_gid, (unsigned int)(st->st_mode & 07777),
	       why);
	return -1;
}

/* Opens and maps the VM's memory: 0, -1 error, -2 the file was refused
 * (see above; check_shm() waits for another one). */
static int open_shm(struct vm *vm)
{
	const int flags = O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY |
			  O_NONBLOCK;
	char dir[PATH_MAX], *slash;
	const char *base;
	bool created = false;
	struct stat st;
	int dfd, tries;

	snprintf(dir, sizeof(dir), "%s", vm->shm_path);
	slash = strrchr(dir, '/');
	if (slash) {
		*slash = '\0';
		base = vm->shm_path + (slash - dir) + 1;
		if (slash == dir)
			strcpy(dir, "/");
	} else {
		strcpy(dir, ".");
		base = vm->shm_path;
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		logmsg(LOG_ERR, "vm %s: %s: %s", vm->name, dir,
		       strerror(errno));
		return -1;
	}
	if (check_shm_dir(vm, dfd, dir)) {
		close(dfd);
		return -2;
	}
	/* Bounded: someone racing our O_EXCL with their own file wins, and
	 * is then refused by its owner. */
	for (tries = 0; tries < 3; tries++) {
		vm->shm_fd = openat(dfd, base, flags);
		if (vm->shm_fd >= 0 || errno != ENOENT || !vm->create_size)
			break;
		vm->shm_fd = openat(dfd, base, flags | O_CREAT | O_EXCL, 0600);
		if (vm->shm_fd >= 0) {
			created = true;
			break;
		}
		if (errno != EEXIST)
			break;
	}
	close(dfd);
	if (vm->shm_fd < 0) {
		if (errno == ELOOP) {
			logmsg(LOG_ERR,
			       "vm %s: refusing %s: it is a symbolic link; not followed",
			       vm->name, vm->shm_path);
			return -2;
		}
		logmsg(LOG_ERR, "vm %s: %s: %s", vm->name, vm->shm_path,
		       strerror(errno));
		return -1;
	}
	if (fstat(vm->shm_fd, &st)) {
		logmsg(LOG_ERR, "vm %s: %s: %s", vm->name, vm->shm_path,
		       strerror(errno));
		return -1;
	}
	vm->shm_dev = st.st_dev;
	vm->shm_ino = st.st_ino;
	if (!created && check_shm_file(vm, &st))
		return -2;
	/* Ours, new or left empty by a run that died right after creating
	 * it: give it its size. */
	if (!st.st_size && vm->create_size) {
		if (ftruncate(vm->shm_fd, (off_t)vm->create_size)) {
			logmsg(LOG_ERR, "vm %s: %s: %s", vm->name,
			       vm->shm_path, strerror(errno));
			return -1;
		}
		st.st_size = (off_t)vm->create_size;
	}
	if (mbshm_layout_init(&vm->l, (size_t)st.st_size)) {
		logmsg(LOG_ERR,
		       "vm %s: %s has %lld bytes; the channel needs %d to 4 GiB",
		       vm->name, vm->shm_path, (long long)st.st_size,
		       MBSHM_MIN_SIZE);
		return -1;
	}
	vm->base = mmap(NULL, vm->l.size, PROT_READ | PROT_WRITE, MAP_SHARED,
			vm->shm_fd, 0);
	if (vm->base == MAP_FAILED) {
		vm->base = NULL;
		logmsg(LOG_ERR, "vm %s: mmap %s: %s", vm->name, vm->shm_path,
		       strerror(errno));
		return -1;
	}
	return 0;
}

static int start_vm(struct vm *vm)
{
	char err[MB_ERR_LEN];
	bool fresh, reloaded = false;
	char lock[PATH_MAX + 8];
	struct stat st;
	int loaded, lfd, ret;
	size_t i;

	/* One mbhostd per VM: a lock next to the state file (not on the
	 * shared memory, which the guest side may lock: mbctl --shm). */
	snprintf(vm->state_path, sizeof(vm->state_path), "%s/%s.state",
		 opt.state_dir, vm->name);
	if (vm->lock_fd < 0) {
		snprintf(lock, sizeof(lock), "%s.lock", vm->state_path);
		lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (lfd < 0 || flock(lfd, LOCK_EX | LOCK_NB)) {
			logmsg(LOG_ERR, "vm %s: %s: %s", vm->name, lock,
			       lfd < 0 ? strerror(errno) :
			       "another mbhostd is serving this VM");
			return -1;
		}
		vm->lock_fd = lfd;
	}
	/* A plain ivshmem memory is QEMU's to create: wait for the VM. */
	if (!vm->create_size && lstat(vm->shm_path, &st) && errno == ENOENT) {
		if (!vm->waiting)
			logmsg(LOG_NOTICE,
			       "vm %s: waiting for %s to appear (is the VM running?)",
			       vm->name, vm->shm_path);
		vm->waiting = true;
		return 1;
	}
	vm->waiting = false;
	/* What the VM asked for comes from the state file (or the registry,
	 * without one), also when its memory comes back. */
	for (i = 0; i < vm->nmacs; i++)
		ms_clear(&vm->macs[i]);
	vm->loaded = false;
	vm->pending = false;
	vm->nunpub = 0;
	vm->host_status = MBSHM_HS_OK;
	ret = open_shm(vm);
	if (ret) {
		/* A refused file of QEMU's: wait for another one. The one
		 * refused is the one open_shm() checked (shm_dev, shm_ino)
		 * if it opened it; a symbolic link, or a file in a refused
		 * directory, by its name. */
		if (ret == -2 && !vm->create_size) {
			if (vm->shm_fd >= 0) {
				vm->failed_dev = vm->shm_dev;
				vm->failed_ino = vm->shm_ino;
			} else if (!lstat(vm->shm_path, &st)) {
				vm->failed_dev = st.st_dev;
				vm->failed_ino = st.st_ino;
			}
		}
		if (vm->shm_fd >= 0)
			close(vm->shm_fd);
		vm->shm_fd = -1;
		return ret == -2 && !vm->create_size ? 1 : -1;
	}
	if (!vm->unpub)
		vm->unpub = xcalloc(BATCH + 2, sizeof(*vm->unpub));
	if (!vm->stats)
		vm->stats = xcalloc(vm->nmacs, sizeof(*vm->stats));
	loaded = state_load(vm);
	fresh = loaded <= 0;

	if (!fresh && (!mbshm_host_formatted(vm->base) ||
		       mbshm_host_epoch(vm->base) != vm->epoch)) {
		/* Our state is whole but the memory is not the one we served
		 * (re-created, or scribbled over): resume where the guest is;
		 * the saved answers belong to the old memory. */
		logmsg(LOG_NOTICE,
		       "vm %s: %s is not the channel of epoch %016" PRIx64
		       ": resuming at the guest's index",
		       vm->name, vm->shm_path, (uint64_t)vm->epoch);
		vm->next = mbshm_host_prod(vm->base);
		vm->nunpub = 0;
		if (vm->pending)
			vm->pending_seq = vm->next;
	}
	if (fresh) {
		if (getrandom(&vm->epoch, sizeof(vm->epoch), 0) !=
		    sizeof(vm->epoch))
			vm->epoch = (__u64)time(NULL) ^ ((__u64)getpid() << 32);
		if (mbshm_host_formatted(vm->base)) {
			vm->next = mbshm_host_prod(vm->base);
		} else {
			vm->next = 0;
			mbshm_set_prod(vm->base, 0);
		}
		logmsg(LOG_NOTICE,
		       "vm %s: no saved state: new epoch %016" PRIx64
		       ", starting at command %u", vm->name,
		       (uint64_t)vm->epoch, vm->next);
		if (nl_get(err, sizeof(err))) {
			vm->family = mbnl_family_id(nl);
			for (i = 0; i < vm->nmacs; i++) {
				if (ms_adopt(&vm->macs[i], err, sizeof(err)))
					logmsg(LOG_WARNING,
					       "vm %s: cannot read the registry: %s",
					       vm->name, err);
				/* a restore puts back only what is allowed */
				ms_allowed_now(vm, &vm->macs[i]);
			}
		}
	}
	vm->poll_ms = opt.poll_min;
	vm->tokens = opt.burst;
	vm->refill_at = now_ms();
	/* Answers saved but maybe not yet written into the ring: into their
	 * slots before the header moves cmd_cons past them. */
	{
		size_t n = vm->nunpub;

		vm->nunpub = 0;
		for (i = 0; i < n; i++)
			mbshm_host_respond(vm->base, &vm->l, vm->unpub[i].seq,
					   vm->epoch, vm->unpub[i].status,
					   vm->unpub[i].error,
					   vm->unpub[i].msg,
					   vm->unpub[i].len);
	}
	publish_header(vm);
	vm->loaded = true;

	if (nl_get(err, sizeof(err))) {
		reloaded = vm->family && vm->family != mbnl_family_id(nl);
		if (reloaded) {
			logmsg(LOG_NOTICE,
			       "vm %s: the registry was reloaded while mbhostd was not running: restoring",
			       vm->name);
			vm->reconcile = true;
			vm->reconcile_at = 0;
			vm->reconcile_fails = 0;
			reconcile_vm(vm);
		}
	} else {
		logmsg(LOG_WARNING, "%s", err);
	}
	resolve_pending(vm);
	vm->reconcile = true;
	vm->reconcile_at = 0;
	vm->reconcile_fails = 0;
	reconcile_vm(vm);
	/* The family the state is in the registry of: not while a restore
	 * is not done (the next start restores first, see above). */
	if (nl && !vm->reconcile)
		vm->family = mbnl_family_id(nl);
	if (state_save(vm)) {
		logmsg(LOG_ERR, "vm %s: cannot write %s: %s", vm->name,
		       vm->state_path, strerror(errno));
		return -1;
	}
	publish(vm);
	mbshm_host_set_cons(vm->base, vm->next);

	if (vm->sock_path[0]) {
		if (ivserver_open(&vm->srv, vm->sock_path, vm->shm_fd,
				  vm->vectors, opt.socket_mode, opt.socket_gid,
				  opt.qemu_user ? opt.qemu_uid :
				  IVSERVER_ROOT_ONLY, err, sizeof(err))) {
			logmsg(LOG_ERR, "vm %s: %s", vm->name, err);
			return -1;
		}
		vm->has_server = true;
	}
	{
		char macs[DOMAIN_MAX_MACS * 18 + 1] = "", mac[18];

		for (i = 0; i < vm->nmacs && i < DOMAIN_MAX_MACS; i++) {
			strcat(macs, i ? " " : "");
			strcat(macs, mac_str(vm->macs[i].mac, mac));
		}
		logmsg(LOG_INFO,
		       "vm %s: serving %s (%zu bytes, %s%s), epoch %016" PRIx64
		       ", next command %u, MACs %s", vm->name, vm->shm_path,
		       vm->l.size, vm->has_server ? "doorbell server " :
		       "polling", vm->has_server ? vm->sock_path : "",
		       (uint64_t)vm->epoch, vm->next, macs);
	}
	return 0;
}

/* Touches the mapping with nothing allocated: see shm_guarded(). */
static void publish_stats(struct vm *vm)
{
	struct mbshm_stats_entry *e = vm->stats;
	char err[MB_ERR_LEN];
	struct mbnl_mb mb;
	size_t i;

	memset(e, 0, vm->nmacs * sizeof(*e));
	for (i = 0; i < vm->nmacs; i++) {
		memcpy(e[i].mac, vm->macs[i].mac, MB_ETH_ALEN);
		if (!nl || mbnl_get_mb(nl, vm->macs[i].mac, &mb, err,
				       sizeof(err)))
			continue;
		e[i].flags = MBSHM_SF_REGISTERED |
			     (mb.enabled ? MBSHM_SF_ENABLED : 0);
		e[i].services = mb.services;
		e[i].ip = mb.ip;
		e[i].nrules = mb.nrules;
		e[i].rx_packets = mb.stats.rx_packets;
		e[i].rx_bytes = mb.stats.rx_bytes;
		e[i].fw_drop_packets = mb.stats.fw_drop_packets;
		e[i].fw_drop_bytes = mb.stats.fw_drop_bytes;
		e[i].disabled_packets = mb.stats.disabled_packets;
	}
	mbshm_host_stats(vm->base, &vm->l, e, vm->nmacs, (__u64)time(NULL));
}

static void stop_vm(struct vm *vm)
{
	if (!vm->base)
		return;
	if (vm->nunpub)
		commit(vm);
	if (vm->has_server) {
		ivserver_close(&vm->srv);
		vm->has_server = false;
	}
	publish_header(vm);
	munmap(vm->base, vm->l.size);
	vm->base = NULL;
	close(vm->shm_fd);
	vm->shm_fd = -1;
}

/*
 * A plain ivshmem memory belongs to QEMU: when the VM stops, libvirt may
 * remove the file, and a restarted VM gets a new one. Serving the old,
 * unlinked memory would answer nobody: follow the path.
 */
static void check_shm(struct vm *vm)
{
	struct stat st;

	if (vm->create_size)
		return;
	if (vm->base && !lstat(vm->shm_path, &st) &&
	    st.st_dev == vm->shm_dev &&
	    st.st_ino == vm->shm_ino)
		return;
	if (vm->base) {
		logmsg(LOG_NOTICE, "vm %s: %s was removed or replaced",
		       vm->name, vm->shm_path);
		stop_vm(vm);
	}
	/* A file that could not be served is tried again once replaced. */
	if (!lstat(vm->shm_path, &st) && st.st_ino == vm->failed_ino &&
	    st.st_dev == vm->failed_dev)
		return;
	if (start_vm(vm) < 0) {
		logmsg(LOG_ERR, "vm %s: cannot serve %s until it is replaced",
		       vm->name, vm->shm_path);
		if (!lstat(vm->shm_path, &st)) {
			vm->failed_dev = st.st_dev;
			vm->failed_ino = st.st_ino;
		}
	}
}

/* --- The registry monitor thread ---------------------------------------- */

/*
 * Messages through mon_pipe: 'U' the family is (back) up, 'D' it is gone,
 * 'E' + 6 bytes: a change on that MAC, 'O' changes were lost. The VMs and
 * their MACs do not change after start-up, so the thread reads them freely.
 */
static int mon_pipe[2];

static void mon_send(const void *msg, size_t len)
{
	if (write(mon_pipe[1], msg, len) != (ssize_t)len) {
		char o = 'O';

		/* Full pipe: say "reconcile everything" (best effort). */
		if (write(mon_pipe[1], &o, 1) < 0)
			return;
	}
}

static bool mac_served(const __u8 *mac)
{
	size_t i;

	for (i = 0; i < nvms; i++)
		if (vm_mac(vms[i], mac))
			return true;
	return false;
}

static int mon_cb(const struct mbnl_event *ev, void *arg)
{
	char msg[1 + MB_ETH_ALEN] = { 'E' };

	(void)arg;
	if (ev->cmd == MBSTATE_CMD_UNSPEC) {
		mon_send("O", 1);
		return 0;
	}
	if (!mac_served(ev->mb.mac))
		return 0;
	memcpy(msg + 1, ev->mb.mac, MB_ETH_ALEN);
	mon_send(msg, sizeof(msg));
	return 0;
}

static void *monitor_main(void *arg)
{
	char err[MB_ERR_LEN];
	bool up = false, first = true;
	struct mbnl *m;
	int ret;

	(void)arg;
	for (;;) {
		m = mbnl_open(err, sizeof(err));
		if (!m) {
			if (up || first)
				mon_send("D", 1);
			up = false;
			first = false;
			usleep(500 * 1000);
			continue;
		}
		up = true;
		first = false;
		mon_send("U", 1);
		ret = mbnl_monitor(m, mon_cb, NULL, err, sizeof(err));
		mbnl_close(m);
		mon_send("D", 1);
		up = false;
		if (ret != -ENOENT) {
			logmsg(LOG_WARNING, "registry monitor: %s", err);
			sleep(1);
		}
	}
	return NULL;
}

static void handle_monitor(void)
{
	char buf[1 + MB_ETH_ALEN];
	size_t i;
	ssize_t n;
	int rounds;

	/* Bounded: at most this many messages per wakeup. */
	for (rounds = 0; rounds < 256; rounds++) {
		n = read(mon_pipe[0], buf, 1);
		if (n != 1)
			return;
		switch (buf[0]) {
		case 'U':
			nl_reset();
			for (i = 0; i < nvms; i++) {
				vms[i]->reconcile = true;
				vms[i]->reconcile_at = 0;
				vms[i]->reconcile_fails = 0;
			}
			logmsg(LOG_INFO, "registry (mbstate) is available");
			break;
		case 'D':
			if (nl)
				logmsg(LOG_WARNING,
				       "registry (mbstate) went away: will restore when it is back");
			nl_reset();
			break;
		case 'O':
			for (i = 0; i < nvms; i++)
				vms[i]->reconcile = true;
			break;
		case 'E':
			if (read(mon_pipe[0], buf + 1, MB_ETH_ALEN) !=
			    MB_ETH_ALEN)
				return;
			for (i = 0; i < nvms; i++)
				if (vm_mac(vms[i], (const __u8 *)buf + 1))
					vms[i]->reconcile = true;
			break;
		}
	}
}

/* --- Main loop ---------------------------------------------------------- */

enum src_type { SRC_SIGNAL, SRC_TICK, SRC_MONITOR, SRC_LISTEN, SRC_PEER,
		SRC_HOSTEV };

struct src {
	enum src_type type;
	struct vm *vm;
	int idx;
};

static int epfd;

static struct src *new_src(enum src_type type, struct vm *vm, int idx)
{
	struct src *s = xcalloc(1, sizeof(*s));

	s->type = type;
	s->vm = vm;
	s->idx = idx;
	return s;
}

static void watch_src(int fd, struct src *s)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = s };

	if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev)) {
		logmsg(LOG_ERR, "epoll_ctl: %s", strerror(errno));
		exit(1);
	}
}

static void watch(int fd, enum src_type type, struct vm *vm, int idx)
{
	watch_src(fd, new_src(type, vm, idx));
}

static void unwatch(int fd)
{
	epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
}

/* Stops watching every fd of @vm's doorbell server. Its host eventfds
 * must go out of epoll by hand: QEMU holds copies, so closing ours does
 * not end epoll's interest in them. */
static void unwatch_server(struct vm *vm)
{
	unsigned int k;

	unwatch(vm->srv.listen_fd);
	for (k = 0; k < IVSERVER_MAX_PEERS; k++)
		if (vm->srv.peers[k].fd >= 0)
			unwatch(vm->srv.peers[k].fd);
	for (k = 0; k < vm->srv.vectors; k++)
		unwatch(vm->srv.host_evfd[k]);
}

/*
 * DOC: Shared memory that shrinks (audit A4)
 *
 * QEMU's user can truncate a VM's file under our mapping (ftruncate() on
 * the descriptor the doorbell server gave QEMU, or on its own file); a
 * page past the new end then raises SIGBUS when touched. shm_check(), at
 * every round that serves a VM and every tick, compares the file's size
 * with the mapping and stops the VM's channel if it shrank. A truncation
 * between that check and the access remains: every call that touches a
 * mapping goes through shm_guarded(), which arms a per-thread jump buffer;
 * the SIGBUS handler jumps back when the faulting address is inside a VM's
 * mapping, and that VM's channel is stopped by shm_lost(), which does not
 * touch the mapping again. A SIGBUS anywhere else, or in a thread that did
 * not arm the guard (the monitor never does), kills mbhostd as before. A
 * SIGBUS that is no fault (si_code <= 0: kill(), sigqueue()) is ignored.
 *
 * The handler is installed with SA_NODEFER, so that jumping out of it
 * leaves SIGBUS unblocked without sigsetjmp() saving the signal mask (a
 * system call per guarded call otherwise). Guarded code must not hold
 * anything a jump would leak or leave locked while it touches a mapping:
 * the mbshm_host_*() calls copy between the mapping and private memory,
 * take no lock and allocate nothing (publish_stats() uses a buffer of the
 * VM's).
 */
static __thread sigjmp_buf *shm_jmp;
static __thread struct vm *volatile shm_fault_vm;

/* Set with MBHOSTD_FAULT=no-size-check: the tests reach the SIGBUS guard. */
static bool fault_no_size_check;

static void sigbus_handler(int sig, siginfo_t *si, void *uctx)
{
	const char *addr = si->si_addr;
	size_t i;

	(void)uctx;
	/* Only a fault (BUS_ADRERR, ...): a SIGBUS sent with kill() or
	 * sigqueue() (si_code <= 0) is ignored, the guard stays. */
	if (si->si_code <= 0)
		return;
	for (i = 0; shm_jmp && i < nvms; i++) {
		const char *b = vms[i]->base;

		if (b && addr >= b && addr < b + vms[i]->l.size) {
			shm_fault_vm = vms[i];
			siglongjmp(*shm_jmp, 1);
		}
	}
	/* Not a mapping of ours: die of it. The fault recurs on return. */
	signal(sig, SIG_DFL);
}

static void shm_lost(struct vm *vm, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Stops serving @vm without touching its mapping again. */
static void shm_lost(struct vm *vm, const char *fmt, ...)
{
	char why[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	logmsg(LOG_ERR,
	       "vm %s: %s %s: stopped serving this VM (the others are served); %s",
	       vm->name, vm->shm_path, why, vm->create_size ?
	       "restart mbhostd and the VM to serve it again" :
	       "it is served again when QEMU replaces the file");
	if (vm->has_server) {
		unwatch_server(vm);
		ivserver_close(&vm->srv);
		vm->has_server = false;
	}
	munmap(vm->base, vm->l.size);
	vm->base = NULL;
	close(vm->shm_fd);
	vm->shm_fd = -1;
	vm->failed_dev = vm->shm_dev;
	vm->failed_ino = vm->shm_ino;
	vm->rung = false;
}

/* false (and @vm stopped) if @vm's file is now smaller than its mapping. */
static bool shm_check(struct vm *vm)
{
	struct stat st;

	if (!vm->base || fault_no_size_check)
		return true;
	if (fstat(vm->shm_fd, &st)) {
		shm_lost(vm, "cannot be checked (%s)", strerror(errno));
		return false;
	}
	if (st.st_size < (off_t)vm->l.size) {
		shm_lost(vm, "shrank from %zu to %lld bytes", vm->l.size,
			 (long long)st.st_size);
		return false;
	}
	return true;
}

typedef void vm_fn(struct vm *vm, void *arg);

/*
 * Runs @fn(@vm, @arg), which may touch mappings: true if it returned,
 * false if it touched a mapping that had shrunk (that VM is stopped). The
 * jump buffer lives in this frame, which outlives @fn; nothing here
 * changes between sigsetjmp() and the jump, so nothing needs volatile.
 */
static bool shm_guarded(struct vm *vm, vm_fn *fn, void *arg)
{
	sigjmp_buf jb, *outer = shm_jmp;

	if (sigsetjmp(jb, 0)) {
		struct vm *lost = shm_fault_vm;

		shm_jmp = outer;
		shm_fault_vm = NULL;
		shm_lost(lost, "shrank under mbhostd (SIGBUS)");
		return false;
	}
	shm_jmp = &jb;
	fn(vm, arg);
	shm_jmp = outer;
	return true;
}

static void sigbus_init(void)
{
	struct sigaction sa = {
		.sa_sigaction = sigbus_handler,
		.sa_flags = SA_SIGINFO | SA_NODEFER,
	};
	const char *f = getenv("MBHOSTD_FAULT");

	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGBUS, &sa, NULL)) {
		logmsg(LOG_ERR, "sigaction SIGBUS: %s", strerror(errno));
		exit(1);
	}
	fault_no_size_check = f && !strcmp(f, "no-size-check");
}

static void peer_event(struct vm *vm, int idx)
{
	struct ivpeer *p = &vm->srv.peers[idx];
	char buf[64];

	if (!vm->has_server || p->fd < 0)
		return;
	/* Clients send nothing: data or EOF ends the connection. */
	if (recv(p->fd, buf, sizeof(buf), MSG_DONTWAIT) < 0 &&
	    (errno == EAGAIN || errno == EINTR))
		return;
	vm_log(vm, LOG_INFO, "ivshmem peer %u disconnected", p->id);
	unwatch(p->fd);
	ivserver_drop(&vm->srv, idx);
	publish_header(vm);
}

static void listen_event(struct vm *vm)
{
	static struct src *peer_src[MAX_VMS][IVSERVER_MAX_PEERS];
	size_t v = 0;
	uint16_t replaced;
	char err[256];
	int idx;

	if (!vm->has_server)
		return;
	idx = ivserver_accept(&vm->srv, &replaced, err, sizeof(err));
	if (replaced != IVSERVER_HOST_ID)
		vm_log(vm, LOG_WARNING,
		       "ivshmem peer %u had not read its handshake: dropped for a new connection",
		       replaced);
	if (idx == -2)
		return;
	if (idx < 0) {
		vm_log(vm, LOG_WARNING, "ivshmem server: %s", err);
		return;
	}
	/* One struct src per VM and slot, reused: clients come and go. An
	 * event of the slot's previous fd still in this batch finds the new
	 * peer with nothing to read. */
	while (vms[v] != vm)
		v++;
	if (!peer_src[v][idx])
		peer_src[v][idx] = new_src(SRC_PEER, vm, idx);
	watch_src(vm->srv.peers[idx].fd, peer_src[v][idx]);
	vm_log(vm, LOG_INFO, "ivshmem peer %u connected (%u vectors)",
	       vm->srv.peers[idx].id, vm->srv.vectors);
	publish_header(vm);
	vm->rung = true;	/* look at the ring at once */
}

/*
 * DOC: Doorbell budget (audit A7)
 *
 * Every ring of a VM's doorbell wakes mbhostd. Each VM may wake it
 * --doorbell-rate times a second; past that, its host eventfds are left
 * out of epoll (events 0) until the next tick, which counts what was rung
 * meanwhile and looks at the ring anyway. A flood then costs at most that
 * many wakeups a second, charged to the VM that rings: the others are
 * woken by their own doorbells as before.
 */
static void doorbell_mute(struct vm *vm, bool mute)
{
	unsigned int k;

	for (k = 0; k < vm->srv.vectors; k++) {
		struct epoll_event ev = {
			.events = mute ? 0 : EPOLLIN,
			.data.ptr = vm->hostev_src[k],
		};

		epoll_ctl(epfd, EPOLL_CTL_MOD, vm->srv.host_evfd[k], &ev);
	}
	vm->db_muted = mute;
}

static void doorbell_event(struct vm *vm, int vector)
{
	uint64_t n;

	if (!vm->has_server || vm->db_muted)
		return;
	n = ivserver_drain(&vm->srv, (unsigned int)vector);
	if (!n)
		return;
	vm->rung = true;
	logmsg(LOG_DEBUG, "vm %s: doorbell rung on vector %d", vm->name,
	       vector);
	if (++vm->db_wakeups <= opt.doorbell_rate)
		return;
	doorbell_mute(vm, true);
	vm->db_mutes++;
	vm_log(vm, LOG_WARNING,
	       "doorbell flood: more than %u rings this second (--doorbell-rate); not listening until the next second (%lu times, %lu rings ignored so far)",
	       opt.doorbell_rate, vm->db_mutes, vm->db_ignored);
}

static void doorbell_tick(struct vm *vm)
{
	unsigned int k;

	vm->db_wakeups = 0;
	if (!vm->has_server || !vm->db_muted)
		return;
	for (k = 0; k < vm->srv.vectors; k++)
		vm->db_ignored += ivserver_drain(&vm->srv, k);
	doorbell_mute(vm, false);
}

static void event_fn(struct vm *vm, void *arg)
{
	struct src *s = arg;

	switch (s->type) {
	case SRC_LISTEN:
		listen_event(vm);
		break;
	case SRC_PEER:
		peer_event(vm, s->idx);
		break;
	case SRC_HOSTEV:
		doorbell_event(vm, s->idx);
		break;
	default:
		break;
	}
}

static void tick_fn(struct vm *vm, void *arg)
{
	(void)arg;
	check_shm(vm);
	if (!vm->base || !shm_check(vm))
		return;
	doorbell_tick(vm);
	vm->heartbeat++;
	publish_header(vm);
	publish_stats(vm);
	/* Safety net for doorbell mode: a guest that wrote without ringing
	 * is served within a second. */
	vm->rung = true;
}

static void tick(void)
{
	size_t i;

	for (i = 0; i < nvms; i++)
		shm_guarded(vms[i], tick_fn, NULL);
}

static void start_fn(struct vm *vm, void *arg)
{
	*(int *)arg = start_vm(vm);
}

static void stop_fn(struct vm *vm, void *arg)
{
	(void)arg;
	stop_vm(vm);
}

/* One VM's share of a pass of the main loop: at most BATCH commands. */
struct round {
	uint64_t now;
	int timeout;
	bool more;
};

static void round_fn(struct vm *vm, void *arg)
{
	struct round *r = arg;
	uint64_t now = r->now;
	bool due = vm->rung || (!doorbell_active(vm) && now >= vm->next_poll);
	bool busy = false;

	reconcile_vm(vm);
	if (due && now >= vm->resume_at) {
		__u32 before = vm->next;

		if (!shm_check(vm))
			return;
		vm->rung = false;
		busy = process_vm(vm, now);
		if (vm->next != before || busy)
			vm->poll_ms = opt.poll_min;
		else if (vm->poll_ms < opt.poll_max)
			vm->poll_ms = vm->poll_ms * 2 > opt.poll_max ?
				      opt.poll_max : vm->poll_ms * 2;
		vm->next_poll = now + vm->poll_ms;
	}
	if (busy) {
		vm->rung = true;
		r->more = true;
	}
	if (vm->resume_at > now && vm->resume_at - now < (uint64_t)r->timeout)
		r->timeout = (int)(vm->resume_at - now);
	if (!doorbell_active(vm) && vm->next_poll > now &&
	    vm->next_poll - now < (uint64_t)r->timeout)
		r->timeout = (int)(vm->next_poll - now);
	if (vm->rung && now >= vm->resume_at)
		r->more = true;
}

static int run(void)
{
	struct epoll_event evs[32];
	struct itimerspec its = { { 1, 0 }, { 1, 0 } };
	struct signalfd_siginfo si;
	pthread_t mon;
	sigset_t mask;
	struct round r;
	int sfd, tfd, n, i, timeout;
	bool stop = false;
	size_t v, unserved = 0;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);

	epfd = epoll_create1(EPOLL_CLOEXEC);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (epfd < 0 || sfd < 0 || tfd < 0 ||
	    pipe2(mon_pipe, O_CLOEXEC | O_NONBLOCK) ||
	    timerfd_settime(tfd, 0, &its, NULL)) {
		logmsg(LOG_ERR, "setup: %s", strerror(errno));
		return 1;
	}
	watch(sfd, SRC_SIGNAL, NULL, 0);
	watch(tfd, SRC_TICK, NULL, 0);
	watch(mon_pipe[0], SRC_MONITOR, NULL, 0);

	if (mkdir(opt.state_dir, 0700) && errno != EEXIST) {
		logmsg(LOG_ERR, "%s: %s", opt.state_dir, strerror(errno));
		return 1;
	}
	sigbus_init();
	for (v = 0; v < nvms; v++) {
		struct vm *vm = vms[v];
		struct stat st;
		int ret = -1;

		if (!shm_guarded(vm, start_fn, &ret))
			continue;	/* shrank already: logged */
		/* One VM that cannot be served (a file planted where mbhostd
		 * creates its memory, ...) does not keep the others from
		 * being served; mbhostd fails only if none can be. */
		if (ret < 0) {
			if (++unserved == nvms)
				return 1;
			logmsg(LOG_ERR,
			       "vm %s: not served (the other VMs are); %s",
			       vm->name, vm->create_size ?
			       "restart mbhostd to try again" :
			       "tried again when its file is replaced");
			if (!vm->create_size && !lstat(vm->shm_path, &st)) {
				vm->failed_dev = st.st_dev;
				vm->failed_ino = st.st_ino;
			}
			continue;
		}
		if (ret > 0)
			continue;	/* waiting: check_shm() retries */
		if (vm->has_server) {
			unsigned int k;

			watch(vm->srv.listen_fd, SRC_LISTEN, vm, 0);
			for (k = 0; k < vm->srv.vectors; k++) {
				vm->hostev_src[k] = new_src(SRC_HOSTEV, vm,
							    (int)k);
				watch_src(vm->srv.host_evfd[k],
					  vm->hostev_src[k]);
			}
		}
		vm->rung = true;
	}
	if (pthread_create(&mon, NULL, monitor_main, NULL)) {
		logmsg(LOG_ERR, "cannot start the registry monitor");
		return 1;
	}
	logmsg(LOG_NOTICE, "mbhostd %s ready: %zu VMs", MBVISOR_VERSION, nvms);

	timeout = 0;
	while (!stop) {
		n = epoll_wait(epfd, evs, 32, timeout);
		if (n < 0 && errno != EINTR) {
			logmsg(LOG_ERR, "epoll_wait: %s", strerror(errno));
			break;
		}
		for (i = 0; i < n; i++) {
			struct src *s = evs[i].data.ptr;
			uint64_t ticks;

			switch (s->type) {
			case SRC_SIGNAL:
				while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
					if (si.ssi_signo == SIGHUP) {
						logmsg(LOG_INFO,
						       "SIGHUP: nothing to reload (restart to change the configuration)");
						continue;
					}
					logmsg(LOG_NOTICE, "signal %u: stopping",
					       si.ssi_signo);
					stop = true;
				}
				break;
			case SRC_TICK:
				if (read(tfd, &ticks, sizeof(ticks)) > 0)
					tick();
				break;
			case SRC_MONITOR:
				handle_monitor();
				break;
			case SRC_LISTEN:
			case SRC_PEER:
			case SRC_HOSTEV:
				if (s->vm->base)
					shm_guarded(s->vm, event_fn, s);
				break;
			}
		}

		/* Every VM in turn, each with bounded work (round_fn). */
		r.now = now_ms();
		r.more = false;
		r.timeout = 1000;
		for (v = 0; v < nvms; v++) {
			if (vms[v]->base)
				shm_guarded(vms[v], round_fn, &r);
			else
				reconcile_vm(vms[v]);	/* its state file */
		}
		timeout = r.more ? 0 : r.timeout;
	}

	for (v = 0; v < nvms; v++)
		shm_guarded(vms[v], stop_fn, NULL);
	logmsg(LOG_NOTICE, "stopped");
	return 0;
}

/* --- Options ------------------------------------------------------------ */

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: mbhostd [<options>] <vm>...\n"
		"\n"
		"Each <vm> is one of:\n"
		"  --vm <name> [--shm <path>] --mac <MAC> [--mac <MAC>]... [--socket <path>]\n"
		"  --domain <name> [--shm-name <name>]       (libvirt: MACs and <shmem>)\n"
		"  --domain-xml <file> [--shm-name <name>]   (the same from a domain XML file)\n"
		"followed by any of:\n"
		"  --shm <path>        shared memory (default /dev/shm/<name>)\n"
		"  --mac <MAC>         a MAC address the VM owns (repeatable)\n"
		"  --socket <path>     serve the ivshmem-doorbell protocol on this UNIX socket\n"
		"  --vectors <n>       interrupt vectors per peer (default 1)\n"
		"  --vlan <VID>        bind the VM's registrations to VLAN VID (1-4094);\n"
		"                      needed on a VLAN-filtering bridge, where an unbound\n"
		"                      middlebox is not offloaded\n"
		"  --size <bytes>      create the shared memory with this size if missing\n"
		"  --allow-backend <IP>[/<len>][=<MAC>]\n"
		"                      a load-balancer backend the VM may name (repeatable;\n"
		"                      default none); =MAC pins the backend's MAC\n"
		"  --allow-ip <IP>[/<len>]  an address the VM may register its middleboxes\n"
		"                      with (repeatable; default any)\n"
		"\n"
		"Options:\n"
		"  --state-dir <dir>   where the per-VM state files live (default %s)\n"
		"  --rate <n>          commands per second per VM (default %g)\n"
		"  --burst <n>         burst size of the rate limit (default %g)\n"
		"  --poll-min <ms>     shortest polling interval (default %u)\n"
		"  --poll-max <ms>     longest polling interval (default %u)\n"
		"  --socket-group <group>  group of the doorbell sockets (QEMU's; default ours)\n"
		"  --socket-mode <mode>    their permissions, octal (default 0660)\n"
		"  --qemu-user <user>  the user QEMU runs as: besides root, the only owner of\n"
		"                      a VM's shared memory that is served and the only peer\n"
		"                      on a doorbell socket (default %s if that user\n"
		"                      exists, else root only; `root' or `': root only)\n"
		"  --doorbell-rate <n> doorbell wakeups per second per VM; past it, the VM's\n"
		"                      doorbell is ignored until the next second (default %u)\n"
		"  --connect <uri>     libvirt connection for --domain\n"
		"  --check             print the VMs as configured and exit\n"
		"  -v, --verbose       debug messages\n"
		"  -h, --help          this usage\n"
		"  --version           print the version\n"
		"\n"
		"See mbhostd(8) and docs/protocol.md.\n",
		DEFAULT_STATE_DIR, opt.rate, opt.burst, opt.poll_min,
		opt.poll_max, DEFAULT_QEMU_USER, opt.doorbell_rate);
}

static void die_usage(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));

static void die_usage(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "mbhostd: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	exit(EXIT_USAGE);
}

static bool valid_name(const char *s)
{
	size_t i, n = strlen(s);

	if (!n || n > VM_NAME_MAX || s[0] == '.' || s[0] == '-')
		return false;
	for (i = 0; i < n; i++)
		if (!(s[i] >= 'a' && s[i] <= 'z') &&
		    !(s[i] >= 'A' && s[i] <= 'Z') &&
		    !(s[i] >= '0' && s[i] <= '9') && !strchr("._-", s[i]))
			return false;
	return true;
}

static unsigned long parse_num(const char *opt_name, const char *s,
			       unsigned long min, unsigned long max)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		die_usage("%s: `%s' is not a number from %lu to %lu",
			  opt_name, s, min, max);
	return v;
}

/* A group name, or a number; the group must exist. */
static gid_t parse_group(const char *s)
{
	struct group *g = getgrnam(s);
	unsigned long v;
	char *end;

	if (g)
		return g->gr_gid;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (!errno && end != s && !*end && v < (gid_t)-1) {
		g = getgrgid((gid_t)v);
		if (g)
			return g->gr_gid;
	}
	die_usage("--socket-group: no group `%s'", s);
}

/*
 * QEMU's user, a name or a number; root (or 0) or "" means root only.
 * @implicit: the default, which may be missing. The last one given counts.
 */
static void set_qemu_user(const char *s, bool implicit)
{
	struct passwd *pw;
	unsigned long v;
	char *end;

	free(opt.qemu_user);
	opt.qemu_user = NULL;
	if (!*s)
		return;
	pw = getpwnam(s);
	if (!pw && !implicit) {
		errno = 0;
		v = strtoul(s, &end, 10);
		if (!errno && end != s && !*end && v < (uid_t)-1)
			pw = getpwuid((uid_t)v);
	}
	if (!pw) {
		if (implicit)
			return;
		die_usage("--qemu-user: no user `%s'", s);
	}
	if (!pw->pw_uid)
		return;
	opt.qemu_user = strdup(pw->pw_name);
	opt.qemu_uid = pw->pw_uid;
	if (!opt.qemu_user) {
		logmsg(LOG_ERR, "out of memory");
		exit(1);
	}
}

/* Octal permissions; a socket is useless without write for its owner. */
static mode_t parse_mode(const char *opt_name, const char *s)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 8);
	if (errno || end == s || *end || v > 0777 || !(v & 0200))
		die_usage("%s: `%s' is not an octal mode from 0200 to 0777 with the owner's write bit",
			  opt_name, s);
	return (mode_t)v;
}

static struct vm *new_vm(const char *name)
{
	struct vm *vm;

	if (nvms == MAX_VMS)
		die_usage("at most %d VMs", MAX_VMS);
	vm = xcalloc(1, sizeof(*vm));
	vm->shm_fd = -1;
	vm->lock_fd = -1;
	vm->vectors = 1;
	if (name) {
		if (!valid_name(name))
			die_usage("VM name `%s': use 1 to %d of A-Z a-z 0-9 . _ -, not starting with . or -",
				  name, VM_NAME_MAX);
		strcpy(vm->name, name);
	}
	vms[nvms++] = vm;
	return vm;
}

/* --allow-backend IP[/LEN][=MAC], --allow-ip IP[/LEN] */
static void parse_allow_opt(struct vm *vm, const char *o, const char *val)
{
	bool backend = !strcmp(o, "--allow-backend");
	char buf[64], err[256], *eq;
	struct allow a;
	int ret;

	if (strlen(val) >= sizeof(buf))
		die_usage("%s: `%s' is too long", o, val);
	strcpy(buf, val);
	eq = strchr(buf, '=');
	if (eq)
		*eq++ = '\0';
	if (eq && !backend)
		die_usage("%s: `%s': a MAC is pinned to a backend only", o,
			  val);
	if (allow_parse(buf, eq ? eq : "", &a, err, sizeof(err)))
		die_usage("%s: %s", o, err);
	ret = allow_add(backend ? &vm->backends : &vm->addrs, &a);
	if (ret == -2)
		die_usage("%s: `%s' is given twice with different MACs", o,
			  buf);
	if (ret)
		die_usage("%s: more than %d for one VM", o, DOMAIN_MAX_ALLOW);
}

/* Fills a VM from its libvirt domain (after all options were read). */
static void resolve_domain(struct vm *vm)
{
	struct domain_info d;
	char err[512];
	size_t i;
	int ret;

	if (vm->domain) {
		ret = domain_from_libvirt(opt.libvirt_uri, vm->domain,
					  vm->shm_name, &d, err, sizeof(err));
	} else {
		FILE *f = fopen(vm->domain_xml, "r");
		char *xml = NULL;
		size_t size = 0, n;

		if (!f)
			die_usage("%s: %s", vm->domain_xml, strerror(errno));
		xml = xcalloc(1, 1 << 20);
		n = fread(xml, 1, (1 << 20) - 1, f);
		size = n;
		fclose(f);
		ret = domain_parse_xml(xml, size, vm->shm_name, &d, err,
				       sizeof(err));
		free(xml);
	}
	if (ret) {
		fprintf(stderr, "mbhostd: %s\n", err);
		exit(1);
	}
	if (!vm->name[0]) {
		if (!valid_name(d.name))
			die_usage("domain name `%s' cannot name a state file; give --vm",
				  d.name);
		strcpy(vm->name, d.name);
	}
	for (i = 0; i < d.nmacs; i++)
		vm_add_mac(vm, d.macs[i]);
	/* The domain's <mbvisor:config> and the options add up. */
	for (i = 0; i < d.backends.n; i++)
		if (allow_add(&vm->backends, &d.backends.a[i]))
			die_usage("vm %s: backend %zu of the domain's metadata conflicts with --allow-backend, or there are more than %d",
				  vm->name, i + 1, DOMAIN_MAX_ALLOW);
	for (i = 0; i < d.addrs.n; i++)
		if (allow_add(&vm->addrs, &d.addrs.a[i]))
			die_usage("vm %s: more than %d allowed addresses",
				  vm->name, DOMAIN_MAX_ALLOW);
	if (!vm->shm_path[0])
		snprintf(vm->shm_path, sizeof(vm->shm_path), "/dev/shm/%s",
			 d.shm_name);
	if (d.doorbell && !vm->sock_path[0]) {
		if (strlen(d.server_path) >= sizeof(vm->sock_path))
			die_usage("socket path too long: `%s'", d.server_path);
		strcpy(vm->sock_path, d.server_path);
	}
	if (d.doorbell && !vm->create_size)
		vm->create_size = d.shm_size ? d.shm_size : DEFAULT_SIZE;
}

static void parse_args(int argc, char *argv[])
{
	struct vm *vm = NULL;
	bool qemu_user_given = false;
	__u8 mac[MB_ETH_ALEN];
	size_t i, j, k;
	int a;

	for (a = 1; a < argc; a++) {
		const char *o = argv[a];
		const char *val = a + 1 < argc ? argv[a + 1] : NULL;
		bool takes = true;

#define NEED_VM()							\
		do {							\
			if (!vm)					\
				die_usage("%s must follow --vm, --domain or --domain-xml", o); \
		} while (0)

		if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
			usage(stdout);
			exit(0);
		} else if (!strcmp(o, "--version")) {
			printf("mbhostd (mbvisor) v%s\n", MBVISOR_VERSION);
			exit(0);
		} else if (!strcmp(o, "-v") || !strcmp(o, "--verbose")) {
			log_debug = true;
			takes = false;
		} else if (!strcmp(o, "--check")) {
			opt.check_only = true;
			takes = false;
		} else if (!val) {
			die_usage("%s needs a value (or is unknown); see --help",
				  o);
		} else if (!strcmp(o, "--vm")) {
			vm = new_vm(val);
		} else if (!strcmp(o, "--domain")) {
			vm = new_vm(NULL);
			vm->domain = val;
		} else if (!strcmp(o, "--domain-xml")) {
			vm = new_vm(NULL);
			vm->domain_xml = val;
		} else if (!strcmp(o, "--shm-name")) {
			NEED_VM();
			vm->shm_name = val;
		} else if (!strcmp(o, "--shm")) {
			NEED_VM();
			if (strlen(val) >= sizeof(vm->shm_path))
				die_usage("--shm: path too long");
			strcpy(vm->shm_path, val);
		} else if (!strcmp(o, "--mac")) {
			NEED_VM();
			if (mb_parse_mac(val, mac))
				die_usage("Unable to parse MAC address: `%s'",
					  val);
			if ((mac[0] & 1) ||
			    !memcmp(mac, "\0\0\0\0\0\0", MB_ETH_ALEN))
				die_usage("MAC address `%s' is not a unicast address",
					  val);
			vm_add_mac(vm, mac);
		} else if (!strcmp(o, "--allow-backend") ||
			   !strcmp(o, "--allow-ip")) {
			NEED_VM();
			parse_allow_opt(vm, o, val);
		} else if (!strcmp(o, "--vlan")) {
			NEED_VM();
			vm->vlan = (__u16)parse_num(o, val, MBSTATE_VLAN_MIN,
						    MBSTATE_VLAN_MAX);
		} else if (!strcmp(o, "--socket")) {
			NEED_VM();
			if (strlen(val) >= sizeof(vm->sock_path))
				die_usage("--socket: path too long (at most %zu bytes)",
					  sizeof(vm->sock_path) - 1);
			strcpy(vm->sock_path, val);
			if (!vm->create_size)
				vm->create_size = DEFAULT_SIZE;
		} else if (!strcmp(o, "--vectors")) {
			NEED_VM();
			vm->vectors = (unsigned int)parse_num(o, val, 1,
							      IVSERVER_MAX_VECTORS);
		} else if (!strcmp(o, "--size")) {
			NEED_VM();
			vm->create_size = parse_num(o, val, MBSHM_MIN_SIZE,
						    1UL << 32);
			if (vm->create_size & (vm->create_size - 1))
				die_usage("--size: %s is not a power of 2 (a PCI BAR is)",
					  val);
		} else if (!strcmp(o, "--state-dir")) {
			opt.state_dir = val;
		} else if (!strcmp(o, "--rate")) {
			opt.rate = (double)parse_num(o, val, 1, 1000000);
		} else if (!strcmp(o, "--burst")) {
			opt.burst = (double)parse_num(o, val, 1, 1000000);
		} else if (!strcmp(o, "--poll-min")) {
			opt.poll_min = (unsigned int)parse_num(o, val, 1, 10000);
		} else if (!strcmp(o, "--poll-max")) {
			opt.poll_max = (unsigned int)parse_num(o, val, 1, 10000);
		} else if (!strcmp(o, "--connect")) {
			opt.libvirt_uri = val;
		} else if (!strcmp(o, "--socket-group")) {
			opt.socket_group = val;
			opt.socket_gid = parse_group(val);
		} else if (!strcmp(o, "--socket-mode")) {
			opt.socket_mode = parse_mode(o, val);
		} else if (!strcmp(o, "--qemu-user")) {
			set_qemu_user(val, false);
			qemu_user_given = true;
		} else if (!strcmp(o, "--doorbell-rate")) {
			opt.doorbell_rate = (unsigned int)parse_num(o, val, 1,
								   1000000);
		} else {
			die_usage("unknown option `%s'; see --help", o);
		}
		if (takes)
			a++;
#undef NEED_VM
	}
	if (!nvms)
		die_usage("no VM to serve; see --help");
	if (!qemu_user_given)
		set_qemu_user(DEFAULT_QEMU_USER, true);
	if (opt.poll_max < opt.poll_min)
		opt.poll_max = opt.poll_min;

	for (i = 0; i < nvms; i++) {
		vm = vms[i];
		if (vm->domain || vm->domain_xml)
			resolve_domain(vm);
		if (!vm->nmacs)
			die_usage("vm %s: no MAC address (--mac)", vm->name);
		if (!vm->shm_path[0])
			snprintf(vm->shm_path, sizeof(vm->shm_path),
				 "/dev/shm/%s", vm->name);
		for (j = 0; j < i; j++) {
			if (!strcmp(vms[j]->name, vm->name))
				die_usage("two VMs named `%s'", vm->name);
			if (!strcmp(vms[j]->shm_path, vm->shm_path))
				die_usage("VMs `%s' and `%s' share %s",
					  vms[j]->name, vm->name, vm->shm_path);
			for (k = 0; k < vm->nmacs; k++) {
				char m[18];

				if (vm_mac(vms[j], vm->macs[k].mac))
					die_usage("MAC %s is given to both `%s' and `%s': one VM must never change another's offloads",
						  mac_str(vm->macs[k].mac, m),
						  vms[j]->name, vm->name);
			}
		}
	}
}

static void print_allow(const char *what, const struct allow_list *l)
{
	char ip[16], mac[18];
	size_t i;

	for (i = 0; i < l->n; i++) {
		mb_format_ipv4(l->a[i].ip, ip);
		printf("  %s %s/%u", what, ip, l->a[i].plen);
		if (l->a[i].has_mac)
			printf("=%s", mac_str(l->a[i].mac, mac));
		printf("\n");
	}
}

static void print_config(void)
{
	char mac[18];
	size_t i, k;

	for (i = 0; i < nvms; i++) {
		struct vm *vm = vms[i];

		printf("vm %s\n  shm %s\n", vm->name, vm->shm_path);
		if (opt.qemu_user)
			printf("  owner root or %s (uid %u)\n", opt.qemu_user,
			       (unsigned int)opt.qemu_uid);
		else
			printf("  owner root\n");
		if (vm->sock_path[0])
			printf("  doorbell %s vectors %u, %u wakeups/s\n  socket mode %04o group %s\n",
			       vm->sock_path, vm->vectors, opt.doorbell_rate,
			       (unsigned int)opt.socket_mode,
			       opt.socket_group ? opt.socket_group : "(mbhostd's)");
		else
			printf("  polling\n");
		if (vm->create_size)
			printf("  create-size %zu\n", vm->create_size);
		for (k = 0; k < vm->nmacs; k++)
			printf("  mac %s\n", mac_str(vm->macs[k].mac, mac));
		if (vm->vlan)
			printf("  vlan %u\n", vm->vlan);
		print_allow("allow-backend", &vm->backends);
		print_allow("allow-ip", &vm->addrs);
		printf("  state %s/%s.state\n", opt.state_dir, vm->name);
	}
}

int main(int argc, char *argv[])
{
	log_init();
	parse_args(argc, argv);
	if (opt.check_only) {
		print_config();
		return 0;
	}
	return run();
}
