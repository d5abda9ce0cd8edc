// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Unit tests of the shared-memory channel (common/shmproto.c,
 * docs/protocol.md): both ends on one buffer in this process, a hostile
 * guest writing indices, lengths and bytes the host must survive, and
 * threads racing the readers of each side.
 *
 *   make bin/test_shmproto && bin/test_shmproto
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <mbvisor/cmd.h>
#include <mbvisor/shmproto.h>

#define SIZE	(1024 * 1024)
#define EPOCH	0x1122334455667788ULL
#define REG	"@R F 52:34:56:00:12:22 10.129.126.115@"

struct chan {
	void *base;
	struct mbshm_layout l;		/* the host's */
	struct mbshm_layout g;		/* the guest's, from the header */
	struct mbshm_host_view h;
};

static struct chan *chan_new(__u32 start)
{
	struct chan *c = calloc(1, sizeof(*c));
	char err[200];

	assert_non_null(c);
	c->base = aligned_alloc(4096, SIZE);
	assert_non_null(c->base);
	memset(c->base, 0, SIZE);
	assert_int_equal(mbshm_layout_init(&c->l, SIZE), 0);
	c->h.host_peer = MBSHM_NO_PEER;
	c->h.epoch = EPOCH;
	c->h.cmd_cons = start;
	mbshm_set_prod(c->base, start);
	mbshm_host_publish(c->base, &c->l, &c->h);
	assert_int_equal(mbshm_guest_attach(c->base, SIZE, &c->g, err,
					    sizeof(err)), 0);
	return c;
}

static void chan_free(struct chan *c)
{
	free(c->base);
	free(c);
}

static struct mbshm_cmd_slot *slot_of(struct chan *c, __u32 seq)
{
	return (struct mbshm_cmd_slot *)((char *)c->base + c->l.cmd_off +
		(seq % c->l.cmd_slots) * c->l.cmd_slot_size);
}

/* The host's side of one command: fetch, parse, answer, advance. */
static int host_step(struct chan *c, struct mb_cmd *cmd, char *msg,
		     size_t msglen)
{
	struct mbshm_fetched f;
	char why[MB_ERR_LEN];
	int st;

	/* @msg is the answer to give when the command is good. */
	mbshm_host_fetch(c->base, &c->l, c->h.cmd_cons, &f);
	st = f.status;
	if (st == MBSHM_ST_OK) {
		st = mbshm_host_parse(&f, cmd, why, sizeof(why));
		if (st != MBSHM_ST_OK)
			snprintf(msg, msglen, "%s", why);
	} else {
		snprintf(msg, msglen, "%s", f.msg);
	}
	mbshm_host_respond(c->base, &c->l, c->h.cmd_cons, c->h.epoch, st, 0,
			   msg, strlen(msg));
	c->h.cmd_cons++;
	mbshm_host_set_cons(c->base, c->h.cmd_cons);
	return st;
}

static void submit_ok(struct chan *c, const char *text, __u32 want_seq)
{
	__u32 seq = 0;

	assert_int_equal(mbshm_guest_submit(c->base, &c->g, text,
					    strlen(text), &seq), 0);
	assert_int_equal(seq, want_seq);
}

static void test_layout(void **state)
{
	struct mbshm_layout l;

	(void)state;
	assert_int_equal(mbshm_layout_init(&l, MBSHM_MIN_SIZE - 1), -1);
	assert_int_equal(mbshm_layout_init(&l, MBSHM_MIN_SIZE), 0);
	assert_int_equal(l.cmd_off, MBSHM_HEADER_SIZE);
	assert_int_equal(l.cmd_slots, MBSHM_CMD_SLOTS);
	assert_int_equal(l.rsp_off % 4096, 0);
	assert_int_equal(l.stats_off % 4096, 0);
	assert_true(l.rsp_off >= l.cmd_off + l.cmd_slots * l.cmd_slot_size);
	assert_true(l.stats_off >= l.rsp_off + l.rsp_slots * l.rsp_slot_size);
	assert_true(l.stats_off + l.stats_size <= MBSHM_MIN_SIZE);
}

