// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * mbctl - the middlebox VM's side of the mbvisor command channel.
 *
 * Writes a text command (docs/commands.md) into the ivshmem shared memory
 * (docs/protocol.md), waits for mbhostd's answer and prints it. The device
 * is found by PCI ID (1af4:1110) with libpci and used through mbshm.ko
 * (/dev/mbshmN: mmap, doorbell ioctl, interrupts) or, without the driver,
 * through the PCI resource files in sysfs (BAR2 for the memory, BAR0 for
 * the doorbell register; the answer is then polled for). --shm maps a plain
 * file instead, for tests without a VM.
 *
 * Exit status: 0 the host applied the command (or answered the query);
 * 1 the host refused it (its message on stderr); 2 usage or parse error
 * (nothing was sent); 3 no host answered in time, or there is no channel.
 */

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <pci/pci.h>
#include <linux/mbshm.h>
#include <linux/mbstate.h>
#include <mbvisor/cmd.h>
#include <mbvisor/shmproto.h>

#ifndef MBVISOR_VERSION
#define MBVISOR_VERSION "0.1.0"
#endif

enum {
	EXIT_REFUSED = 1,
	EXIT_USAGE = 2,
	EXIT_NOANSWER = 3,
};

#define IVSHMEM_VENDOR	0x1af4
#define IVSHMEM_DEVICE	0x1110
#define IVSHMEM_REG_IVPOSITION	8
#define IVSHMEM_REG_DOORBELL	12
/* Largest shared memory mapped when its size must be read from the header. */
#define MAX_MAP		(1UL << 30)
#define SYSFS_PCI	"/sys/bus/pci/devices"

static const char *prog = "mbctl";
static const char *opt_shm;
static const char *opt_device;
static double opt_timeout = 10;
static bool opt_quiet;

struct chan {
	int fd;			/* the mapped file */
	void *base;
	size_t len;
	struct mbshm_layout l;
	bool driver;		/* fd is /dev/mbshmN: ioctls, poll, read */
	volatile __u32 *regs;	/* BAR0 through sysfs, or NULL */
	char desc[PATH_MAX + 64];
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* --- Finding and mapping the channel ------------------------------------ */

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Maps @fd: @size bytes, or, if 0, as many as the header says. */
static int map_fd(struct chan *c, size_t size, char *err, size_t errlen)
{
	void *p;

	if (!size) {
		const struct mbshm_header *h;
		__u32 want;

		p = mmap(NULL, MBSHM_HEADER_SIZE, PROT_READ, MAP_SHARED,
			 c->fd, 0);
		if (p == MAP_FAILED) {
			set_err(err, errlen, "mmap %s: %s", c->desc,
				 strerror(errno));
			return -1;
		}
		h = p;
		want = __atomic_load_n(&h->shm_size, __ATOMIC_RELAXED);
		munmap(p, MBSHM_HEADER_SIZE);
		if (want < MBSHM_HEADER_SIZE || want > MAX_MAP)
			want = MBSHM_MIN_SIZE;
		size = want;
	}
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, c->fd, 0);
	if (p == MAP_FAILED) {
		set_err(err, errlen, "mmap %s: %s", c->desc, strerror(errno));
		return -1;
	}
	c->base = p;
	c->len = size;
	return 0;
}

