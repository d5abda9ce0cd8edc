// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * fakeguest - plays a (hostile) guest against a real mbhostd that serves a
 * /dev/shm file, without a VM and without the kernel side: mbhostd's
 * netlink finds no mbstate family, so a good command for the VM's own MAC
 * is answered "unavailable", which proves it got as far as the netlink
 * call. Driven by tests/host/run.sh; each scenario prints "ok"/"FAIL"
 * lines and exits 1 if any check failed.
 *
 *   fakeguest SHM basic MAC OTHER_MAC
 *   fakeguest SHM hostile-prod MAC
 *   fakeguest SHM race MAC N
 *   fakeguest SHM flood MAC N RATE BURST [garbage]
 *   fakeguest SHM stream MAC N OUTFILE     (answers, one line per command)
 *   fakeguest SHM script CMDFILE OUTFILE [INFLIGHT]
 *                          (CMDFILE's lines, up to INFLIGHT in the ring)
 *   fakeguest SHM submit MAC               (submit one, print seq and epoch)
 *   fakeguest SHM await SEQ EPOCH          (exit 0 answered, 3 epoch changed)
 *   fakeguest SOCKET doorbell MAC          (as QEMU's ivshmem-doorbell)
 *   fakeguest SOCKET idle N                (N connections that never read;
 *                                           held until killed, at most 60 s)
 *   fakeguest SOCKET ring-flood MAC SECS   (as QEMU: rings the host and
 *                                           submits commands without pause)
 *   fakeguest SOCKET latency MAC N MS      (as QEMU: N commands one after
 *                                           the other, each answered
 *                                           correctly within MS ms)
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <endian.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <mbvisor/cmd.h>
#include <mbvisor/shmproto.h>

static int checks, failed;
static void *base;
static size_t maplen;
static struct mbshm_layout L;

static void check(bool ok, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void check(bool ok, const char *fmt, ...)
{
	va_list ap;

	checks++;
	if (!ok)
		failed++;
	printf("%s: ", ok ? "ok" : "FAIL");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

static int finish(void)
{
	printf("%d passed, %d failed\n", checks - failed, failed);
	return failed ? 1 : 0;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void msleep(unsigned int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

static void map_file(const char *path)
{
	struct stat st;
	char err[300];
	int fd = open(path, O_RDWR);
	double until = now_s() + 10;

	if (fd < 0 || fstat(fd, &st)) {
		perror(path);
		exit(2);
	}
	maplen = (size_t)st.st_size;
	base = mmap(NULL, maplen, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (base == MAP_FAILED) {
		perror("mmap");
		exit(2);
	}
	while (mbshm_guest_attach(base, maplen, &L, err, sizeof(err))) {
		if (now_s() > until) {
			fprintf(stderr, "fakeguest: %s\n", err);
			exit(2);
		}
		msleep(20);
	}
}

static struct mbshm_header header(void)
{
	struct mbshm_header h;

	mbshm_read_header(base, &h);
	return h;
}

static struct mbshm_cmd_slot *slot(__u32 seq)
{
	return (struct mbshm_cmd_slot *)((char *)base + L.cmd_off +
		(size_t)(seq % L.cmd_slots) * L.cmd_slot_size);
}

/* Publishes raw bytes as command cons..: seq and len as given. */
static __u32 publish_raw(const void *text, size_t len, __u32 slot_seq_delta,
			 __u32 slot_len)
{
	__u32 seq = header().cmd_cons;
	struct mbshm_cmd_slot *s = slot(seq);

	s->seq = seq + slot_seq_delta;
	s->len = slot_len;
	memcpy(s->text, text, len < L.cmd_slot_size - 8 ? len :
	       L.cmd_slot_size - 8);
	mbshm_set_prod(base, seq + 1);
	return seq;
}

/* Waits for the answer to @seq: 1 got it, 0 timeout, <0 error. */
static int await(__u32 seq, __u64 epoch, struct mbshm_response *r,
		 double secs)
{
	double until = now_s() + secs;
	int ret;

	for (;;) {
		ret = mbshm_guest_response(base, &L, seq, epoch, r);
		if (ret)
			return ret;
		if (now_s() > until)
			return 0;
		msleep(1);
	}
}

static struct mbshm_response *rsp;

static int send_expect(const char *what, const void *text, size_t len,
		       __u32 delta, __u32 slot_len, int status,
		       const char *part)
{
	__u64 epoch = header().epoch;
	__u32 seq = publish_raw(text, len, delta, slot_len);
	int ret = await(seq, epoch, rsp, 10);

	check(ret == 1 && rsp->status == status &&
	      (!part || strstr(rsp->msg, part)),
	      "%s: #%u -> %s (%s)", what, seq,
	      ret == 1 ? mbshm_status_name(rsp->status) : "no answer",
	      ret == 1 ? rsp->msg : "");
	return ret == 1 ? rsp->status : -1;
}

static int send_text(const char *what, const char *text, int status,
		     const char *part)
{
	return send_expect(what, text, strlen(text), 0, (__u32)strlen(text),
			   status, part);
}

static int basic(const char *mac, const char *other)
{
	char t[512], big[400];
	static const char nul[] = "@X 52:34:56:00:12:22\0@";
	__u64 hb;

	snprintf(t, sizeof(t), "@R F %s 10.129.126.115@", mac);
	send_text("own MAC reaches netlink", t, MBSHM_ST_UNAVAIL,
		  "not available");
	snprintf(t, sizeof(t), "@Q %s@", mac);
	send_text("query reaches netlink", t, MBSHM_ST_UNAVAIL, "mbstate");
	snprintf(t, sizeof(t), "@R F %s 10.0.0.2@", other);
	send_text("another VM's MAC", t, MBSHM_ST_PERM, other);
	snprintf(t, sizeof(t), "@A %s M 4 s 12:13:14:15:16:17@", other);
	send_text("another VM's MAC in a rule", t, MBSHM_ST_PERM,
		  "Permission denied");
	snprintf(t, sizeof(t), "R F %s 10.0.0.1", mac);
	send_text("missing '@'", t, MBSHM_ST_PARSE, "Missing opening `@'");
	snprintf(t, sizeof(t), "@R F %s 10.0.0.1", mac);
	send_text("missing closing '@'", t, MBSHM_ST_PARSE,
		  "Missing closing");
	send_expect("NUL byte", nul, sizeof(nul) - 1, 0, sizeof(nul) - 1,
		    MBSHM_ST_PARSE, "Invalid byte 0x00");
	snprintf(t, sizeof(t), "@X %s\x80@", mac);
	send_text("binary byte", t, MBSHM_ST_PARSE, "Invalid byte 0x80");
	send_text("bad MAC", "@R F 52:34:56 10.0.0.1@", MBSHM_ST_PARSE,
		  "Unable to parse MAC address: `52:34:56'");
	send_text("empty", "@@", MBSHM_ST_PARSE, "Empty command");
	memset(big, 'A', sizeof(big));
	big[0] = '@';
	send_expect("length past the slot", big, sizeof(big), 0,
		    L.cmd_slot_size - 8 + 1, MBSHM_ST_BADSLOT,
		    "exceeds the slot");
	send_expect("length 2^32-1", big, sizeof(big), 0, 0xffffffffU,
		    MBSHM_ST_BADSLOT, "exceeds the slot");
	big[L.cmd_slot_size - 8 - 1] = '@';
	send_expect("whole slot of text", big, sizeof(big), 0,
		    L.cmd_slot_size - 8, MBSHM_ST_PARSE, "at most 256");
	snprintf(t, sizeof(t), "@X %s@", mac);
	send_expect("stale slot (seq - 64)", t, strlen(t), -L.cmd_slots,
		    (__u32)strlen(t), MBSHM_ST_BADSLOT, "expected");
	send_expect("slot seq ahead", t, strlen(t), 1, (__u32)strlen(t),
		    MBSHM_ST_BADSLOT, "holds sequence number");

	hb = header().heartbeat;
	msleep(2500);
	check(header().heartbeat > hb, "heartbeat moves (%" PRIu64 " -> %"
	      PRIu64 ")", (uint64_t)hb, (uint64_t)header().heartbeat);
	return finish();
}

static int hostile_prod(const char *mac)
{
	struct mbshm_header h = header();
	__u32 cons = h.cmd_cons;
	char t[128];
	double until;

	mbshm_set_prod(base, cons + L.cmd_slots + 1);
	until = now_s() + 10;
	while (header().host_status != MBSHM_HS_BAD_PROD && now_s() < until)
		msleep(5);
	check(header().host_status == MBSHM_HS_BAD_PROD,
	      "producer index cons+%u reported bad", L.cmd_slots + 1);
	check(header().cmd_cons == cons, "nothing consumed");
	mbshm_set_prod(base, cons - 5);
	msleep(300);
	check(header().host_status == MBSHM_HS_BAD_PROD &&
	      header().cmd_cons == cons, "producer index behind cons ignored");
	mbshm_set_prod(base, 0x80000000U + cons);
	msleep(300);
	check(header().cmd_cons == cons, "producer index 2^31 away ignored");
	/* A guest that fixes its index is served again. */
	mbshm_set_prod(base, cons);
	snprintf(t, sizeof(t), "@D %s@", mac);
	send_text("served again after the fix", t, MBSHM_ST_UNAVAIL, NULL);
	check(header().host_status == MBSHM_HS_OK, "host status ok again");
	return finish();
}

struct scribbler {
	volatile int stop;
	volatile __u32 seq;
};

static void *scribble(void *arg)
{
	struct scribbler *s = arg;
	unsigned int x = 1;

	while (!s->stop) {
		struct mbshm_cmd_slot *sl = slot(s->seq);

		x = x * 1103515245 + 12345;
		sl->text[x % 48] = (char)(x >> 16);
		if ((x & 0xff) == 7)
			sl->len = x >> 20;
		if ((x & 0xff) == 9)
			sl->seq = x;
	}
	return NULL;
}

/* Commands whose bytes change while the host reads them: each one gets one
 * answer, with a status from the protocol, and the host lives on. */
static int race(const char *mac, int n)
{
	struct scribbler s = { 0 };
	int counts[__MBSHM_ST_MAX] = { 0 }, i, answered = 0, bad = 0;
	char t[128];
	pthread_t th;
	__u64 epoch = header().epoch;

	snprintf(t, sizeof(t), "@A %s T 13 s 1024-65535 d 80 p udp@", mac);
	s.seq = header().cmd_cons;
	pthread_create(&th, NULL, scribble, &s);
	for (i = 0; i < n; i++) {
		__u32 seq = header().cmd_cons;
		struct mbshm_cmd_slot *sl = slot(seq);
		int ret;

		s.seq = seq;
		sl->seq = seq;
		sl->len = (__u32)strlen(t);
		memcpy(sl->text, t, strlen(t));
		mbshm_set_prod(base, seq + 1);
		ret = await(seq, epoch, rsp, 10);
		if (ret != 1 || rsp->status < 0 ||
		    rsp->status >= __MBSHM_ST_MAX) {
			bad++;
			break;
		}
		answered++;
		counts[rsp->status]++;
	}
	s.stop = 1;
	pthread_join(th, NULL);
	check(answered == n && !bad,
	      "%d of %d racing commands answered: unavailable %d, parse %d, bad slot %d, permission %d",
	      answered, n, counts[MBSHM_ST_UNAVAIL], counts[MBSHM_ST_PARSE],
	      counts[MBSHM_ST_BADSLOT], counts[MBSHM_ST_PERM]);
	check(counts[MBSHM_ST_OK] == 0 && counts[MBSHM_ST_REFUSED] == 0,
	      "no command reached a kernel that is not there");
	return finish();
}

/* As many commands as the ring takes, as fast as possible. */
static int flood(const char *mac, int n, double rate, double burst,
		 bool garbage)
{
	/* Good commands are answered "unavailable" (no kernel), garbage
	 * "parse error": both only while tokens last. */
	int served = garbage ? MBSHM_ST_PARSE : MBSHM_ST_UNAVAIL;
	int counts[__MBSHM_ST_MAX] = { 0 }, got = 0, i;
	char limited_msg[MBSHM_RSP_MSG_MAX + 1] = "";
	__u64 epoch = header().epoch;
	double start = now_s(), elapsed;
	__u32 first = header().cmd_cons, seq, next_wait;
	char t[128];
	int ret;

	if (garbage)
		snprintf(t, sizeof(t), "@Z %s\x01@", mac);
	else
		snprintf(t, sizeof(t), "@Q %s@", mac);
	next_wait = first;
	for (i = 0; i < n;) {
		ret = mbshm_guest_submit(base, &L, t, strlen(t), &seq);
		if (!ret) {
			i++;
			continue;
		}
		/* Ring full: collect answers in order. */
		ret = await(next_wait, epoch, rsp, 30);
		if (ret != 1)
			break;
		counts[rsp->status]++;
		if (rsp->status == MBSHM_ST_RATELIMIT)
			strcpy(limited_msg, rsp->msg);
		got++;
		next_wait++;
	}
	while (next_wait != first + (__u32)n) {
		ret = await(next_wait, epoch, rsp, 30);
		if (ret != 1)
			break;
		counts[rsp->status]++;
		if (rsp->status == MBSHM_ST_RATELIMIT)
			strcpy(limited_msg, rsp->msg);
		got++;
		next_wait++;
	}
	elapsed = now_s() - start;
	check(got == n, "every one of %d commands answered once (%d)", n, got);
	check(counts[MBSHM_ST_RATELIMIT] + counts[served] == n,
	      "answers: %d %s, %d rate limited", counts[served],
	      mbshm_status_name(served), counts[MBSHM_ST_RATELIMIT]);
	/* A bound that holds by construction, whatever the machine's speed. */
	check(counts[served] <= burst + rate * elapsed + 1,
	      "served %d <= burst %g + rate %g x %.2f s", counts[served],
	      burst, rate, elapsed);
	if (elapsed < (n - burst - 1) / rate)
		check(counts[MBSHM_ST_RATELIMIT] > 0,
		      "the flood was rate limited (%d)",
		      counts[MBSHM_ST_RATELIMIT]);
	if (counts[MBSHM_ST_RATELIMIT])
		check(strstr(limited_msg, "Rate limited") != NULL,
		      "refusal says why: %s", limited_msg);
	return finish();
}

/* Sends @n commands one after the other, each waiting for its answer
 * (through restarts of mbhostd), and appends "seq status" lines. */
static int stream(const char *mac, int n, const char *out)
{
	FILE *f = fopen(out, "a");
	char t[128];
	__u64 epoch = header().epoch;
	__u32 seq;
	int i, ret;

	if (!f) {
		perror(out);
		return 2;
	}
	for (i = 0; i < n; i++) {
		snprintf(t, sizeof(t), "@%c %s@", i % 2 ? 'A' : 'D', mac);
		while ((ret = mbshm_guest_submit(base, &L, t, strlen(t),
						 &seq)) == -EAGAIN)
			msleep(5);
		ret = await(seq, epoch, rsp, 60);
		if (ret != 1) {
			fprintf(f, "%u lost %d\n", seq, ret);
			fclose(f);
			check(false, "command %u: no answer (%d)", seq, ret);
			return finish();
		}
		fprintf(f, "%u %d\n", seq, rsp->status);
		fflush(f);
	}
	fclose(f);
	check(true, "%d commands answered in epoch %016" PRIx64, n,
	      (uint64_t)epoch);
	return finish();
}

/*
 * Sends the commands of @cmdfile (one a line, framed "@...@" here) as fast
 * as the ring takes them, with up to @inflight submitted and not yet
 * answered, and reads the answers in order, waiting through restarts of
 * mbhostd (up to 60 s each). One line per answer in @out: "seq status msg".
 * The epoch must not change: a host that kept its state file never starts
 * a new one. Exits 0 when every command got its answer.
 */
static int script(const char *cmdfile, const char *out, int inflight)
{
	FILE *in = fopen(cmdfile, "r"), *f = fopen(out, "w");
	char (*texts)[MBSHM_CMD_TEXT_MAX + 1] = NULL;
	char line[MBSHM_CMD_TEXT_MAX + 1];
	__u64 epoch = header().epoch;
	__u32 first = 0, seq, got = 0, sent = 0;
	size_t n = 0, cap = 0;
	double start = now_s();
	int ret;

	if (!in || !f) {
		perror(!in ? cmdfile : out);
		return 2;
	}
	if (inflight < 1 || (__u32)inflight >= L.cmd_slots ||
	    (__u32)inflight >= L.rsp_slots)
		inflight = (int)(L.cmd_slots / 2);
	while (fgets(line, sizeof(line), in)) {
		line[strcspn(line, "\n")] = '\0';
		if (!line[0])
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 1024;
			texts = realloc(texts, cap * sizeof(*texts));
			if (!texts) {
				perror("realloc");
				return 2;
			}
		}
		snprintf(texts[n++], sizeof(*texts), "@%.*s@",
			 (int)sizeof(*texts) - 3, line);
	}
	fclose(in);
	while (got < n) {
		/* keep the ring busy, never more than @inflight ahead of the
		 * answer read next, so that none is overwritten unread */
		while (sent < n && sent - got < (__u32)inflight) {
			ret = mbshm_guest_submit(base, &L, texts[sent],
						 strlen(texts[sent]), &seq);
			if (ret == -EAGAIN)
				break;
			if (ret) {
				check(false, "submit %u: %s", sent,
				      strerror(-ret));
				return finish();
			}
			if (!sent)
				first = seq;
			if (seq != first + sent) {
				check(false, "command %u got seq %u, not %u",
				      sent, seq, first + sent);
				return finish();
			}
			sent++;
		}
		ret = await(first + got, epoch, rsp, 60);
		if (ret == 0 && sent < n && sent - got < (__u32)inflight)
			continue;
		if (ret != 1) {
			fprintf(f, "%u lost %d\n", first + got, ret);
			fclose(f);
			check(false, "command %u (%s): no answer (%s)",
			      first + got, texts[got],
			      ret == -ECONNRESET ? "epoch changed" :
			      ret ? strerror(-ret) : "timeout");
			return finish();
		}
		fprintf(f, "%u %d %s\n", rsp->seq, rsp->status, rsp->msg);
		got++;
	}
	fclose(f);
	check(true, "%zu commands answered in %.1f s, epoch %016" PRIx64
	      " throughout", n, now_s() - start, (uint64_t)epoch);
	free(texts);
	return finish();
}

/* --- ivshmem-doorbell, as QEMU sees it ---------------------------------- */

static int recv_msg(int fd, int64_t *val, int *passfd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { val, sizeof(*val) };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf),
	};
	struct cmsghdr *c;
	struct pollfd p = { fd, POLLIN, 0 };

	*passfd = -1;
	if (poll(&p, 1, 5000) != 1)
		return -1;
	if (recvmsg(fd, &msg, 0) != sizeof(*val))
		return -1;
	*val = (int64_t)le64toh((uint64_t)*val);
	for (c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
			memcpy(passfd, CMSG_DATA(c), sizeof(int));
	return 0;
}

static int connect_to(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun))) {
		perror(path);
		exit(2);
	}
	return fd;
}

struct client {
	int fd;
	int64_t id;
	int shm;
	int host_fd;		/* ring the host (peer 0, vector 0) */
	int own_fd;		/* we are rung here */
};

/* The connect sequence of docs/specs/ivshmem-spec.rst, one vector. */
static int handshake(const char *path, struct client *c)
{
	int64_t v;
	int fd;

	c->fd = connect_to(path);
	if (recv_msg(c->fd, &v, &fd) || v != 0 || fd >= 0)
		return -1;
	if (recv_msg(c->fd, &c->id, &fd) || c->id < 1 || c->id > 65535 ||
	    fd >= 0)
		return -2;
	if (recv_msg(c->fd, &v, &c->shm) || v != -1 || c->shm < 0)
		return -3;
	/* Other peers: the host (0) first, then any other client. */
	c->host_fd = c->own_fd = -1;
	for (;;) {
		if (recv_msg(c->fd, &v, &fd) || fd < 0)
			return -4;
		if (v == 0)
			c->host_fd = fd;
		else if (v == c->id) {
			c->own_fd = fd;
			break;
		} else {
			close(fd);
		}
	}
	return c->host_fd >= 0 && c->own_fd >= 0 ? 0 : -5;
}

static int doorbell(const char *path, const char *mac)
{
	struct client a, b;
	struct stat st;
	char err[300], t[128];
	struct mbshm_header h;
	struct pollfd p;
	uint64_t one = 1, cnt;
	int ret;
	__u32 seq;

	ret = handshake(path, &a);
	check(!ret, "handshake: version 0, id %" PRId64
	      ", shared memory, host peer 0, own vector (%d)", a.id, ret);
	if (ret)
		return finish();
	fstat(a.shm, &st);
	maplen = (size_t)st.st_size;
	base = mmap(NULL, maplen, PROT_READ | PROT_WRITE, MAP_SHARED, a.shm, 0);
	check(base != MAP_FAILED, "shared memory from the server maps (%zu bytes)",
	      maplen);
	check(!mbshm_guest_attach(base, maplen, &L, err, sizeof(err)),
	      "channel formatted: %s", err);
	{
		double until = now_s() + 5;

		do {
			h = header();
			msleep(5);
		} while (!(h.flags & MBSHM_HF_DOORBELL) && now_s() < until);
	}
	check((h.flags & MBSHM_HF_DOORBELL) && h.host_peer == 0,
	      "header says: doorbell, host peer %u", h.host_peer);

	snprintf(t, sizeof(t), "@Q %s@", mac);
	mbshm_guest_submit(base, &L, t, strlen(t), &seq);
	/* What QEMU does when the guest writes the doorbell register. */
	check(write(a.host_fd, &one, sizeof(one)) == sizeof(one),
	      "rang the host");
	p.fd = a.own_fd;
	p.events = POLLIN;
	ret = poll(&p, 1, 10000);
	check(ret == 1 && read(a.own_fd, &cnt, sizeof(cnt)) == sizeof(cnt),
	      "the host rang us back");
	ret = mbshm_guest_response(base, &L, seq, h.epoch, rsp);
	check(ret == 1 && rsp->status == MBSHM_ST_UNAVAIL,
	      "answer there when rung: %s", ret == 1 ? rsp->msg : "none");

	/* A VM has one QEMU: while the first peer is connected (and has read
	 * its handshake), a second is refused, and the first hears nothing. */
	ret = handshake(path, &b);
	check(ret == -1, "second peer refused while the first is connected (%d)",
	      ret);
	close(b.fd);
	p.fd = a.fd;
	p.events = POLLIN;
	check(poll(&p, 1, 200) == 0, "first peer told nothing of it");
	snprintf(t, sizeof(t), "@Q %s@", mac);
	mbshm_guest_submit(base, &L, t, strlen(t), &seq);
	check(write(a.host_fd, &one, sizeof(one)) == sizeof(one) &&
	      await(seq, h.epoch, rsp, 10) == 1 &&
	      rsp->status == MBSHM_ST_UNAVAIL, "first peer still served");
	/* QEMU gone, a new one (the VM restarted) is accepted. */
	close(a.fd);
	ret = handshake(path, &b);
	check(!ret && b.id != a.id, "a new peer once the first left: id %" PRId64,
	      b.id);
	close(b.fd);
	return finish();
}

/* Connections that never read their handshake: squatters. */
static int idle(const char *path, int n)
{
	int i;

	for (i = 0; i < n; i++)
		connect_to(path);
	printf("%d idle connections\n", n);
	fflush(stdout);
	sleep(60);
	return 0;
}

/* Connects as QEMU does and maps the memory the server sends. */
static struct mbshm_header attach_peer(const char *path, struct client *c)
{
	struct mbshm_header h;
	char err[300];
	struct stat st;
	double until;

	if (handshake(path, c)) {
		fprintf(stderr, "fakeguest: %s: handshake failed\n", path);
		exit(2);
	}
	fstat(c->shm, &st);
	maplen = (size_t)st.st_size;
	base = mmap(NULL, maplen, PROT_READ | PROT_WRITE, MAP_SHARED, c->shm,
		    0);
	if (base == MAP_FAILED ||
	    mbshm_guest_attach(base, maplen, &L, err, sizeof(err))) {
		fprintf(stderr, "fakeguest: %s: cannot attach\n", path);
		exit(2);
	}
	until = now_s() + 5;
	do {
		h = header();
		msleep(5);
	} while (!(h.flags & MBSHM_HF_DOORBELL) && now_s() < until);
	return h;
}

/* The doorbell as fast as this thread can ring it, and a full ring. */
static int ring_flood(const char *path, const char *mac, double secs)
{
	unsigned long rings = 0, cmds = 0;
	struct client c;
	uint64_t one = 1;
	double until;
	char t[128];
	__u32 seq;
	int i;

	attach_peer(path, &c);
	snprintf(t, sizeof(t), "@Q %s@", mac);
	until = now_s() + secs;
	while (now_s() < until) {
		for (i = 0; i < 1000; i++)
			if (write(c.host_fd, &one, sizeof(one)) == sizeof(one))
				rings++;
		while (!mbshm_guest_submit(base, &L, t, strlen(t), &seq))
			cmds++;
	}
	check(rings > 0, "rang %lu times, submitted %lu commands in %.1f s",
	      rings, cmds, secs);
	return finish();
}

/* Round trips, one command at a time, while another VM may flood. */
static int latency(const char *path, const char *mac, int n, double bound)
{
	struct mbshm_header h;
	double t0, dt, max = 0, sum = 0;
	int i, right = 0, ret;
	struct client c;
	uint64_t one = 1;
	char t[128];
	__u32 seq;

	h = attach_peer(path, &c);
	snprintf(t, sizeof(t), "@Q %s@", mac);
	for (i = 0; i < n; i++) {
		t0 = now_s();
		if (mbshm_guest_submit(base, &L, t, strlen(t), &seq) ||
		    write(c.host_fd, &one, sizeof(one)) != sizeof(one))
			break;
		ret = await(seq, h.epoch, rsp, 10);
		dt = (now_s() - t0) * 1000;
		if (ret == 1 && rsp->seq == seq &&
		    rsp->status == MBSHM_ST_UNAVAIL &&
		    strstr(rsp->msg, "not available"))
			right++;
		if (dt > max)
			max = dt;
		sum += dt;
		msleep(20);
	}
	check(right == n, "%d of %d commands answered right (unavailable)",
	      right, n);
	check(max < bound, "round trips: max %.1f ms, mean %.1f ms (bound %.0f ms)",
	      max, i ? sum / i : 0, bound);
	return finish();
}

int main(int argc, char *argv[])
{
	const char *mode;

	rsp = calloc(1, sizeof(*rsp));
	if (argc < 3 || !rsp) {
		fprintf(stderr, "usage: see the top of tests/host/fakeguest.c\n");
		return 2;
	}
	mode = argv[2];
	if (!strcmp(mode, "doorbell") && argc == 4)
		return doorbell(argv[1], argv[3]);
	if (!strcmp(mode, "idle") && argc == 4)
		return idle(argv[1], atoi(argv[3]));
	if (!strcmp(mode, "ring-flood") && argc == 5)
		return ring_flood(argv[1], argv[3], atof(argv[4]));
	if (!strcmp(mode, "latency") && argc == 6)
		return latency(argv[1], argv[3], atoi(argv[4]),
			       atof(argv[5]));
	map_file(argv[1]);
	if (!strcmp(mode, "basic") && argc == 5)
		return basic(argv[3], argv[4]);
	if (!strcmp(mode, "hostile-prod") && argc == 4)
		return hostile_prod(argv[3]);
	if (!strcmp(mode, "race") && argc == 5)
		return race(argv[3], atoi(argv[4]));
	if (!strcmp(mode, "flood") && (argc == 7 || argc == 8))
		return flood(argv[3], atoi(argv[4]), atof(argv[5]),
			     atof(argv[6]), argc == 8 &&
			     !strcmp(argv[7], "garbage"));
	if (!strcmp(mode, "stream") && argc == 6)
		return stream(argv[3], atoi(argv[4]), argv[5]);
	if (!strcmp(mode, "script") && (argc == 5 || argc == 6))
		return script(argv[3], argv[4], argc == 6 ? atoi(argv[5]) : 0);
	if (!strcmp(mode, "submit") && argc == 4) {
		char t[128];
		__u32 seq;

		snprintf(t, sizeof(t), "@A %s@", argv[3]);
		if (mbshm_guest_submit(base, &L, t, strlen(t), &seq))
			return 1;
		printf("%u %" PRIu64 "\n", seq, (uint64_t)header().epoch);
		return 0;
	}
	if (!strcmp(mode, "await") && argc == 5) {
		int ret = await((__u32)strtoul(argv[3], NULL, 10),
				strtoull(argv[4], NULL, 10), rsp, 10);

		if (ret == 1) {
			printf("%s: %s\n", mbshm_status_name(rsp->status),
			       rsp->msg);
			return 0;
		}
		printf("%s\n", ret == -ECONNRESET ? "epoch changed" :
		       ret ? strerror(-ret) : "timeout");
		return ret == -ECONNRESET ? 3 : 1;
	}
	fprintf(stderr, "fakeguest: unknown mode or arguments\n");
	return 2;
}