static void test_attach(void **state)
{
	struct mbshm_layout l, g;
	struct mbshm_host_view h = { .epoch = 1 };
	struct mbshm_header *H;
	char err[200];
	void *base = calloc(1, SIZE);

	(void)state;
	assert_non_null(base);
	H = base;
	assert_int_equal(mbshm_guest_attach(base, SIZE, &g, err, sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "no host has formatted"));
	assert_int_equal(mbshm_layout_init(&l, SIZE), 0);
	mbshm_host_publish(base, &l, &h);
	assert_int_equal(mbshm_guest_attach(base, SIZE, &g, err, sizeof(err)),
			 0);
	assert_memory_equal(&g, &l, sizeof(g));
	/* A mapping smaller than the host's layout. */
	assert_int_equal(mbshm_guest_attach(base, 64 * 1024, &g, err,
					    sizeof(err)), -1);
	assert_non_null(strstr(err, "does not fit"));
	assert_int_equal(mbshm_guest_attach(base, 100, &g, err, sizeof(err)),
			 -1);

	/* Geometry a broken host could write: each one refused. */
	H->cmd_slots = 48;
	assert_int_equal(mbshm_guest_attach(base, SIZE, &g, err, sizeof(err)),
			 -1);
	H->cmd_slots = 64;
	H->rsp_off = H->cmd_off + 8;	/* overlaps the command ring */
	assert_int_equal(mbshm_guest_attach(base, SIZE, &g, err, sizeof(err)),
			 -1);
	H->rsp_off = l.rsp_off;
	H->stats_off = SIZE - 8;	/* past the end */
	assert_int_equal(mbshm_guest_attach(base, SIZE, &g, err, sizeof(err)),
			 -1);
	H->stats_off = l.stats_off;
	H->rsp_slot_size = 0xfffffff8U;	/* overflows 32 bits */
	assert_int_equal(mbshm_guest_attach(base, SIZE, &g, err, sizeof(err)),
			 -1);
	H->rsp_slot_size = l.rsp_slot_size;
	H->version = 2;
	assert_int_equal(mbshm_guest_attach(base, SIZE, &g, err, sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "version 2"));
	H->version = MBSHM_VERSION;
	assert_int_equal(mbshm_guest_attach(base, SIZE, &g, err, sizeof(err)),
			 0);
	free(base);
}

static void test_roundtrip(void **state)
{
	struct chan *c = chan_new(0);
	struct mbshm_response r;
	struct mb_cmd cmd;
	char msg[MB_ERR_LEN];

	(void)state;
	assert_int_equal(mbshm_host_pending(c->base, &c->l, 0), 0);
	assert_int_equal(mbshm_guest_response(c->base, &c->g, 0, EPOCH, &r),
			 0);
	submit_ok(c, REG, 0);
	assert_int_equal(mbshm_host_pending(c->base, &c->l, 0), 1);
	assert_int_equal(mbshm_guest_response(c->base, &c->g, 0, EPOCH, &r),
			 0);
	strcpy(msg, "registered");
	assert_int_equal(host_step(c, &cmd, msg, sizeof(msg)), MBSHM_ST_OK);
	assert_int_equal(cmd.op, MB_OP_REGISTER);
	assert_int_equal(mbshm_guest_response(c->base, &c->g, 0, EPOCH, &r),
			 1);
	assert_int_equal(r.seq, 0);
	assert_int_equal(r.status, MBSHM_ST_OK);
	assert_string_equal(r.msg, "registered");
	assert_int_equal(mbshm_host_pending(c->base, &c->l, 1), 0);
	chan_free(c);
}