static int open_file(struct chan *c, const char *path, char *err,
		     size_t errlen)
{
	struct stat st;

	c->fd = open(path, O_RDWR | O_CLOEXEC);
	if (c->fd < 0) {
		set_err(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(c->fd, &st)) {
		set_err(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	snprintf(c->desc, sizeof(c->desc), "%s", path);
	if (S_ISCHR(st.st_mode)) {
		char sys[PATH_MAX];
		unsigned long long size = 0;
		__u32 pos;
		FILE *f;

		c->driver = ioctl(c->fd, MBSHM_IOC_GET_IVPOSITION, &pos) == 0;
		/* mbshm.ko says how large BAR2 is; mmap past it fails. */
		snprintf(sys, sizeof(sys), "/sys/class/mbshm/%s/shm_size",
			 strrchr(path, '/') ? strrchr(path, '/') + 1 : path);
		f = fopen(sys, "r");
		if (f) {
			if (fscanf(f, "%llu", &size) != 1 || size > MAX_MAP)
				size = 0;
			fclose(f);
		}
		return map_fd(c, (size_t)size, err, errlen);
	}
	if (st.st_size < MBSHM_HEADER_SIZE) {
		set_err(err, errlen, "%s has %lld bytes: no channel there",
			 path, (long long)st.st_size);
		return -1;
	}
	return map_fd(c, (size_t)st.st_size, err, errlen);
}

/* The /dev node mbshm.ko made for the device at @bdf, if any. */
static bool driver_node(const char *bdf, char *node, size_t len)
{
	/* A class device under the PCI device, a misc device, or a bare
	 * child: whichever way mbshm.ko registers its nodes. */
	static const char *const patterns[] = {
		"mbshm/mbshm*", "misc/mbshm*", "mbshm*",
	};
	char pat[PATH_MAX];
	glob_t g;
	size_t i;

	for (i = 0; i < sizeof(patterns) / sizeof(patterns[0]); i++) {
		snprintf(pat, sizeof(pat), SYSFS_PCI "/%s/%s", bdf,
			 patterns[i]);
		if (glob(pat, 0, NULL, &g))
			continue;
		if (g.gl_pathc) {
			const char *name = strrchr(g.gl_pathv[0], '/') + 1;

			snprintf(node, len, "/dev/%s", name);
			globfree(&g);
			return access(node, R_OK | W_OK) == 0;
		}
		globfree(&g);
	}
	return false;
}

/* Maps BAR0 (registers) through sysfs, for the doorbell without driver. */
static void map_regs(struct chan *c, const char *bdf)
{
	char path[PATH_MAX];
	void *p;
	int fd;

	snprintf(path, sizeof(path), SYSFS_PCI "/%s/resource0", bdf);
	fd = open(path, O_RDWR | O_CLOEXEC | O_SYNC);
	if (fd < 0)
		return;
	p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (p != MAP_FAILED)
		c->regs = p;
}

static int open_pci(struct chan *c, const char *bdf, size_t bar2,
		    char *err, size_t errlen)
{
	char path[PATH_MAX], node[PATH_MAX];
	int fd;

	if (driver_node(bdf, node, sizeof(node))) {
		if (open_file(c, node, err, errlen))
			return -1;
		set_err(c->desc, sizeof(c->desc), "%s (%s, mbshm.ko)", node,
			bdf);
		return 0;
	}
	/* Without a driver the device may have memory decoding off. */
	snprintf(path, sizeof(path), SYSFS_PCI "/%s/enable", bdf);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (write(fd, "1", 1) < 0) {
			/* Already enabled, or not ours to enable: go on. */
		}
		close(fd);
	}
	snprintf(path, sizeof(path), SYSFS_PCI "/%s/resource2", bdf);
	c->fd = open(path, O_RDWR | O_CLOEXEC);
	if (c->fd < 0) {
		set_err(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	snprintf(c->desc, sizeof(c->desc), "%s (sysfs resource2)", bdf);
	if (map_fd(c, bar2, err, errlen))
		return -1;
	map_regs(c, bdf);
	return 0;
}

static void close_chan(struct chan *c)
{
	if (c->base)
		munmap(c->base, c->len);
	if (c->regs)
		munmap((void *)c->regs, 4096);
	if (c->fd >= 0)
		close(c->fd);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

struct pci_found {
	char bdf[16];
	size_t bar2;
};

/* Every ivshmem device, in bus order. Returns the count (at most @max). */
static int find_ivshmem(struct pci_found *out, int max)
{
	struct pci_access *pacc = pci_alloc();
	struct pci_dev *d;
	int n = 0;

	pci_init(pacc);
	pci_scan_bus(pacc);
	for (d = pacc->devices; d && n < max; d = d->next) {
		pci_fill_info(d, PCI_FILL_IDENT | PCI_FILL_BASES |
			      PCI_FILL_SIZES);
		if (d->vendor_id != IVSHMEM_VENDOR ||
		    d->device_id != IVSHMEM_DEVICE)
			continue;
		snprintf(out[n].bdf, sizeof(out[n].bdf), "%04x:%02x:%02x.%d",
			 d->domain, d->bus, d->dev, d->func);
		out[n].bar2 = (size_t)d->size[2];
		n++;
	}
	pci_cleanup(pacc);
	/* libpci lists devices in reverse scan order. */
	for (int i = 0; i < n / 2; i++) {
		struct pci_found t = out[i];

		out[i] = out[n - 1 - i];
		out[n - 1 - i] = t;
	}
	return n;
}

/*
 * Opens the channel: --shm FILE (or $MBCTL_SHM), --device BDF or /dev node,
 * else the first ivshmem device that holds a formatted channel.
 */
static int open_chan(struct chan *c, bool need_host, char *err,
		     size_t errlen)
{
	struct pci_found found[16];
	char why[512] = "";
	int n, i;

	memset(c, 0, sizeof(*c));
	c->fd = -1;
	if (!opt_shm)
		opt_shm = getenv("MBCTL_SHM");
	if (opt_shm || (opt_device && opt_device[0] == '/')) {
		if (open_file(c, opt_shm ? opt_shm : opt_device, err, errlen))
			return -1;
		goto attach;
	}
	n = find_ivshmem(found, 16);
	for (i = 0; i < n; i++) {
		if (opt_device && strcmp(opt_device, found[i].bdf) &&
		    strcmp(opt_device, found[i].bdf + 5))
			continue;
		if (open_pci(c, found[i].bdf, found[i].bar2, why,
			     sizeof(why))) {
			close_chan(c);
			continue;
		}
		if (opt_device || !need_host ||
		    !mbshm_guest_attach(c->base, c->len, &c->l, why,
					sizeof(why)))
			goto attach;
		close_chan(c);
	}
	if (opt_device)
		set_err(err, errlen, "no ivshmem device %s%s%s", opt_device,
			 why[0] ? ": " : "", why);
	else if (!n)
		set_err(err, errlen,
			 "no ivshmem device (PCI %04x:%04x) in this machine",
			 IVSHMEM_VENDOR, IVSHMEM_DEVICE);
	else
		set_err(err, errlen, "no ivshmem device holds a channel%s%s",
			 why[0] ? ": " : "", why);
	return -1;

attach:
	if (need_host &&
	    mbshm_guest_attach(c->base, c->len, &c->l, err, errlen)) {
		char tmp[600];

		set_err(tmp, sizeof(tmp), "%s: %s", c->desc, err);
		set_err(err, errlen, "%s", tmp);
		return -1;
	}
	return 0;
}

/* --- Sending and waiting ------------------------------------------------ */

static void ring_host(struct chan *c, const struct mbshm_header *h)
{
	if (!(h->flags & MBSHM_HF_DOORBELL) || h->host_peer > 0xffff ||
	    h->host_vector > 0xffff)
		return;
	if (c->driver) {
		struct mbshm_doorbell db = {
			.peer = (__u16)h->host_peer,
			.vector = (__u16)h->host_vector,
		};

		if (ioctl(c->fd, MBSHM_IOC_RING_DOORBELL, &db) == 0)
			return;
	}
	if (c->regs)
		c->regs[IVSHMEM_REG_DOORBELL / 4] =
			(h->host_peer << 16) | h->host_vector;
}

/* Waits up to @secs for an interrupt (driver) or just sleeps. */
static void wait_a_bit(struct chan *c, bool irq, double secs)
{
	if (irq) {
		struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
		__u64 count;

		if (poll(&pfd, 1, (int)(secs * 1000) + 1) > 0 &&
		    (pfd.revents & POLLIN) &&
		    read(c->fd, &count, sizeof(count)) < 0) {
			/* Counter read failed: polling goes on anyway. */
		}
		return;
	}
	struct timespec ts = {
		.tv_sec = (time_t)secs,
		.tv_nsec = (long)((secs - (double)(time_t)secs) * 1e9),
	};
	nanosleep(&ts, NULL);
}

/* Sends @text (a parsed command, canonical) and prints the answer. */
static int transact(const struct mb_cmd *cmd, bool print_ok)
{
	char text[MB_CMD_MAX_LEN + 1], framed[MB_CMD_MAX_LEN + 3];
	char err[700], mac[18];
	struct mbshm_header h;
	struct mbshm_response *r;
	struct chan c;
	double deadline, start, hb_at, wait = 0.0001;
	__u64 hb;
	__u32 seq;
	int ret, rc;

	if (mb_cmd_format(cmd, text, sizeof(text)) < 0) {
		fprintf(stderr, "%s: cannot format the command\n", prog);
		return EXIT_USAGE;
	}
	snprintf(framed, sizeof(framed), "@%s@", text);
	if (open_chan(&c, true, err, sizeof(err))) {
		fprintf(stderr, "%s: %s\n", prog, err);
		return EXIT_NOANSWER;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		perror(prog);
		close_chan(&c);
		return EXIT_NOANSWER;
	}

	/* Submitters of one guest take turns: the ring has one producer. */
	start = now_s();
	deadline = start + opt_timeout;
	for (;;) {
		if (flock(c.fd, LOCK_EX | LOCK_NB) && errno == EWOULDBLOCK) {
			if (now_s() > deadline) {
				ret = -EAGAIN;
				break;
			}
			wait_a_bit(&c, false, 0.005);
			continue;
		}
		/* (A file that cannot be locked at all is used unlocked.) */
		mbshm_read_header(c.base, &h);
		ret = mbshm_guest_submit(c.base, &c.l, framed, strlen(framed),
					 &seq);
		flock(c.fd, LOCK_UN);
		if (ret != -EAGAIN || now_s() > deadline)
			break;
		wait_a_bit(&c, false, 0.01);
	}
	if (ret) {
		fprintf(stderr, "%s: %s: %s\n", prog, c.desc,
			ret == -EAGAIN ?
			"the command ring stayed full (the host is not reading it), or another mbctl kept it locked" :
			strerror(-ret));
		rc = EXIT_NOANSWER;
		goto out;
	}
	ring_host(&c, &h);

	hb = h.heartbeat;
	hb_at = start;
	for (;;) {
		struct mbshm_header now;
		bool irq;

		ret = mbshm_guest_response(c.base, &c.l, seq, h.epoch, r);
		if (ret == 1)
			break;
		if (ret == -ECONNRESET) {
			fprintf(stderr,
				"%s: the host restarted without its saved state (new epoch): command %u (`%s') may or may not have been applied; check with `%s show %s'\n",
				prog, seq, text, prog,
				(mb_format_mac(cmd->mac, mac), mac));
			rc = EXIT_NOANSWER;
			goto out;
		}
		if (ret == -ESTALE) {
			fprintf(stderr,
				"%s: the answer to command %u was overwritten before it could be read (more than %u commands were answered since)\n",
				prog, seq, c.l.rsp_slots);
			rc = EXIT_NOANSWER;
			goto out;
		}
		mbshm_read_header(c.base, &now);
		if (now.heartbeat != hb) {
			hb = now.heartbeat;
			hb_at = now_s();
		}
		if (now_s() > deadline) {
			if (now_s() - hb_at >= 3)
				fprintf(stderr,
					"%s: no answer to command %u within %g s: no host is serving %s (its heartbeat stopped %.0f s ago)\n",
					prog, seq, opt_timeout, c.desc,
					now_s() - hb_at);
			else
				fprintf(stderr,
					"%s: no answer to command %u within %g s (the host is alive but busy or rate-limiting; the command may still be applied)\n",
					prog, seq, opt_timeout);
			rc = EXIT_NOANSWER;
			goto out;
		}
		irq = c.driver && (now.flags & MBSHM_HF_DOORBELL);
		wait_a_bit(&c, irq, irq ? 0.1 : wait);
		if (wait < 0.02)
			wait *= 2;
	}

	if (r->status == MBSHM_ST_OK) {
		/* A query's answer is the point of it, even with -q. */
		if (print_ok && r->len &&
		    (!opt_quiet || cmd->op == MB_OP_QUERY))
			printf("%s\n", r->msg);
		rc = 0;
	} else {
		fprintf(stderr, "%s: %s: %s\n", prog,
			mbshm_status_name(r->status), r->msg);
		rc = EXIT_REFUSED;
	}
out:
	free(r);
	close_chan(&c);
	return rc;
}

/* Parses @text (exit 2 with the parser's sentence) and sends it. */
static int send_text(const char *text, size_t len)
{
	char err[MB_ERR_LEN];
	struct mb_cmd cmd;

	if (mb_cmd_parse(text, len, &cmd, err, sizeof(err))) {
		fprintf(stderr, "%s: %s\n", prog, err);
		return EXIT_USAGE;
	}
	return transact(&cmd, true);
}

/* Joins argv words with spaces into @buf. */
static int join(int argc, char *argv[], const char *prefix, char *buf,
		size_t len)
{
	size_t used = 0;
	int i, n;

	n = snprintf(buf, len, "%s", prefix);
	if (n < 0 || (size_t)n >= len)
		return -1;
	used = (size_t)n;
	for (i = 0; i < argc; i++) {
		n = snprintf(buf + used, len - used, "%s%s",
			     used ? " " : "", argv[i]);
		if (n < 0 || (size_t)n >= len - used)
			return -1;
		used += (size_t)n;
	}
	return 0;
}

static int send_words(int argc, char *argv[], const char *prefix)
{
	char buf[4 * MB_CMD_MAX_LEN];

	if (join(argc, argv, prefix, buf, sizeof(buf))) {
		fprintf(stderr, "%s: command too long\n", prog);
		return EXIT_USAGE;
	}
	return send_text(buf, strlen(buf));
}

/* --- Subcommands -------------------------------------------------------- */

static int usage_err(const char *u)
{
	fprintf(stderr, "Usage: %s %s\n", prog, u);
	return EXIT_USAGE;
}

static bool want_help(int argc, char *argv[])
{
	return argc > 1 && (!strcmp(argv[1], "-h") ||
			    !strcmp(argv[1], "--help"));
}

#define HELP(u)								\
	do {								\
		if (want_help(argc, argv)) {				\
			printf("Usage: %s %s\n", prog, u);		\
			return 0;					\
		}							\
	} while (0)

/* lb <MAC> <IP> any <backend> | from <source> <backend> */
static int lb_words(int argc, char *argv[], const char *u)
{
	char buf[4 * MB_CMD_MAX_LEN];

	if (argc == 5 && !strcmp(argv[3], "any"))
		snprintf(buf, sizeof(buf), "R L %s %s 0 0.0.0.0 %s", argv[1],
			 argv[2], argv[4]);
	else if (argc == 6 && !strcmp(argv[3], "from"))
		snprintf(buf, sizeof(buf), "R L %s %s 1 %s %s", argv[1],
			 argv[2], argv[4], argv[5]);
	else
		return usage_err(u);
	return send_text(buf, strlen(buf));
}

static int register_main(int argc, char *argv[])
{
	static const char u[] =
		"register fw <MAC> <IP>\n"
		"       mbctl register lb <MAC> <IP> any <backend>\n"
		"       mbctl register lb <MAC> <IP> from <source> <backend>";

	HELP(u);
	if (argc == 4 && (!strcmp(argv[1], "fw") ||
			  !strcmp(argv[1], "firewall")))
		return send_words(argc - 2, argv + 2, "R F");
	if (argc >= 2 && (!strcmp(argv[1], "lb") ||
			  !strcmp(argv[1], "loadbalancer")))
		return lb_words(argc - 1, argv + 1, u);
	return usage_err(u);
}

static int lb_main(int argc, char *argv[])
{
	static const char u[] =
		"lb <MAC> <IP> any <backend> | lb <MAC> <IP> from <source> <backend>";

	HELP(u);
	return lb_words(argc, argv, u);
}

static int mac_cmd(int argc, char *argv[], const char *letter,
		   const char *u)
{
	HELP(u);
	if (argc != 2)
		return usage_err(u);
	return send_words(1, argv + 1, letter);
}

static int unregister_main(int argc, char *argv[])
{
	return mac_cmd(argc, argv, "X", "unregister <MAC>");
}

static int enable_main(int argc, char *argv[])
{
	return mac_cmd(argc, argv, "A", "enable <MAC>");
}

static int disable_main(int argc, char *argv[])
{
	return mac_cmd(argc, argv, "D", "disable <MAC>");
}

static int show_main(int argc, char *argv[])
{
	return mac_cmd(argc, argv, "Q", "show <MAC>");
}

static int rule_main(int argc, char *argv[])
{
	static const char u[] =
		"rule add <MAC> <I|M|T> <mask> <field> <value>...\n"
		"       mbctl rule del <MAC> <I|M|T> <mask> <field> [<value>]...";

	HELP(u);
	/* The parser says what is missing from a short rule. */
	if (argc >= 3 && !strcmp(argv[1], "add"))
		return send_words(argc - 2, argv + 2, "A");
	if (argc >= 3 && (!strcmp(argv[1], "del") ||
			  !strcmp(argv[1], "delete")))
		return send_words(argc - 2, argv + 2, "D");
	return usage_err(u);
}

static int cmd_main(int argc, char *argv[])
{
	static const char u[] = "cmd '<command>' | cmd <word>...";

	HELP(u);
	if (argc < 2)
		return usage_err(u);
	return send_words(argc - 1, argv + 1, "");
}

static const char *svc_names(__u32 s, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s%s", (s & MBSTATE_SVC_F) ? "F" : "",
		 (s & MBSTATE_SVC_L) ? "L" : "", s ? "" : "-");
	return buf;
}

static int stats_main(int argc, char *argv[])
{
	static const char u[] = "stats [<MAC>]";
	struct mbshm_stats_entry *e;
	__u8 want[MB_ETH_ALEN];
	char err[700], mac[18], ip[16], sv[8];
	struct chan c;
	__u64 updated;
	int n, i, shown = 0;

	HELP(u);
	if (argc > 2)
		return usage_err(u);
	if (argc == 2 && mb_parse_mac(argv[1], want)) {
		fprintf(stderr, "%s: Unable to parse MAC address: `%s'\n",
			prog, argv[1]);
		return EXIT_USAGE;
	}
	if (open_chan(&c, true, err, sizeof(err))) {
		fprintf(stderr, "%s: %s\n", prog, err);
		return EXIT_NOANSWER;
	}
	e = calloc(1024, sizeof(*e));
	if (!e) {
		perror(prog);
		close_chan(&c);
		return EXIT_NOANSWER;
	}
	n = mbshm_guest_stats(c.base, &c.l, e, 1024, &updated);
	if (n < 0) {
		fprintf(stderr, "%s: the counters page kept changing\n", prog);
		free(e);
		close_chan(&c);
		return EXIT_NOANSWER;
	}
	printf("%-17s  %-15s  %-3s %-8s %6s %12s %14s %12s %14s %10s\n",
	       "MAC", "IP", "SVC", "STATE", "RULES", "RX_PACKETS", "RX_BYTES",
	       "DROP_PKTS", "DROP_BYTES", "DISABLED");
	for (i = 0; i < n; i++) {
		if (argc == 2 && memcmp(e[i].mac, want, MB_ETH_ALEN))
			continue;
		shown++;
		mb_format_mac(e[i].mac, mac);
		if (!(e[i].flags & MBSHM_SF_REGISTERED)) {
			printf("%-17s  %-15s  %-3s %-8s\n", mac, "-", "-",
			       "unregistered");
			continue;
		}
		mb_format_ipv4(e[i].ip, ip);
		printf("%-17s  %-15s  %-3s %-8s %6" PRIu32 " %12" PRIu64
		       " %14" PRIu64 " %12" PRIu64 " %14" PRIu64 " %10" PRIu64
		       "\n", mac, ip, svc_names(e[i].services, sv, sizeof(sv)),
		       (e[i].flags & MBSHM_SF_ENABLED) ? "enabled" :
							 "disabled",
		       e[i].nrules, (uint64_t)e[i].rx_packets,
		       (uint64_t)e[i].rx_bytes, (uint64_t)e[i].fw_drop_packets,
		       (uint64_t)e[i].fw_drop_bytes,
		       (uint64_t)e[i].disabled_packets);
	}
	if (updated)
		printf("# updated %lld s ago\n",
		       (long long)time(NULL) - (long long)updated);
	free(e);
	close_chan(&c);
	if (argc == 2 && !shown) {
		fprintf(stderr, "%s: %s is not one of this VM's MAC addresses on the host\n",
			prog, argv[1]);
		return EXIT_REFUSED;
	}
	return 0;
}

/* mbctl -r: the channel as it is, and the last answers. */
static int status_main(int argc, char *argv[])
{
	struct mbshm_response *r;
	struct mbshm_header h;
	char err[700];
	struct chan c;
	__u32 prod, i, from;
	int ret;

	(void)argc;
	(void)argv;
	if (open_chan(&c, false, err, sizeof(err))) {
		fprintf(stderr, "%s: %s\n", prog, err);
		return EXIT_NOANSWER;
	}
	printf("device: %s, %zu bytes mapped\n", c.desc, c.len);
	if (mbshm_guest_attach(c.base, c.len, &c.l, err, sizeof(err))) {
		printf("channel: none (%s)\n", err);
		close_chan(&c);
		return EXIT_NOANSWER;
	}
	mbshm_read_header(c.base, &h);
	prod = mbshm_host_prod(c.base);
	printf("protocol: version %u, epoch %016" PRIx64 ", heartbeat %" PRIu64
	       "\n", h.version, (uint64_t)h.epoch, (uint64_t)h.heartbeat);
	if (h.flags & MBSHM_HF_DOORBELL)
		printf("host: doorbell, peer %u vector %u; guest interrupts %s\n",
		       h.host_peer, h.host_vector,
		       c.driver ? "through mbshm.ko" : "not available (no driver): polling");
	else
		printf("host: polling the ring\n");
	printf("host status: %s\n", h.host_status == MBSHM_HS_OK ? "ok" :
	       h.host_status == MBSHM_HS_BAD_PROD ?
	       "the producer index is out of range (the next command resets it)" :
	       "unknown");
	printf("commands: %u slots of %u bytes; written %u, answered %u\n",
	       c.l.cmd_slots, c.l.cmd_slot_size, prod, h.cmd_cons);
	r = calloc(1, sizeof(*r));
	if (!r) {
		close_chan(&c);
		return EXIT_NOANSWER;
	}
	from = h.cmd_cons - (h.cmd_cons < 8 ? h.cmd_cons : 8);
	printf("last answers:%s\n", from == h.cmd_cons ? " none" : "");
	for (i = from; i != h.cmd_cons; i++) {
		ret = mbshm_read_rsp_slot(c.base, &c.l, i, r);
		if (ret != 1 || r->seq != i)
			continue;
		printf("  #%u %s", i, mbshm_status_name(r->status));
		if (r->status == MBSHM_ST_REFUSED && r->error > 0)
			printf(" (%s)", strerror(r->error));
		printf(": %s\n", r->msg);
	}
	free(r);
	close_chan(&c);
	return 0;
}

static int devices_main(int argc, char *argv[])
{
	struct pci_found found[16];
	char node[PATH_MAX];
	int n, i;

	(void)argc;
	(void)argv;
	n = find_ivshmem(found, 16);
	for (i = 0; i < n; i++)
		printf("%s  BAR2 %zu bytes  %s\n", found[i].bdf, found[i].bar2,
		       driver_node(found[i].bdf, node, sizeof(node)) ? node :
		       "(no mbshm.ko: sysfs resource2)");
	if (!n)
		printf("no ivshmem device (PCI %04x:%04x)\n", IVSHMEM_VENDOR,
		       IVSHMEM_DEVICE);
	return 0;
}

static int help_main(int argc, char *argv[]);

static const struct {
	const char *name;
	int (*fn)(int argc, char *argv[]);
	const char *args;
	const char *desc;
} subcommands[] = {
	{ "register", register_main, "fw|lb <MAC> <IP> ...",
	  "Registers a middlebox for the firewall or the load balancer" },
	{ "unregister", unregister_main, "<MAC>",
	  "Unregisters it: the host forgets its rules and settings" },
	{ "enable", enable_main, "<MAC>", "Switches its offloads on" },
	{ "disable", disable_main, "<MAC>", "Switches its offloads off" },
	{ "rule", rule_main, "add|del <MAC> <I|M|T> <mask> ...",
	  "Adds a firewall rule, or deletes the rules a selector names" },
	{ "lb", lb_main, "<MAC> <IP> any|from <source> <backend>",
	  "Load-balancer settings (the same as register lb)" },
	{ "show", show_main, "<MAC>",
	  "Shows the host's state of a middlebox (command Q)" },
	{ "stats", stats_main, "[<MAC>]",
	  "Shows the counters the host publishes" },
	{ "cmd", cmd_main, "'<command>'",
	  "Sends any command of docs/commands.md" },
	{ "status", status_main, "", "The channel's state (like -r)" },
	{ "devices", devices_main, "", "Lists the ivshmem devices" },
	{ "help", help_main, "", "Shows this usage" },
};

#define NSUB (sizeof(subcommands) / sizeof(subcommands[0]))

static void show_usage(FILE *f)
{
	size_t i;

	fprintf(f, "Usage: %s [<options>] <subcommand> [<args>]\n"
		"       %s [<options>] -w '@<command>@'   write one command, wait for the answer\n"
		"       %s [<options>] -r                 read the channel's state\n\n"
		"Subcommands:\n", prog, prog, prog);
	for (i = 0; i < NSUB; i++)
		fprintf(f, "  %s %s%s%s\n      %s\n", prog, subcommands[i].name,
			*subcommands[i].args ? " " : "", subcommands[i].args,
			subcommands[i].desc);
	fprintf(f, "\nOptions:\n"
		"  -d, --device <BDF|/dev/mbshmN>  the ivshmem device (default: the first with a channel)\n"
		"  --shm <file>      a shared-memory file instead of a device ($MBCTL_SHM)\n"
		"  -t, --timeout <s> how long to wait for the host (default 10)\n"
		"  -q, --quiet       print nothing on success but query answers\n"
		"  -h, --help        this usage\n"
		"  --version         the version of mbctl\n\n"
		"Exit status: 0 done, 1 refused by the host, 2 usage or parse error,\n"
		"3 no answer. Commands: docs/commands.md; mbctl(8).\n");
}

static int help_main(int argc, char *argv[])
{
	(void)argc;
	(void)argv;
	show_usage(stdout);
	return 0;
}

static int finish(int ret)
{
	if (fflush(stdout) == EOF || ferror(stdout)) {
		perror("stdout");
		if (!ret)
			ret = EXIT_NOANSWER;
	}
	return ret;
}

int main(int argc, char *argv[])
{
	const char *write_text = NULL;
	bool read_mode = false;
	char *end;
	size_t s;
	int i;

	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		const char *o = argv[i];
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
			show_usage(stdout);
			return finish(0);
		} else if (!strcmp(o, "--version")) {
			printf("mbctl (mbvisor) v%s\n", MBVISOR_VERSION);
			return finish(0);
		} else if (!strcmp(o, "-r") || !strcmp(o, "--read")) {
			read_mode = true;
		} else if (!strcmp(o, "-q") || !strcmp(o, "--quiet")) {
			opt_quiet = true;
		} else if (!strcmp(o, "--")) {
			i++;
			break;
		} else if (!val) {
			fprintf(stderr, "%s: option `%s' needs a value (or is unknown)\n",
				prog, o);
			show_usage(stderr);
			return EXIT_USAGE;
		} else if (!strcmp(o, "-w") || !strcmp(o, "--write")) {
			write_text = val;
			i++;
		} else if (!strcmp(o, "--shm")) {
			opt_shm = val;
			i++;
		} else if (!strcmp(o, "-d") || !strcmp(o, "--device")) {
			opt_device = val;
			i++;
		} else if (!strcmp(o, "-t") || !strcmp(o, "--timeout")) {
			opt_timeout = strtod(val, &end);
			if (*end || end == val || !(opt_timeout > 0) ||
			    opt_timeout > 3600) {
				fprintf(stderr, "%s: bad timeout `%s' (seconds, up to 3600)\n",
					prog, val);
				return EXIT_USAGE;
			}
			i++;
		} else {
			fprintf(stderr, "%s: invalid option `%s'\n", prog, o);
			show_usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (write_text || read_mode) {
		if (i != argc || (write_text && read_mode)) {
			fprintf(stderr, "%s: -w and -r take no subcommand and exclude each other\n",
				prog);
			return EXIT_USAGE;
		}
		if (read_mode)
			return finish(status_main(0, NULL));
		return finish(send_text(write_text, strlen(write_text)));
	}
	if (i == argc) {
		show_usage(stderr);
		return EXIT_USAGE;
	}
	for (s = 0; s < NSUB; s++)
		if (!strcmp(argv[i], subcommands[s].name))
			return finish(subcommands[s].fn(argc - i, argv + i));
	fprintf(stderr, "%s: invalid subcommand `%s'\n", prog, argv[i]);
	show_usage(stderr);
	return EXIT_USAGE;
}
