// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * libFuzzer target: the host side of the shared-memory channel
 * (common/shmproto.c) as mbhostd drives it, against a hostile guest that
 * the input plays.
 *
 * The shared memory is a heap buffer of exactly the layout's size
 * (MBSHM_MIN_SIZE), and the bytes no part of the layout covers (the end of
 * the header's host part, the rest of the header page after the guest
 * part, the tail after the counters page) are poisoned, so AddressSanitizer
 * stops a host that reads or writes outside the memory or outside the
 * layout. The host is a copy of mbhostd's loop (host_reader/mbhostd.c:
 * start_vm, process_vm, handle_one, apply, query, answer, commit, publish,
 * publish_header, tick, publish_stats) with the netlink registry and the
 * state file replaced by switches the input sets per pass. Its rsp_rec
 * array has mbhostd's BATCH + 2 entries, on the heap.
 *
 * Input (every part may be cut short; what is missing is zero, or left
 * out):
 *
 *   byte 0      bit 0: the memory was formatted by an earlier host (magic
 *               present, the host starts at the guest's index); bits 4-7:
 *               burst of the token bucket, 1 + 7 * value
 *   bytes 1-4   the guest's cmd_prod at start
 *   bytes 5-8   the host's first epoch
 *   then ops, one byte each (kind = op >> 5, arg = op & 31) and operands:
 *     0 WRITE    u16 offset, u8 length, bytes: the guest writes them into
 *                region arg & 7 (0 guest part, 1 command ring, 2 header
 *                host part, 3 response ring, 4-7 counters page), the
 *                offset taken modulo the region (times 2 in the response
 *                ring), the length cut at its end
 *     1 PROD     arg & 16: cmd_prod = u32 operand; else cmd_prod += arg - 4
 *     2 SUBMIT   u8 length, text: a slot written the way mbctl does
 *                (seq = cmd_prod, len, text) and, unless arg & 1,
 *                published (cmd_prod + 1); arg & 2: len field + 256
 *     3 STEP     one pass of process_vm(); arg bit 0 registry missing,
 *                bit 1 the kernel refuses, bit 2 state file writes fail,
 *                bits 3-4 the clock advances 0, 20, 100 or 1000 ms first
 *     4 TICK     the once-a-second work: heartbeat, header, counters
 *     5 RESTART  mbhostd restarts: arg & 1 without its state file (new
 *                epoch), else with it (as last saved)
 *     6 DRAIN    passes, a second apart, until nothing is pending (at most
 *                8)
 *     7 CANNED   SUBMIT of one of the commands of canned[] (arg)
 *   at the end one more pass.
 *
 * Checks, after every host operation:
 *  - every byte the host changed lies in a field it owns and wrote in that
 *    operation (the header's host fields, the response slots of the
 *    commands it answered up to their message's length, the counters page
 *    up to its entries); the guest part and the command ring are never
 *    written, except cmd_prod = 0 when a host formats fresh memory;
 *  - a fetched command is the bytes of the slot of its sequence number as
 *    they were before the pass: status OK with seq and len as in the slot,
 *    len within the slot, the text equal and NUL-terminated; or BADSLOT,
 *    exactly when the slot's seq or len is wrong, with a sentence;
 *  - a pass takes nothing when cmd_prod is more than cmd_slots ahead of
 *    the host or behind it (and says BAD_PROD), else answers at most
 *    min(pending, BATCH) commands, in order: the consumer index moves
 *    forward by the number answered, never back, never past cmd_prod;
 *  - each answer's status is the one the slot's bytes call for (BADSLOT,
 *    PARSE, PERM for a MAC the VM does not own; OK only for a command that
 *    parses and names one of the VM's MACs), or RATELIMIT; every refusal
 *    carries a non-empty sentence;
 *  - once published, each answer is in the response slot of its sequence
 *    number, read back with the guest's seqlock reader: seq, status,
 *    error, epoch, length and message as answered, the lock even and not
 *    0; cmd_cons, whenever the host writes it (header or index), is the
 *    first command whose answer is not in the ring: never past an answer
 *    a failed state write holds back (mbhostd's once-a-second header did
 *    that until fuzz_shm found it), never behind one that is there;
 *  - after a header publication the guest accepts the header
 *    (mbshm_guest_attach()) with the host's layout and reads the host's
 *    epoch, heartbeat, status and index; after a tick the guest reads the
 *    counters the host wrote.
 *
 *   make fuzz FUZZ_SECONDS=60 (all targets), or by hand:
 *   bin/fuzz/fuzz_shm -max_len=4096 CORPUS_COPY tests/fuzz/corpus/shm
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sanitizer/asan_interface.h>

#include <mbvisor/cmd.h>
#include <mbvisor/shmproto.h>

#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);

/* As in host_reader/mbhostd.c. */
#define BATCH			16
#define RATELIMIT_PAUSE_MS	100
#define RATE			50.0

#define SHM_SIZE	MBSHM_MIN_SIZE
#define HOST_HDR_END	sizeof(struct mbshm_header)
#define GUEST_END	(MBSHM_GUEST_OFF + sizeof(struct mbshm_guest))
#define MAX_OPS		200
#define NMACS		2

static const __u8 vm_macs[NMACS][MB_ETH_ALEN] = {
	{ 0x52, 0x34, 0x56, 0x00, 0x12, 0x22 },
	{ 0x52, 0x34, 0x56, 0x00, 0x12, 0x23 },
};

static const char *const canned[32] = {
	"@R F 52:34:56:00:12:22 10.129.126.115@",
	"@Q 52:34:56:00:12:22@",
	"@A 52:34:56:00:12:22 I 4 s 10.0.0.0/24@",
	"@D 52:34:56:00:12:22 I 4 s@",
	"@X 52:34:56:00:12:22@",
	"@A 52:34:56:00:12:23@",
	"@D 52:34:56:00:12:23@",
	"@Q 52:34:56:00:12:23@",
	" \t@R L 52:34:56:00:12:23 10.0.0.1 1 192.168.1.7 10.0.0.9@ ",
	"@A 52:34:56:00:12:22 T 13 s 1024-65535 d 80 p udp@",
	"@A 52:34:56:00:12:22 M 5 s 12:13:14:15:16:17 p 8@",
	"@A 52:34:56:00:12:22 L 10.0.0.10 weight 2@",
	"@R F 52:34:56:00:12:99 10.0.0.1@",		/* not the VM's */
	"@Q 02:00:00:00:00:01@",			/* not the VM's */
	"R F 52:34:56:00:12:22 10.0.0.1",		/* no framing */
	"@R F 52:34:56:00:12:22 10.0.0.1",		/* no closing @ */
	"@@X 52:34:56:00:12:22@@",
	"@Q 52:34:56:00:12:22@\n",
	"@Q 52:34:56:00:12:22\0@",
	"",
	"   ",
	"@",
	"@A 52:34:56:00:12:22 I 4 s 10.0.0.5/24@",
	"@A 52:34:56:00:12:22 L 10.0.0.10 weight 1001@",
	"@X 00:00:00:00:00:00@",
	"@Q 53:34:56:00:12:22@",
	"@D 52:34:56:00:12:22 T 13 p s d 1-65535@",
	"@A 52:34:56:00:12:22 I 15 s 10.1.0.0/16 d 192.168.1.1 t 0xb8 p tcp@",
	"@D 52:34:56:00:12:22 M 12 d 02:00:00:00:00:01 s@",
	"@A 52:34:56:00:12:22 M 1 p 0x88B5@",
	"@A 52:34:56:00:12:23 I 3 t 255 p 250@",
	"@R L 52:34:56:00:12:22 10.0.0.1 0 0.0.0.0 10.0.0.9 mac 02:00:00:00:00:09 weight 3@",
};

/* --- The host: mbhostd's per-VM state and loop, without netlink ------ */

struct rsp_rec {
	__u32 seq;
	int status;
	int error;
	size_t len;
	char msg[MBSHM_RSP_MSG_MAX + 1];
};

struct saved {			/* what the state file holds */
	int valid;
	__u64 epoch;
	__u32 next;
	int pending;
	__u32 pending_seq;
	size_t nunpub;
	struct rsp_rec unpub[BATCH + 2];
};

struct vm {
	void *base;
	struct mbshm_layout l;
	__u64 epoch, heartbeat;
	__u32 next;
	__u32 host_status;
	int pending;
	__u32 pending_seq;
	struct rsp_rec *unpub;		/* BATCH + 2, as mbhostd's */
	size_t nunpub;
	uint64_t resume_at;
	double tokens, burst;
	uint64_t refill_at;
	unsigned long limited, limited_logged;
	/* switches of the current pass */
	int no_registry, refuse, save_fails;
	struct saved saved;
};

/* What the checks learn from the host operation that just ran. */
struct range {
	size_t a, b;
};
#define MAX_RANGES	256

struct ans {			/* an answer as handle_one() gave it */
	__u32 seq;
	int status;
};

static struct {
	struct range r[MAX_RANGES];
	size_t nr;
	int header;		/* publish_header() ran */
	int stats;
	struct ans ans[BATCH + 4];
	size_t nans;
	struct rsp_rec pub[2 * (BATCH + 2)];
	size_t npub;
	int cons_set;		/* cmd_cons was written, with cons */
	__u32 cons;
} op;

/* Answers before this one are in the ring (counted by do_respond()). */
static __u32 ring_next;

/* cmd_cons, as written: never past an answer that is not in the ring
 * (a guest would take an old slot for its answer, and a restarted host
 * would answer the command again), never behind one that is. */
static void check_cons(__u32 cons)
{
	CHECK(cons == ring_next);
}

static uint8_t *shm, *shadow, *before;
static struct rsp_rec *unpub;	/* mbhostd's BATCH + 2, on the heap */
static uint64_t now;

static void allow(size_t a, size_t b)
{
	CHECK(op.nr < MAX_RANGES);
	op.r[op.nr].a = a;
	op.r[op.nr].b = b;
	op.nr++;
}

static size_t rsp_slot_off(const struct mbshm_layout *l, __u32 seq)
{
	return l->rsp_off + (size_t)(seq & (l->rsp_slots - 1)) *
	       l->rsp_slot_size;
}

static size_t cmd_slot_off(const struct mbshm_layout *l, __u32 seq)
{
	return l->cmd_off + (size_t)(seq & (l->cmd_slots - 1)) *
	       l->cmd_slot_size;
}

static __u32 published_cons(const struct vm *vm)
{
	return vm->nunpub ? vm->unpub[0].seq : vm->next;
}

/* The shmproto.c calls, recording what each may write. */
static void do_publish_header(struct vm *vm)
{
	struct mbshm_host_view h = {
		.flags = 0,
		.host_peer = MBSHM_NO_PEER,
		.host_vector = 0,
		.host_status = vm->host_status,
		.epoch = vm->epoch,
		.heartbeat = vm->heartbeat,
		.cmd_cons = published_cons(vm),
	};

	allow(0, offsetof(struct mbshm_header, reserved0));
	allow(offsetof(struct mbshm_header, epoch),
	      offsetof(struct mbshm_header, reserved1));
	check_cons(h.cmd_cons);
	mbshm_host_publish(vm->base, &vm->l, &h);
	op.header = 1;
	op.cons_set = 1;
	op.cons = h.cmd_cons;
}

static void do_respond(struct vm *vm, const struct rsp_rec *r)
{
	size_t off = rsp_slot_off(&vm->l, r->seq);

	allow(off, off + offsetof(struct mbshm_rsp_slot, reserved));
	allow(off + offsetof(struct mbshm_rsp_slot, epoch),
	      off + MBSHM_RSP_HDR + r->len);
	mbshm_host_respond(vm->base, &vm->l, r->seq, vm->epoch, r->status,
			   r->error, r->msg, r->len);
	if (r->seq == ring_next)
		ring_next++;
	CHECK(op.npub < sizeof(op.pub) / sizeof(op.pub[0]));
	op.pub[op.npub++] = *r;
}

static void do_set_cons(struct vm *vm)
{
	CHECK(vm->nunpub == 0);
	allow(offsetof(struct mbshm_header, cmd_cons),
	      offsetof(struct mbshm_header, reserved1));
	check_cons(vm->next);
	mbshm_host_set_cons(vm->base, vm->next);
	op.cons_set = 1;
	op.cons = vm->next;
}

static void do_fetch(struct vm *vm, __u32 seq, struct mbshm_fetched *f)
{
	struct mbshm_cmd_slot s;
	size_t off = cmd_slot_off(&vm->l, seq);
	size_t text_max = vm->l.cmd_slot_size - MBSHM_CMD_HDR;

	mbshm_host_fetch(vm->base, &vm->l, seq, f);
	/* the slot as it was before the pass (the guest does not run
	 * during one) */
	memcpy(&s, before + off, sizeof(s));
	CHECK(f->seq == seq);
	CHECK(memchr(f->msg, '\0', sizeof(f->msg)));
	if (s.seq != seq || s.len > text_max) {
		CHECK(f->status == MBSHM_ST_BADSLOT);
		CHECK(f->msg[0] != '\0');
		CHECK(f->len == 0);
		return;
	}
	CHECK(f->status == MBSHM_ST_OK);
	CHECK(f->msg[0] == '\0');
	CHECK(f->len == s.len && f->len <= MBSHM_CMD_TEXT_MAX);
	CHECK(!memcmp(f->text, before + off + MBSHM_CMD_HDR, f->len));
	CHECK(f->text[f->len] == '\0');
}

static void do_stats(struct vm *vm)
{
	struct mbshm_stats_entry e[NMACS];
	size_t i;

	memset(e, 0, sizeof(e));
	for (i = 0; i < NMACS; i++) {
		memcpy(e[i].mac, vm_macs[i], MB_ETH_ALEN);
		e[i].flags = MBSHM_SF_REGISTERED;
		e[i].rx_packets = vm->heartbeat * (i + 1);
	}
	allow(vm->l.stats_off, vm->l.stats_off + 16);
	allow(vm->l.stats_off + sizeof(struct mbshm_stats_hdr),
	      vm->l.stats_off + sizeof(struct mbshm_stats_hdr) +
	      NMACS * sizeof(e[0]));
	mbshm_host_stats(vm->base, &vm->l, e, NMACS, vm->heartbeat);
	op.stats = 1;
}

static int state_save(struct vm *vm)
{
	if (vm->save_fails)
		return -1;
	vm->saved.valid = 1;
	vm->saved.epoch = vm->epoch;
	vm->saved.next = vm->next;
	vm->saved.pending = vm->pending;
	vm->saved.pending_seq = vm->pending_seq;
	vm->saved.nunpub = vm->nunpub;
	memcpy(vm->saved.unpub, vm->unpub, vm->nunpub * sizeof(*vm->unpub));
	return 0;
}

static void add_unpub(struct vm *vm, __u32 seq, int status, int error,
		      const char *msg)
{
	struct rsp_rec *r = &vm->unpub[vm->nunpub++];	/* as mbhostd */

	r->seq = seq;
	r->status = status;
	r->error = error;
	r->len = strlen(msg);
	if (r->len > MBSHM_RSP_MSG_MAX)
		r->len = MBSHM_RSP_MSG_MAX;
	memcpy(r->msg, msg, r->len);
	r->msg[r->len] = '\0';
}

static void publish(struct vm *vm)
{
	size_t i;

	if (!vm->nunpub)
		return;
	for (i = 0; i < vm->nunpub; i++)
		do_respond(vm, &vm->unpub[i]);
	vm->nunpub = 0;
	do_set_cons(vm);
}

static int commit(struct vm *vm)
{
	if (state_save(vm))
		return -1;
	publish(vm);
	return 0;
}

static int trace;		/* FUZZ_SHM_TRACE=1: every answer on stderr */

static void answer(struct vm *vm, int status, int error, const char *msg)
{
	if (trace)
		fprintf(stderr, "answer %u: %s (%d): %.100s\n", vm->next,
			mbshm_status_name(status), error, msg);
	CHECK(op.nans < sizeof(op.ans) / sizeof(op.ans[0]));
	op.ans[op.nans].seq = vm->next;
	op.ans[op.nans].status = status;
	op.nans++;
	add_unpub(vm, vm->next, status, error, msg);
	vm->next++;
}

static int take_token(struct vm *vm)
{
	vm->tokens += (double)(now - vm->refill_at) * RATE / 1000.0;
	if (vm->tokens > vm->burst)
		vm->tokens = vm->burst;
	vm->refill_at = now;
	if (vm->tokens < 1.0)
		return 0;
	vm->tokens -= 1.0;
	return 1;
}

static const char *unavailable(void)
{
	return "the host's registry is not available (Generic Netlink family mbstate not found: is mbstate.ko loaded?); nothing was changed";
}

static int vm_owns(const __u8 *mac)
{
	size_t i;

	for (i = 0; i < NMACS; i++)
		if (!memcmp(vm_macs[i], mac, MB_ETH_ALEN))
			return 1;
	return 0;
}

/* Q: the state as lines; long enough to fill a slot when the input says
 * so (seq & 7 == 7), to reach the cut at the slot's end. */
static int query(const struct mb_cmd *cmd, __u32 seq, char *out, size_t max)
{
	char text[MB_CMD_MAX_LEN + 1];
	size_t len;

	if (mb_cmd_format(cmd, text, sizeof(text)) < 0)
		return MBSHM_ST_INTERNAL;
	len = (size_t)snprintf(out, max, "%s\n", text);
	while ((seq & 7) == 7 && len + 64 < max) {
		memset(out + len, 'A', 63);
		out[len + 63] = '\n';
		len += 64;
		out[len] = '\0';
	}
	snprintf(out + len, max - len, "# enabled, 0 rules");
	return MBSHM_ST_OK;
}

static void apply(struct vm *vm, const struct mb_cmd *cmd)
{
	char text[MB_CMD_MAX_LEN + 1], msg[MB_CMD_MAX_LEN + 16];

	if (vm->no_registry) {
		answer(vm, MBSHM_ST_UNAVAIL, ENOENT, unavailable());
		return;
	}
	if (mb_cmd_format(cmd, text, sizeof(text)) < 0) {
		answer(vm, MBSHM_ST_INTERNAL, EINVAL,
		       "the host cannot format this command");
		return;
	}
	vm->pending = 1;
	vm->pending_seq = vm->next;
	if (commit(vm)) {
		vm->pending = 0;
		answer(vm, MBSHM_ST_INTERNAL, EIO,
		       "the host cannot record the command in its state file; nothing was changed");
		return;
	}
	if (!vm->refuse) {
		snprintf(msg, sizeof(msg), "ok: %s", text);
		answer(vm, MBSHM_ST_OK, 0, msg);
	} else {
		answer(vm, MBSHM_ST_REFUSED, EEXIST,
		       "the middlebox already has this rule");
	}
	vm->pending = 0;
	commit(vm);
}

static void handle_one(struct vm *vm)
{
	char msg[MBSHM_RSP_MSG_MAX + 1];
	struct mbshm_fetched f;
	struct mb_cmd cmd;
	int st;

	do_fetch(vm, vm->next, &f);
	if (!take_token(vm)) {
		snprintf(msg, sizeof(msg),
			 "Rate limited: more than %g commands per second (bursts of %g); the command was not applied, retry later",
			 RATE, vm->burst);
		vm->limited++;
		answer(vm, MBSHM_ST_RATELIMIT, EBUSY, msg);
		return;
	}
	if (f.status != MBSHM_ST_OK) {
		answer(vm, f.status, EINVAL, f.msg);
		return;
	}
	memset(msg, 'x', sizeof(msg));
	st = mbshm_host_parse(&f, &cmd, msg, sizeof(msg));
	CHECK(st == MBSHM_ST_OK || st == MBSHM_ST_PARSE);
	CHECK(memchr(msg, '\0', sizeof(msg)));
	if (st != MBSHM_ST_OK) {
		CHECK(msg[0] != '\0');
		answer(vm, st, EINVAL, msg);
		return;
	}
	if (!vm_owns(cmd.mac)) {
		answer(vm, MBSHM_ST_PERM, EPERM,
		       "Permission denied: this is not a MAC address of VM `fuzz'; a VM may only change its own middleboxes");
		return;
	}
	if (cmd.op == MB_OP_QUERY) {
		if (vm->no_registry) {
			answer(vm, MBSHM_ST_UNAVAIL, ENOENT, unavailable());
			return;
		}
		st = query(&cmd, vm->next, msg, sizeof(msg));
		answer(vm, st, 0, st ? "the host cannot format this command"
				     : msg);
		return;
	}
	apply(vm, &cmd);
}

/* process_vm(): true if more are waiting. */
static int process_vm(struct vm *vm)
{
	int n, i;

	if (now < vm->resume_at)
		return 0;
	if (vm->nunpub && commit(vm)) {
		vm->resume_at = now + 1000;
		return 0;
	}
	n = mbshm_host_pending(vm->base, &vm->l, vm->next);
	if (n < 0) {
		if (vm->host_status != MBSHM_HS_BAD_PROD) {
			vm->host_status = MBSHM_HS_BAD_PROD;
			do_publish_header(vm);
		}
		return 0;
	}
	if (vm->host_status != MBSHM_HS_OK) {
		vm->host_status = MBSHM_HS_OK;
		do_publish_header(vm);
	}
	for (i = 0; i < n && i < BATCH; i++)
		handle_one(vm);
	if (vm->nunpub)
		commit(vm);
	if (vm->limited != vm->limited_logged) {
		vm->resume_at = now + RATELIMIT_PAUSE_MS;
		vm->limited_logged = vm->limited;
		return 0;
	}
	return n > BATCH;
}

static void tick(struct vm *vm)
{
	vm->heartbeat++;
	do_publish_header(vm);
	do_stats(vm);
}

/* start_vm(), from "no saved state" (@fresh) or the last saved one. */
static void start_vm(struct vm *vm, int fresh, __u64 new_epoch)
{
	const struct mbshm_header *H = vm->base;
	size_t i, n;

	vm->pending = 0;
	vm->nunpub = 0;
	vm->host_status = MBSHM_HS_OK;
	if (!vm->saved.valid)
		fresh = 1;
	if (!fresh) {
		vm->epoch = vm->saved.epoch;
		vm->next = vm->saved.next;
		vm->pending = vm->saved.pending;
		vm->pending_seq = vm->saved.pending_seq;
		vm->nunpub = vm->saved.nunpub;
		memcpy(vm->unpub, vm->saved.unpub,
		       vm->nunpub * sizeof(*vm->unpub));
		if (__atomic_load_n(&H->magic, __ATOMIC_ACQUIRE) !=
		    MBSHM_MAGIC ||
		    __atomic_load_n(&H->epoch, __ATOMIC_RELAXED) != vm->epoch) {
			vm->next = mbshm_host_prod(vm->base);
			vm->nunpub = 0;
			if (vm->pending)
				vm->pending_seq = vm->next;
		}
	} else {
		vm->epoch = new_epoch;
		if (__atomic_load_n(&H->magic, __ATOMIC_ACQUIRE) ==
		    MBSHM_MAGIC) {
			vm->next = mbshm_host_prod(vm->base);
		} else {
			vm->next = 0;
			allow(MBSHM_GUEST_OFF, MBSHM_GUEST_OFF + 4);
			mbshm_set_prod(vm->base, 0);
		}
	}
	vm->tokens = vm->burst;
	vm->refill_at = now;
	vm->resume_at = 0;
	vm->limited_logged = vm->limited;
	n = vm->nunpub;
	vm->nunpub = 0;
	ring_next = vm->next - (__u32)n;	/* a new process: the saved
						 * answers go in again */
	for (i = 0; i < n; i++)
		do_respond(vm, &vm->unpub[i]);
	do_publish_header(vm);
	/* resolve_pending(), with the registry gone: the command's effect
	 * went with it */
	if (vm->pending) {
		vm->pending = 0;
		if (vm->pending_seq == vm->next)
			answer(vm, MBSHM_ST_UNAVAIL, ENOENT, unavailable());
	}
	if (state_save(vm) == 0) {
		publish(vm);
		do_set_cons(vm);
	}
}

/* --- The checks around each host operation ---------------------------- */

/* The parts of the memory that the layout covers (the rest is poisoned). */
static const struct range live[] = {
	{ 0, HOST_HDR_END },
	{ MBSHM_GUEST_OFF, GUEST_END },
	{ MBSHM_HEADER_SIZE, 0 /* stats end, set at init */ },
};
static size_t live_end;

/* [a, b) lies in one range the host may write. */
static int allowed_range(size_t a, size_t b)
{
	size_t i;

	for (i = 0; i < op.nr; i++)
		if (a >= op.r[i].a && b <= op.r[i].b)
			return 1;
	return 0;
}

static int allowed(size_t off)
{
	return allowed_range(off, off + 1);
}

/* Every byte the host changed is one it may write; the shadow follows. */
static void check_writes(void)
{
	size_t i, a, b, c, k;

	for (i = 0; i < 3; i++) {
		a = live[i].a;
		b = i == 2 ? live_end : live[i].b;
		for (c = a; c < b; c += 64) {
			size_t e = c + 64 < b ? c + 64 : b;

			/* whole pages first: most of the memory is the same */
			if (!(c & 4095) && b - c >= 4096 &&
			    !memcmp(shm + c, shadow + c, 4096)) {
				c += 4096 - 64;
				continue;
			}
			if (!memcmp(shm + c, shadow + c, e - c))
				continue;
			if (allowed_range(c, e)) {
				memcpy(shadow + c, shm + c, e - c);
				continue;
			}
			for (k = c; k < e; k++)
				if (shm[k] != shadow[k]) {
					if (!allowed(k))
						fprintf(stderr,
							"host wrote byte %zu\n",
							k);
					CHECK(allowed(k));
				}
			memcpy(shadow + c, shm + c, e - c);
		}
	}
}

/* What the slot's bytes (before the pass) call for. */
static int expected_status(const struct vm *vm, __u32 seq, int *maybe_ok)
{
	size_t off = cmd_slot_off(&vm->l, seq);
	struct mbshm_cmd_slot s;
	char text[MBSHM_CMD_TEXT_MAX + 1];
	struct mb_cmd cmd;
	size_t i = 0;

	*maybe_ok = 0;
	memcpy(&s, before + off, sizeof(s));
	if (s.seq != seq || s.len > vm->l.cmd_slot_size - MBSHM_CMD_HDR)
		return MBSHM_ST_BADSLOT;
	memcpy(text, before + off + MBSHM_CMD_HDR, s.len);
	while (i < s.len && (text[i] == ' ' || text[i] == '\t'))
		i++;
	if (i == s.len || text[i] != '@')
		return MBSHM_ST_PARSE;
	if (mb_cmd_parse(text, s.len, &cmd, NULL, 0))
		return MBSHM_ST_PARSE;
	if (!vm_owns(cmd.mac))
		return MBSHM_ST_PERM;
	*maybe_ok = 1;
	return MBSHM_ST_OK;
}

static void check_header(const struct vm *vm)
{
	struct mbshm_layout g;
	struct mbshm_header h;
	char err[200];

	CHECK(mbshm_guest_attach(vm->base, SHM_SIZE, &g, err,
				 sizeof(err)) == 0);
	CHECK(g.size == vm->l.size && g.cmd_off == vm->l.cmd_off &&
	      g.cmd_slots == vm->l.cmd_slots &&
	      g.cmd_slot_size == vm->l.cmd_slot_size &&
	      g.rsp_off == vm->l.rsp_off && g.rsp_slots == vm->l.rsp_slots &&
	      g.rsp_slot_size == vm->l.rsp_slot_size &&
	      g.stats_off == vm->l.stats_off &&
	      g.stats_size == vm->l.stats_size);
	mbshm_read_header(vm->base, &h);
	CHECK(h.magic == MBSHM_MAGIC && h.version == MBSHM_VERSION);
	CHECK(h.epoch == vm->epoch && h.heartbeat == vm->heartbeat);
	CHECK(h.host_status == vm->host_status);
	CHECK(h.cmd_cons == op.cons);
	CHECK(h.flags == 0 && h.host_peer == MBSHM_NO_PEER);
}

static void check_published(const struct vm *vm)
{
	struct mbshm_response *out = malloc(sizeof(*out));
	size_t i, j;

	CHECK(out);
	for (i = 0; i < op.npub; i++) {
		const struct rsp_rec *r = &op.pub[i];
		const struct mbshm_rsp_slot *s = (const void *)
			(shm + rsp_slot_off(&vm->l, r->seq));
		int later = 0;

		CHECK(r->status >= 0 && r->status < __MBSHM_ST_MAX);
		CHECK(r->status == MBSHM_ST_OK || r->len > 0);
		CHECK(r->len <= MBSHM_RSP_MSG_MAX);
		for (j = i + 1; j < op.npub; j++)
			if (!((op.pub[j].seq ^ r->seq) & (vm->l.rsp_slots - 1)))
				later = 1;
		if (later)
			continue;
		CHECK(s->lock && !(s->lock & 1));
		CHECK(mbshm_read_rsp_slot(vm->base, &vm->l, r->seq, out) == 1);
		CHECK(out->seq == r->seq && out->status == r->status &&
		      out->error == r->error && out->epoch == vm->epoch);
		CHECK(out->len == r->len && !memcmp(out->msg, r->msg, r->len));
		CHECK(out->msg[out->len] == '\0');
	}
	free(out);
}

static void check_stats(const struct vm *vm)
{
	struct mbshm_stats_entry e[NMACS + 1];
	__u64 updated = 0;
	size_t i;

	CHECK(mbshm_guest_stats(vm->base, &vm->l, e, NMACS + 1,
				&updated) == NMACS);
	CHECK(updated == vm->heartbeat);
	for (i = 0; i < NMACS; i++)
		CHECK(!memcmp(e[i].mac, vm_macs[i], MB_ETH_ALEN) &&
		      e[i].rx_packets == vm->heartbeat * (i + 1));
}

static void op_begin(void)
{
	memset(&op, 0, offsetof(typeof(op), ans));
	op.nans = op.npub = 0;
	op.cons_set = 0;
	/* what the checks read of the guest's parts as they were */
	memcpy(before + MBSHM_GUEST_OFF, shadow + MBSHM_GUEST_OFF,
	       GUEST_END - MBSHM_GUEST_OFF);
	memcpy(before + MBSHM_HEADER_SIZE, shadow + MBSHM_HEADER_SIZE,
	       MBSHM_CMD_SLOTS * MBSHM_CMD_SLOT_SIZE);
}

static void op_end(const struct vm *vm)
{
	check_writes();
	if (op.npub)
		check_published(vm);
	if (op.header)
		check_header(vm);
	if (op.cons_set)
		CHECK(__atomic_load_n(&((struct mbshm_header *)shm)->cmd_cons,
				      __ATOMIC_ACQUIRE) == op.cons);
	if (op.stats)
		check_stats(vm);
	CHECK(vm->nunpub <= BATCH + 2);
}

/* One pass, with its checks. */
static int host_step(struct vm *vm)
{
	__u32 prod, old_next = vm->next;
	__u32 ahead;
	size_t i;
	int ret, paused = now < vm->resume_at, maybe_ok, want;
	/* answers the state file could not take block the ring */
	int blocked = !paused && vm->nunpub && vm->save_fails;

	op_begin();
	memcpy(&prod, before + MBSHM_GUEST_OFF, sizeof(prod));
	ahead = prod - old_next;
	ret = process_vm(vm);
	op_end(vm);

	if (blocked) {
		CHECK(op.nans == 0 && vm->next == old_next);
		CHECK(vm->resume_at == now + 1000);
		return 0;
	}
	if (paused || ahead > vm->l.cmd_slots) {
		CHECK(op.nans == 0 && vm->next == old_next);
		if (!paused)
			CHECK(vm->host_status == MBSHM_HS_BAD_PROD);
		return 0;
	}
	CHECK(vm->host_status == MBSHM_HS_OK);
	/* forward, by what was answered, at most what was pending */
	CHECK(vm->next - old_next == op.nans);
	CHECK(op.nans <= ahead && op.nans <= BATCH);
	CHECK(op.nans == 0 || op.nans == (ahead < BATCH ? ahead : BATCH));
	for (i = 0; i < op.nans; i++) {
		const struct ans *a = &op.ans[i];

		CHECK(a->seq == (__u32)(old_next + i));
		if (a->status == MBSHM_ST_RATELIMIT)
			continue;
		want = expected_status(vm, a->seq, &maybe_ok);
		if (maybe_ok)
			CHECK(a->status == MBSHM_ST_OK ||
			      a->status == MBSHM_ST_REFUSED ||
			      a->status == MBSHM_ST_UNAVAIL ||
			      a->status == MBSHM_ST_INTERNAL);
		else
			CHECK(a->status == want);
	}
	/* the answers are in the ring unless the state file failed */
	if (!vm->save_fails && op.nans)
		CHECK(op.cons_set && op.cons == vm->next && vm->nunpub == 0);
	/* never past what the guest published */
	CHECK((__u32)(prod - vm->next) <= vm->l.cmd_slots);
	return ret;
}

static void host_op(struct vm *vm, int kind, int fresh, __u64 epoch)
{
	op_begin();
	if (kind == 0)
		tick(vm);
	else
		start_vm(vm, fresh, epoch);
	op_end(vm);
}

/* --- The guest: the input ---------------------------------------------- */

struct input {
	const uint8_t *p;
	size_t left;
};

static const uint8_t *take(struct input *in, size_t n)
{
	const uint8_t *p = in->p;

	if (in->left < n)
		return NULL;
	in->p += n;
	in->left -= n;
	return p;
}

static uint32_t take_u32(struct input *in)
{
	const uint8_t *b = take(in, 4);
	uint32_t v = 0;

	if (b)
		memcpy(&v, b, 4);
	return v;
}

/* A guest write: the memory and the shadow (which stays what the host did
 * not write). */
static void gwrite(size_t off, const void *p, size_t n)
{
	CHECK(off + n <= live_end);
	memcpy(shm + off, p, n);
	memcpy(shadow + off, p, n);
}

static __u32 gprod(void)
{
	__u32 v;

	memcpy(&v, shadow + MBSHM_GUEST_OFF, 4);
	return v;
}

static void gset_prod(__u32 v)
{
	mbshm_set_prod(shm, v);
	memcpy(shadow + MBSHM_GUEST_OFF, &v, 4);
}

static void gsubmit(const struct vm *vm, const void *text, size_t len,
		    int arg)
{
	__u32 prod = gprod(), slen = (__u32)len + (arg & 2 ? 256 : 0);
	size_t off = cmd_slot_off(&vm->l, prod);

	if (len > vm->l.cmd_slot_size - MBSHM_CMD_HDR)
		len = vm->l.cmd_slot_size - MBSHM_CMD_HDR;
	gwrite(off, &prod, 4);
	gwrite(off + 4, &slen, 4);
	gwrite(off + MBSHM_CMD_HDR, text, len);
	if (!(arg & 1))
		gset_prod(prod + 1);
}

static void region(const struct vm *vm, int r, size_t *a, size_t *b)
{
	switch (r) {
	case 0:
		*a = MBSHM_GUEST_OFF;
		*b = GUEST_END;
		break;
	case 1:
		*a = vm->l.cmd_off;
		*b = vm->l.cmd_off + vm->l.cmd_slots * vm->l.cmd_slot_size;
		break;
	case 2:
		*a = 0;
		*b = HOST_HDR_END;
		break;
	case 3:
		*a = vm->l.rsp_off;
		*b = vm->l.rsp_off + vm->l.rsp_slots * vm->l.rsp_slot_size;
		break;
	default:
		*a = vm->l.stats_off;
		*b = vm->l.stats_off + vm->l.stats_size;
		break;
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct mbshm_layout l;

	(void)argc;
	(void)argv;
	trace = getenv("FUZZ_SHM_TRACE") != NULL;
	CHECK(mbshm_layout_init(&l, SHM_SIZE) == 0);
	live_end = l.stats_off + l.stats_size;
	CHECK(l.cmd_off >= GUEST_END && live_end <= SHM_SIZE);
	CHECK(live_end % 8 == 0 && HOST_HDR_END % 8 == 0 && GUEST_END % 8 == 0);
	/* The memory: a heap buffer of exactly the layout's size, allocated
	 * once (a fresh 256 KiB per input costs ASan an mmap), what the
	 * layout does not cover poisoned for good. */
	shm = aligned_alloc(4096, SHM_SIZE);
	CHECK(shm);
	ASAN_POISON_MEMORY_REGION(shm + HOST_HDR_END,
				  MBSHM_GUEST_OFF - HOST_HDR_END);
	ASAN_POISON_MEMORY_REGION(shm + GUEST_END,
				  MBSHM_HEADER_SIZE - GUEST_END);
	ASAN_POISON_MEMORY_REGION(shm + live_end, SHM_SIZE - live_end);
	unpub = calloc(BATCH + 2, sizeof(*unpub));
	shadow = malloc(SHM_SIZE);
	before = malloc(SHM_SIZE);
	CHECK(unpub && shadow && before);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct vm vm;		/* 40 KiB: not on the stack */
	struct input in = { data, size };
	const uint8_t *b;
	uint8_t cfg = 0;
	__u32 prod;
	__u64 epoch;
	int ops = 0;

	if ((b = take(&in, 1)))
		cfg = *b;
	prod = take_u32(&in);
	epoch = take_u32(&in);

	/* Zero memory, as QEMU gives it. */
	memset(shm, 0, HOST_HDR_END);
	memset(shm + MBSHM_GUEST_OFF, 0, GUEST_END - MBSHM_GUEST_OFF);
	memset(shm + MBSHM_HEADER_SIZE, 0, live_end - MBSHM_HEADER_SIZE);
	memset(shadow, 0, live_end);

	memset(&vm, 0, sizeof(vm));
	vm.base = shm;
	CHECK(mbshm_layout_init(&vm.l, SHM_SIZE) == 0);
	vm.unpub = unpub;
	memset(unpub, 0, (BATCH + 2) * sizeof(*unpub));
	vm.burst = 1 + 7 * (cfg >> 4);
	now = 1000000;

	gset_prod(prod);
	if (cfg & 1) {
		/* formatted by an earlier host: its header, its magic */
		struct mbshm_host_view h = { .host_peer = MBSHM_NO_PEER,
					     .epoch = ~epoch,
					     .cmd_cons = prod };

		mbshm_host_publish(shm, &vm.l, &h);
		memcpy(shadow, shm, HOST_HDR_END);
	}
	host_op(&vm, 1, 1, epoch);
	CHECK(vm.next == (cfg & 1 ? prod : 0));

	while (in.left && ops++ < MAX_OPS) {
		uint8_t o = *take(&in, 1);
		int kind = o >> 5, arg = o & 31, i;
		size_t a, e, off, n;

		switch (kind) {
		case 0:		/* WRITE */
			region(&vm, arg & 7, &a, &e);
			/* even offsets in the 128 KiB response ring */
			off = a + (take(&in, 2) ? (size_t)(in.p[-2] |
					in.p[-1] << 8) * ((e - a) >> 16 ? 2 : 1) %
					(e - a) : 0);
			n = (b = take(&in, 1)) ? *b : 0;
			if (n > e - off)
				n = e - off;
			if (n > in.left)
				n = in.left;
			gwrite(off, take(&in, n), n);
			break;
		case 1:		/* PROD */
			if (arg & 16)
				gset_prod(take_u32(&in));
			else
				gset_prod(gprod() + (__u32)(arg - 4));
			break;
		case 2:		/* SUBMIT */
			n = (b = take(&in, 1)) ? *b : 0;
			if (n > in.left)
				n = in.left;
			gsubmit(&vm, take(&in, n), n, arg);
			break;
		case 3:		/* STEP */
			vm.no_registry = arg & 1;
			vm.refuse = !!(arg & 2);
			vm.save_fails = !!(arg & 4);
			now += (uint64_t[]){ 0, 20, 100, 1000 }[arg >> 3];
			host_step(&vm);
			break;
		case 4:		/* TICK */
			host_op(&vm, 0, 0, 0);
			break;
		case 5:		/* RESTART */
			vm.save_fails = 0;
			host_op(&vm, 1, arg & 1, vm.epoch + 1 + (__u64)arg);
			break;
		case 6:		/* DRAIN */
			vm.no_registry = vm.refuse = vm.save_fails = 0;
			for (i = 0; i < 8; i++) {
				now += 1000;
				if (!host_step(&vm) &&
				    mbshm_host_pending(shm, &vm.l, vm.next) <= 0)
					break;
			}
			break;
		default:	/* CANNED */
			n = strlen(canned[arg]);
			if (arg == 18)
				n = 22;		/* with the NUL inside */
			gsubmit(&vm, canned[arg], n, 0);
			break;
		}
	}
	vm.no_registry = vm.refuse = vm.save_fails = 0;
	now += 1000;
	host_step(&vm);

	return 0;
}