/* Sequence numbers wrap around 2^32, slots around the ring. */
static void test_wrap(void **state)
{
	__u32 start = 0xffffffffU - 100, seq;
	struct chan *c = chan_new(start);
	struct mbshm_response r;
	struct mb_cmd cmd;
	char text[64], msg[MB_ERR_LEN];
	int i;

	(void)state;
	for (i = 0; i < 3 * MBSHM_CMD_SLOTS + 7; i++) {
		seq = start + (__u32)i;
		snprintf(text, sizeof(text), "@X 52:34:56:00:12:%02x@",
			 (unsigned int)(i % 200) + 2);
		submit_ok(c, text, seq);
		assert_int_equal(mbshm_host_pending(c->base, &c->l, seq), 1);
		snprintf(msg, sizeof(msg), "answer %d", i);
		assert_int_equal(host_step(c, &cmd, msg, sizeof(msg)),
				 MBSHM_ST_OK);
		assert_int_equal(cmd.mac[5], (i % 200) + 2);
		assert_int_equal(mbshm_guest_response(c->base, &c->g, seq,
						      EPOCH, &r), 1);
		snprintf(msg, sizeof(msg), "answer %d", i);
		assert_string_equal(r.msg, msg);
	}
	assert_true(c->h.cmd_cons < start);	/* it did wrap */
	chan_free(c);
}

static void test_full(void **state)
{
	struct chan *c = chan_new(7);
	struct mbshm_response r;
	struct mb_cmd cmd;
	char msg[MB_ERR_LEN];
	__u32 seq, i;

	(void)state;
	for (i = 0; i < MBSHM_CMD_SLOTS; i++)
		submit_ok(c, REG, 7 + i);
	assert_int_equal(mbshm_guest_submit(c->base, &c->g, REG, strlen(REG),
					    &seq), -EAGAIN);
	assert_int_equal(mbshm_host_pending(c->base, &c->l, 7),
			 MBSHM_CMD_SLOTS);
	strcpy(msg, "first");
	host_step(c, &cmd, msg, sizeof(msg));
	submit_ok(c, REG, 7 + MBSHM_CMD_SLOTS);
	/* The answer to the first command is still there... */
	assert_int_equal(mbshm_guest_response(c->base, &c->g, 7, EPOCH, &r),
			 1);
	/* ...until the rsp_slots-th command after it is answered. */
	for (i = 1; i <= MBSHM_RSP_SLOTS; i++) {
		strcpy(msg, "later");
		host_step(c, &cmd, msg, sizeof(msg));
	}
	assert_int_equal(mbshm_guest_response(c->base, &c->g, 7, EPOCH, &r),
			 -ESTALE);
	assert_int_equal(mbshm_guest_response(c->base, &c->g, 8, EPOCH, &r),
			 1);
	assert_int_equal(mbshm_guest_submit(c->base, &c->g, REG,
					    MBSHM_CMD_TEXT_MAX + 1, &seq),
			 -EMSGSIZE);
	chan_free(c);
}

/* Producer indices a hostile guest can write. */
static void test_hostile_prod(void **state)
{
	struct chan *c = chan_new(1000);
	__u32 next = 1000, seq;

	(void)state;
	mbshm_set_prod(c->base, next + MBSHM_CMD_SLOTS);
	assert_int_equal(mbshm_host_pending(c->base, &c->l, next),
			 MBSHM_CMD_SLOTS);
	mbshm_set_prod(c->base, next + MBSHM_CMD_SLOTS + 1);
	assert_int_equal(mbshm_host_pending(c->base, &c->l, next), -1);
	mbshm_set_prod(c->base, next - 1);
	assert_int_equal(mbshm_host_pending(c->base, &c->l, next), -1);
	mbshm_set_prod(c->base, 0x80000000U);
	assert_int_equal(mbshm_host_pending(c->base, &c->l, next), -1);
	mbshm_set_prod(c->base, next);
	assert_int_equal(mbshm_host_pending(c->base, &c->l, next), 0);

	/* A well-behaved guest finding garbage resynchronises to cons. */
	mbshm_set_prod(c->base, 12345678);
	submit_ok(c, REG, next);
	assert_int_equal(mbshm_host_pending(c->base, &c->l, next), 1);
	(void)seq;
	chan_free(c);
}

static void fetch_expect(struct chan *c, __u32 seq, int status,
			 const char *msg_part)
{
	struct mbshm_fetched f;

	mbshm_host_fetch(c->base, &c->l, seq, &f);
	assert_int_equal(f.status, status);
	if (msg_part)
		assert_non_null(strstr(f.msg, msg_part));
	assert_true(f.len <= MBSHM_CMD_TEXT_MAX);
}

static void test_hostile_slot(void **state)
{
	struct chan *c = chan_new(50);
	struct mbshm_cmd_slot *s = slot_of(c, 50);

	(void)state;
	submit_ok(c, REG, 50);
	fetch_expect(c, 50, MBSHM_ST_OK, NULL);

	s->len = MBSHM_CMD_TEXT_MAX + 1;
	fetch_expect(c, 50, MBSHM_ST_BADSLOT, "exceeds the slot");
	s->len = 0xffffffffU;
	fetch_expect(c, 50, MBSHM_ST_BADSLOT, "exceeds the slot");
	s->len = MBSHM_CMD_TEXT_MAX;	/* as long as the slot: fetched */
	fetch_expect(c, 50, MBSHM_ST_OK, NULL);

	/* A stale slot: the guest published without writing it. */
	s->len = (__u32)strlen(REG);
	s->seq = 50 - MBSHM_CMD_SLOTS;
	fetch_expect(c, 50, MBSHM_ST_BADSLOT, "expected 50");
	s->seq = 51;
	fetch_expect(c, 50, MBSHM_ST_BADSLOT, "holds sequence number 51");
	chan_free(c);
}

static int parse_text(const char *text, size_t len, char *msg, size_t msglen)
{
	struct mbshm_fetched f = { .status = MBSHM_ST_OK };
	struct mb_cmd cmd;

	assert_true(len <= MBSHM_CMD_TEXT_MAX);
	memcpy(f.text, text, len);
	f.len = len;
	return mbshm_host_parse(&f, &cmd, msg, msglen);
}

static void expect_parse(const char *text, size_t len, int status,
			 const char *part)
{
	char msg[MB_ERR_LEN] = "";

	assert_int_equal(parse_text(text, len, msg, sizeof(msg)), status);
	if (part && !strstr(msg, part))
		fail_msg("`%s': message `%s' lacks `%s'", text, msg, part);
}

static void test_parse(void **state)
{
	static const char nul[] = "@X 52:34:56:00:12:22\0@";
	static const char high[] = "@X 52:34:56:00:12:22\xff@";
	char big[MBSHM_CMD_TEXT_MAX];

	(void)state;
	expect_parse(REG, strlen(REG), MBSHM_ST_OK, NULL);
	expect_parse("  @Q 52:34:56:00:12:22@ ", 24, MBSHM_ST_OK, NULL);
	expect_parse("R F 52:34:56:00:12:22 10.0.0.1", 30, MBSHM_ST_PARSE,
		     "Missing opening `@'");
	expect_parse("@R F 52:34:56:00:12:22 10.0.0.1", 31, MBSHM_ST_PARSE,
		     "Missing closing `@'");
	expect_parse("", 0, MBSHM_ST_PARSE, "Missing opening");
	expect_parse("@@", 2, MBSHM_ST_PARSE, "Empty command");
	expect_parse(nul, sizeof(nul) - 1, MBSHM_ST_PARSE,
		     "Invalid byte 0x00");
	expect_parse(high, sizeof(high) - 1, MBSHM_ST_PARSE,
		     "Invalid byte 0xff");
	expect_parse("@X 52:34:56:00:12:22\n@", 22, MBSHM_ST_PARSE,
		     "Invalid byte 0x0a");
	memset(big, 'A', sizeof(big));
	big[0] = '@';
	big[sizeof(big) - 1] = '@';
	expect_parse(big, sizeof(big), MBSHM_ST_PARSE, "at most 256");
}

static void test_epoch(void **state)
{
	struct chan *c = chan_new(0);
	struct mbshm_response r;
	struct mb_cmd cmd;
	char msg[MB_ERR_LEN] = "ok";

	(void)state;
	submit_ok(c, REG, 0);
	/* A host without state takes over: new epoch, the command skipped. */
	c->h.epoch = EPOCH + 1;
	c->h.cmd_cons = 1;
	mbshm_host_publish(c->base, &c->l, &c->h);
	assert_int_equal(mbshm_guest_response(c->base, &c->g, 0, EPOCH, &r),
			 -ECONNRESET);
	/* A response written in another epoch is not the one awaited. */
	submit_ok(c, REG, 1);
	host_step(c, &cmd, msg, sizeof(msg));
	assert_int_equal(mbshm_guest_response(c->base, &c->g, 1, EPOCH + 1,
					      &r), 1);
	assert_int_equal(r.epoch, EPOCH + 1);
	c->h.epoch = EPOCH;
	mbshm_host_publish(c->base, &c->l, &c->h);
	assert_int_equal(mbshm_guest_response(c->base, &c->g, 1, EPOCH, &r),
			 -ECONNRESET);
	chan_free(c);
}

/*
 * Answers a host holds back (its state file could not take them) stay
 * invisible: a header published meanwhile shows cmd_cons at the first of
 * them, and the guest keeps waiting. Regression of mbhostd's
 * publish_header(), which showed cmd_cons past them (found by
 * tests/fuzz/fuzz_shm.c; tests/host/run.sh runs mbhostd through it): the
 * guest then read the empty slot as overwritten, -ESTALE.
 */
static void test_cons_held_back(void **state)
{
	struct chan *c = chan_new(0);
	struct mbshm_fetched f;
	struct mbshm_response r;

	(void)state;
	submit_ok(c, REG, 0);
	submit_ok(c, REG, 1);
	/* both fetched and answered in private, not yet in the ring */
	mbshm_host_fetch(c->base, &c->l, 0, &f);
	assert_int_equal(f.status, MBSHM_ST_OK);
	mbshm_host_fetch(c->base, &c->l, 1, &f);
	assert_int_equal(f.status, MBSHM_ST_OK);
	/* the once-a-second header: cmd_cons at the first held-back one */
	c->h.heartbeat++;
	c->h.cmd_cons = 0;
	mbshm_host_publish(c->base, &c->l, &c->h);
	assert_int_equal(mbshm_guest_response(c->base, &c->g, 0, EPOCH, &r), 0);
	assert_int_equal(mbshm_guest_response(c->base, &c->g, 1, EPOCH, &r), 0);
	/* what the header must not say: the guest would take the empty
	 * slot for an overwritten answer */
	c->h.cmd_cons = 2;
	mbshm_host_publish(c->base, &c->l, &c->h);
	assert_int_equal(mbshm_guest_response(c->base, &c->g, 0, EPOCH, &r),
			 -ESTALE);
	/* once recorded: the answers, then the index */
	mbshm_host_respond(c->base, &c->l, 0, EPOCH, MBSHM_ST_UNAVAIL, ENOENT,
			   "unavailable", 11);
	mbshm_host_respond(c->base, &c->l, 1, EPOCH, MBSHM_ST_UNAVAIL, ENOENT,
			   "unavailable", 11);
	mbshm_host_set_cons(c->base, 2);
	assert_int_equal(mbshm_guest_response(c->base, &c->g, 0, EPOCH, &r), 1);
	assert_int_equal(r.status, MBSHM_ST_UNAVAIL);
	assert_int_equal(mbshm_guest_response(c->base, &c->g, 1, EPOCH, &r), 1);
	chan_free(c);
}

/* A guest scribbling over the host's fields fools only itself: the host
 * rewrites them, and its own copy of the layout never changes. */
static void test_scribbled_header(void **state)
{
	struct chan *c = chan_new(0);
	struct mbshm_layout g;
	struct mbshm_response r;
	struct mbshm_rsp_slot *rs;
	char err[200];

	(void)state;
	memset(c->base, 0xa5, MBSHM_GUEST_OFF);
	assert_int_equal(mbshm_guest_attach(c->base, SIZE, &g, err,
					    sizeof(err)), -1);
	mbshm_host_publish(c->base, &c->l, &c->h);
	assert_int_equal(mbshm_guest_attach(c->base, SIZE, &g, err,
					    sizeof(err)), 0);
	assert_memory_equal(&g, &c->l, sizeof(g));

	/* A response slot whose lock the guest left odd and huge. */
	rs = (struct mbshm_rsp_slot *)((char *)c->base + c->l.rsp_off);
	rs->lock = 0xffffffffU;
	rs->len = 0xffffffffU;
	mbshm_host_respond(c->base, &c->l, 0, EPOCH, MBSHM_ST_OK, 0, "x", 1);
	assert_int_equal(rs->lock & 1, 0);
	c->h.cmd_cons = 1;
	mbshm_host_set_cons(c->base, 1);
	assert_int_equal(mbshm_guest_response(c->base, &c->g, 0, EPOCH, &r),
			 1);
	assert_string_equal(r.msg, "x");
	/* A length past the slot is cut on the host side too. */
	{
		char *big = malloc(10000);

		memset(big, 'm', 10000);
		mbshm_host_respond(c->base, &c->l, 1, EPOCH, MBSHM_ST_OK, 0,
				   big, 10000);
		c->h.cmd_cons = 2;
		mbshm_host_set_cons(c->base, 2);
		assert_int_equal(mbshm_guest_response(c->base, &c->g, 1,
						      EPOCH, &r), 1);
		assert_int_equal(r.len, MBSHM_RSP_MSG_MAX);
		free(big);
	}
	chan_free(c);
}

static void test_stats(void **state)
{
	struct chan *c = chan_new(0);
	struct mbshm_stats_entry e[3], out[3];
	struct mbshm_stats_hdr *h;
	__u64 updated = 0;

	(void)state;
	memset(e, 0, sizeof(e));
	e[0].mac[5] = 1;
	e[0].rx_packets = 10;
	e[1].mac[5] = 2;
	e[1].flags = MBSHM_SF_REGISTERED;
	e[1].fw_drop_bytes = 1ULL << 40;
	mbshm_host_stats(c->base, &c->l, e, 2, 1234);
	assert_int_equal(mbshm_guest_stats(c->base, &c->g, out, 3, &updated),
			 2);
	assert_int_equal(updated, 1234);
	assert_memory_equal(out, e, 2 * sizeof(e[0]));
	/* Fewer wanted than there are. */
	assert_int_equal(mbshm_guest_stats(c->base, &c->g, out, 1, &updated),
			 1);
	/* A count past the page is bounded by the reader. */
	h = (struct mbshm_stats_hdr *)((char *)c->base + c->l.stats_off);
	h->count = 0xffffffffU;
	assert_int_equal(mbshm_guest_stats(c->base, &c->g, out, 3, &updated),
			 3);
	chan_free(c);
}

/* --- Races -------------------------------------------------------------- */

struct racer {
	struct chan *c;
	volatile int stop;
	unsigned long writes;
};

static void *scribble(void *arg)
{
	struct racer *r = arg;
	struct mbshm_cmd_slot *s = slot_of(r->c, 0);
	unsigned int x = 12345;
	static const char *texts[] = {
		REG, "@X 52:34:56:00:12:22@", "@@", "garbage\x01\x02",
		"@A 52:34:56:00:12:22 T 13 s 1024-65535 d 80 p udp@",
	};

	while (!r->stop) {
		const char *t = texts[(x >> 8) % 5];

		x = x * 1103515245 + 12345;
		/* Lengths within and past the slot, bytes mid-change. */
		__atomic_store_n(&s->len, (x & 1) ? (__u32)strlen(t) : x % 400,
				 __ATOMIC_RELAXED);
		memcpy(s->text, t, strlen(t));
		if (x & 4)
			s->text[x % 40] = (char)(x >> 16);
		__atomic_store_n(&s->seq, (x & 2) ? 0 : x, __ATOMIC_RELAXED);
		r->writes++;
		/* Now and then leave a whole command there for a while. */
		if ((x & 7) == 3) {
			volatile int spin;

			for (spin = 0; spin < 2000; spin++)
				;
		}
	}
	return NULL;
}

/* The host reads a slot that the guest keeps changing: every fetch is one
 * consistent private copy, checked as a whole, whatever it holds. */
static void test_racing_writer(void **state)
{
	struct racer r = { .c = chan_new(0) };
	unsigned long ok = 0, bad = 0, parsed = 0;
	char msg[MB_ERR_LEN], back[MB_CMD_MAX_LEN + 1];
	struct mbshm_fetched f;
	struct mb_cmd cmd;
	pthread_t t;
	int i;

	(void)state;
	assert_int_equal(pthread_create(&t, NULL, scribble, &r), 0);
	for (i = 0; i < 200000; i++) {
		mbshm_host_fetch(r.c->base, &r.c->l, 0, &f);
		if (f.status != MBSHM_ST_OK) {
			assert_int_equal(f.status, MBSHM_ST_BADSLOT);
			bad++;
			continue;
		}
		ok++;
		assert_true(f.len <= MBSHM_CMD_TEXT_MAX);
		assert_int_equal(f.text[f.len], '\0');
		if (mbshm_host_parse(&f, &cmd, msg, sizeof(msg)) ==
		    MBSHM_ST_OK) {
			/* What parsed is a whole command: it formats. */
			assert_true(mb_cmd_format(&cmd, back, sizeof(back)) > 0);
			parsed++;
		}
	}
	r.stop = 1;
	pthread_join(t, NULL);
	print_message("racing writer: %lu writes, %lu fetched, %lu bad slots, %lu parsed\n",
		      r.writes, ok, bad, parsed);
	assert_true(ok + bad == 200000);
	chan_free(r.c);
}

static void *respond_loop(void *arg)
{
	struct racer *r = arg;
	char msg[64];
	__u32 seq;

	/* Rewrites slot 0 as seq 0, 64, 128, ...; the message names seq. */
	for (seq = 0; !r->stop; seq += MBSHM_RSP_SLOTS) {
		int n = snprintf(msg, sizeof(msg), "response-%u-end", seq);

		mbshm_host_respond(r->c->base, &r->c->l, seq, EPOCH,
				   MBSHM_ST_OK, 0, msg, (size_t)n);
		r->writes++;
	}
	return NULL;
}

/* The guest reads a response slot the host keeps rewriting: every read it
 * accepts is one whole response, never a mix of two. */
static void test_racing_response(void **state)
{
	struct racer r = { .c = chan_new(0) };
	struct mbshm_response resp;
	unsigned long got = 0, busy = 0;
	char want[64];
	pthread_t t;
	int i, ret;

	(void)state;
	assert_int_equal(pthread_create(&t, NULL, respond_loop, &r), 0);
	while (!__atomic_load_n(&r.writes, __ATOMIC_RELAXED))
		sched_yield();
	for (i = 0; i < 200000; i++) {
		ret = mbshm_read_rsp_slot(r.c->base, &r.c->g, 0, &resp);
		if (ret == -EBUSY) {
			busy++;
			continue;
		}
		if (ret == 0)
			continue;
		assert_int_equal(ret, 1);
		snprintf(want, sizeof(want), "response-%u-end", resp.seq);
		assert_string_equal(resp.msg, want);
		got++;
	}
	r.stop = 1;
	assert_true(got > 0);
	pthread_join(t, NULL);
	print_message("racing response: %lu host writes, %lu whole reads, %lu busy\n",
		      r.writes, got, busy);
	chan_free(r.c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout),
		cmocka_unit_test(test_attach),
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_wrap),
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_hostile_prod),
		cmocka_unit_test(test_hostile_slot),
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_epoch),
		cmocka_unit_test(test_cons_held_back),
		cmocka_unit_test(test_scribbled_header),
		cmocka_unit_test(test_stats),
		cmocka_unit_test(test_racing_writer),
		cmocka_unit_test(test_racing_response),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
