// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * shmproto.c - both ends of the mbvisor shared-memory channel
 * (docs/protocol.md, include/mbvisor/shmproto.h).
 *
 * The shared memory is written concurrently by the other side, which the
 * host does not trust. Two rules follow for the host's code here:
 *  - every value read from guest-owned memory is read once, into private
 *    memory, and only the private copy is checked and used (no double
 *    fetch): scalars through __atomic loads, the command slot with one
 *    memcpy followed by a compiler barrier, so that the compiler cannot go
 *    back to the shared copy either;
 *  - every index is reduced modulo a slot count the host chose, never one
 *    read from the shared memory, and every length is bounded before use.
 */

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <mbvisor/cmd.h>
#include <mbvisor/shmproto.h>

_Static_assert(sizeof(struct mbshm_header) <= MBSHM_GUEST_OFF,
	       "host header overlaps the guest part");
_Static_assert(MBSHM_GUEST_OFF + sizeof(struct mbshm_guest) <=
	       MBSHM_HEADER_SIZE, "guest part outside the header page");
_Static_assert(offsetof(struct mbshm_cmd_slot, text) == MBSHM_CMD_HDR,
	       "command slot header");
_Static_assert(offsetof(struct mbshm_rsp_slot, msg) == MBSHM_RSP_HDR,
	       "response slot header");
_Static_assert(sizeof(struct mbshm_stats_hdr) == 64, "stats header");
_Static_assert(sizeof(struct mbshm_stats_entry) == 80, "stats entry");
_Static_assert((MBSHM_CMD_SLOTS & (MBSHM_CMD_SLOTS - 1)) == 0 &&
	       (MBSHM_RSP_SLOTS & (MBSHM_RSP_SLOTS - 1)) == 0,
	       "slot counts are powers of two");
_Static_assert(MBSHM_HEADER_SIZE + MBSHM_CMD_SLOTS * MBSHM_CMD_SLOT_SIZE +
	       MBSHM_RSP_SLOTS * MBSHM_RSP_SLOT_SIZE + MBSHM_STATS_SIZE +
	       2 * 4096 <= MBSHM_MIN_SIZE, "layout does not fit MBSHM_MIN_SIZE");

/* Seqlock readers give up after this many torn reads. */
#define MBSHM_READ_TRIES	1000

#define barrier()	__asm__ __volatile__("" : : : "memory")

static const char *const status_names[__MBSHM_ST_MAX] = {
	[MBSHM_ST_OK]		= "ok",
	[MBSHM_ST_REFUSED]	= "refused",
	[MBSHM_ST_PARSE]	= "parse error",
	[MBSHM_ST_PERM]		= "permission denied",
	[MBSHM_ST_RATELIMIT]	= "rate limited",
	[MBSHM_ST_BADSLOT]	= "bad slot",
	[MBSHM_ST_UNAVAIL]	= "unavailable",
	[MBSHM_ST_INTERNAL]	= "host error",
};

const char *mbshm_status_name(int status)
{
	if (status < 0 || status >= __MBSHM_ST_MAX)
		return "unknown status";
	return status_names[status];
}

static struct mbshm_header *hdr(void *base)
{
	return base;
}

static const struct mbshm_header *chdr(const void *base)
{
	return base;
}

static struct mbshm_guest *guest(void *base)
{
	return (struct mbshm_guest *)((char *)base + MBSHM_GUEST_OFF);
}

static const struct mbshm_guest *cguest(const void *base)
{
	return (const struct mbshm_guest *)((const char *)base +
					    MBSHM_GUEST_OFF);
}

static char *cmd_slot(void *base, const struct mbshm_layout *l, __u32 seq)
{
	return (char *)base + l->cmd_off +
	       (size_t)(seq & (l->cmd_slots - 1)) * l->cmd_slot_size;
}

static char *rsp_slot(void *base, const struct mbshm_layout *l, __u32 seq)
{
	return (char *)base + l->rsp_off +
	       (size_t)(seq & (l->rsp_slots - 1)) * l->rsp_slot_size;
}

/* --- Host side ---------------------------------------------------------- */

int mbshm_layout_init(struct mbshm_layout *l, size_t size)
{
	memset(l, 0, sizeof(*l));
	if (size < MBSHM_MIN_SIZE || size > UINT32_MAX)
		return -1;
	l->size = size;
	l->cmd_off = MBSHM_HEADER_SIZE;
	l->cmd_slots = MBSHM_CMD_SLOTS;
	l->cmd_slot_size = MBSHM_CMD_SLOT_SIZE;
	/* Page-aligned regions, so that a guest can map them apart. */
	l->rsp_off = (l->cmd_off + l->cmd_slots * l->cmd_slot_size + 4095) &
		     ~4095U;
	l->rsp_slots = MBSHM_RSP_SLOTS;
	l->rsp_slot_size = MBSHM_RSP_SLOT_SIZE;
	l->stats_off = (l->rsp_off + l->rsp_slots * l->rsp_slot_size + 4095) &
		       ~4095U;
	l->stats_size = MBSHM_STATS_SIZE;
	return 0;
}

void mbshm_host_publish(void *base, const struct mbshm_layout *l,
			const struct mbshm_host_view *h)
{
	struct mbshm_header *H = hdr(base);

	H->version = MBSHM_VERSION;
	H->header_size = MBSHM_HEADER_SIZE;
	H->shm_size = (__u32)l->size;
	H->flags = h->flags;
	H->cmd_off = l->cmd_off;
	H->cmd_slots = l->cmd_slots;
	H->cmd_slot_size = l->cmd_slot_size;
	H->rsp_off = l->rsp_off;
	H->rsp_slots = l->rsp_slots;
	H->rsp_slot_size = l->rsp_slot_size;
	H->stats_off = l->stats_off;
	H->stats_size = l->stats_size;
	H->host_peer = h->host_peer;
	H->host_vector = h->host_vector;
	H->host_status = h->host_status;
	__atomic_store_n(&H->epoch, h->epoch, __ATOMIC_RELAXED);
	__atomic_store_n(&H->heartbeat, h->heartbeat, __ATOMIC_RELAXED);
	__atomic_store_n(&H->cmd_cons, h->cmd_cons, __ATOMIC_RELEASE);
	/* Last: a guest that sees the magic sees the whole header. */
	__atomic_store_n(&H->magic, MBSHM_MAGIC, __ATOMIC_RELEASE);
}

void mbshm_host_set_cons(void *base, __u32 cons)
{
	__atomic_store_n(&hdr(base)->cmd_cons, cons, __ATOMIC_RELEASE);
}

__u32 mbshm_host_prod(const void *base)
{
	return __atomic_load_n(&cguest(base)->cmd_prod, __ATOMIC_ACQUIRE);
}

int mbshm_host_formatted(const void *base)
{
	return __atomic_load_n(&chdr(base)->magic, __ATOMIC_ACQUIRE) ==
	       MBSHM_MAGIC;
}

__u64 mbshm_host_epoch(const void *base)
{
	return __atomic_load_n(&chdr(base)->epoch, __ATOMIC_RELAXED);
}

void mbshm_set_prod(void *base, __u32 prod)
{
	__atomic_store_n(&guest(base)->cmd_prod, prod, __ATOMIC_RELEASE);
}

int mbshm_host_pending(const void *base, const struct mbshm_layout *l,
		       __u32 next)
{
	/* Unsigned distance: a producer behind @next wraps to a huge value. */
	__u32 ahead = mbshm_host_prod(base) - next;

	if (ahead > l->cmd_slots)
		return -1;
	return (int)ahead;
}

void mbshm_host_fetch(const void *base, const struct mbshm_layout *l,
		      __u32 seq, struct mbshm_fetched *out)
{
	union {
		struct mbshm_cmd_slot s;
		char raw[MBSHM_CMD_HDR + MBSHM_CMD_TEXT_MAX];
	} copy;
	size_t text_max = l->cmd_slot_size - MBSHM_CMD_HDR;
	__u32 slot_seq, len;

	if (text_max > MBSHM_CMD_TEXT_MAX)
		text_max = MBSHM_CMD_TEXT_MAX;
	/* The one read of the slot. The guest may change it meanwhile: then
	 * the copy is torn, and is checked and parsed as it is. */
	memcpy(copy.raw, cmd_slot((void *)base, l, seq),
	       MBSHM_CMD_HDR + text_max);
	barrier();

	memset(out, 0, sizeof(*out));
	out->seq = seq;
	slot_seq = copy.s.seq;
	len = copy.s.len;
	if (slot_seq != seq) {
		out->status = MBSHM_ST_BADSLOT;
		snprintf(out->msg, sizeof(out->msg),
			 "slot %u holds sequence number %u, expected %u",
			 seq & (l->cmd_slots - 1), slot_seq, seq);
		return;
	}
	if (len > text_max) {
		out->status = MBSHM_ST_BADSLOT;
		snprintf(out->msg, sizeof(out->msg),
			 "command length %u exceeds the slot's %zu bytes",
			 len, text_max);
		return;
	}
	out->status = MBSHM_ST_OK;
	out->len = len;
	memcpy(out->text, copy.s.text, len);
	out->text[len] = '\0';
}

int mbshm_host_parse(const struct mbshm_fetched *f, struct mb_cmd *cmd,
		     char *msg, size_t msglen)
{
	size_t i = 0;

	while (i < f->len && (f->text[i] == ' ' || f->text[i] == '\t'))
		i++;
	if (i == f->len || f->text[i] != '@') {
		snprintf(msg, msglen,
			 "Missing opening `@' (commands in shared memory are written @...@)");
		memset(cmd, 0, sizeof(*cmd));
		return MBSHM_ST_PARSE;
	}
	if (mb_cmd_parse(f->text, f->len, cmd, msg, msglen))
		return MBSHM_ST_PARSE;
	return MBSHM_ST_OK;
}

static void seqlock_write_begin(__u32 *lock)
{
	__u32 v = __atomic_load_n(lock, __ATOMIC_RELAXED);

	/* Whatever a guest wrote there: make it odd. */
	__atomic_store_n(lock, v | 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
}

static void seqlock_write_end(__u32 *lock)
{
	__u32 v = (__atomic_load_n(lock, __ATOMIC_RELAXED) | 1) + 1;

	/* 0 means "never written" to readers. */
	__atomic_store_n(lock, v ? v : 2, __ATOMIC_RELEASE);
}

void mbshm_host_respond(void *base, const struct mbshm_layout *l, __u32 seq,
			__u64 epoch, int status, int error, const char *msg,
			size_t len)
{
	struct mbshm_rsp_slot *s = (struct mbshm_rsp_slot *)rsp_slot(base, l,
								     seq);
	size_t max = l->rsp_slot_size - MBSHM_RSP_HDR;

	if (!msg)
		len = 0;
	if (len > max)
		len = max;
	seqlock_write_begin(&s->lock);
	__atomic_store_n(&s->seq, seq, __ATOMIC_RELAXED);
	__atomic_store_n(&s->status, status, __ATOMIC_RELAXED);
	__atomic_store_n(&s->error, error, __ATOMIC_RELAXED);
	__atomic_store_n(&s->len, (__u32)len, __ATOMIC_RELAXED);
	__atomic_store_n(&s->epoch, epoch, __ATOMIC_RELAXED);
	if (len)
		memcpy(s->msg, msg, len);
	seqlock_write_end(&s->lock);
}

void mbshm_host_stats(void *base, const struct mbshm_layout *l,
		      const struct mbshm_stats_entry *e, size_t n,
		      __u64 updated)
{
	struct mbshm_stats_hdr *h = (struct mbshm_stats_hdr *)
		((char *)base + l->stats_off);
	size_t max = (l->stats_size - sizeof(*h)) / sizeof(*e);

	if (n > max)
		n = max;
	seqlock_write_begin(&h->lock);
	__atomic_store_n(&h->count, (__u32)n, __ATOMIC_RELAXED);
	__atomic_store_n(&h->updated, updated, __ATOMIC_RELAXED);
	if (n)
		memcpy(h + 1, e, n * sizeof(*e));
	seqlock_write_end(&h->lock);
}

/* --- Guest side --------------------------------------------------------- */

static bool pow2(__u32 v)
{
	return v && !(v & (v - 1));
}

/* [off, off + n * size) lies within [MBSHM_HEADER_SIZE, limit). */
static bool region_ok(__u32 off, __u32 n, __u32 size, size_t limit)
{
	uint64_t end = (uint64_t)off + (uint64_t)n * size;

	return off >= MBSHM_HEADER_SIZE && end <= limit;
}

static bool overlap(__u32 a, uint64_t alen, __u32 b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

int mbshm_guest_attach(const void *base, size_t maplen,
		       struct mbshm_layout *l, char *err, size_t errlen)
{
	const struct mbshm_header *H = chdr(base);
	struct mbshm_header h;
	size_t limit;

	memset(l, 0, sizeof(*l));
	if (maplen < MBSHM_HEADER_SIZE) {
		snprintf(err, errlen,
			 "shared memory of %zu bytes is smaller than the %d-byte header",
			 maplen, MBSHM_HEADER_SIZE);
		return -1;
	}
	if (__atomic_load_n(&H->magic, __ATOMIC_ACQUIRE) != MBSHM_MAGIC) {
		snprintf(err, errlen,
			 "no host has formatted the shared memory (magic %#x, expected %#x): is mbhostd serving it?",
			 __atomic_load_n(&H->magic, __ATOMIC_RELAXED),
			 MBSHM_MAGIC);
		return -1;
	}
	memcpy(&h, H, sizeof(h));
	barrier();
	if (h.version != MBSHM_VERSION) {
		snprintf(err, errlen,
			 "shared memory has protocol version %u; this program speaks version %d",
			 h.version, MBSHM_VERSION);
		return -1;
	}
	limit = maplen < h.shm_size ? maplen : h.shm_size;
	if (!pow2(h.cmd_slots) || h.cmd_slots > MBSHM_MAX_SLOTS ||
	    !pow2(h.rsp_slots) || h.rsp_slots > MBSHM_MAX_SLOTS ||
	    h.cmd_slots > h.rsp_slots ||
	    h.cmd_slot_size < MBSHM_CMD_HDR + 64 || h.cmd_slot_size % 8 ||
	    h.rsp_slot_size < MBSHM_RSP_HDR + 64 || h.rsp_slot_size % 8 ||
	    h.rsp_slot_size > MBSHM_RSP_HDR + MBSHM_RSP_MSG_MAX ||
	    h.stats_size < sizeof(struct mbshm_stats_hdr) ||
	    !region_ok(h.cmd_off, h.cmd_slots, h.cmd_slot_size, limit) ||
	    !region_ok(h.rsp_off, h.rsp_slots, h.rsp_slot_size, limit) ||
	    !region_ok(h.stats_off, 1, h.stats_size, limit) ||
	    h.cmd_off % 8 || h.rsp_off % 8 || h.stats_off % 8 ||
	    overlap(h.cmd_off, (uint64_t)h.cmd_slots * h.cmd_slot_size,
		    h.rsp_off, (uint64_t)h.rsp_slots * h.rsp_slot_size) ||
	    overlap(h.cmd_off, (uint64_t)h.cmd_slots * h.cmd_slot_size,
		    h.stats_off, h.stats_size) ||
	    overlap(h.rsp_off, (uint64_t)h.rsp_slots * h.rsp_slot_size,
		    h.stats_off, h.stats_size)) {
		snprintf(err, errlen,
			 "the host's layout does not fit the %zu bytes mapped (shm_size %u)",
			 maplen, h.shm_size);
		return -1;
	}
	l->size = limit;
	l->cmd_off = h.cmd_off;
	l->cmd_slots = h.cmd_slots;
	l->cmd_slot_size = h.cmd_slot_size;
	l->rsp_off = h.rsp_off;
	l->rsp_slots = h.rsp_slots;
	l->rsp_slot_size = h.rsp_slot_size;
	l->stats_off = h.stats_off;
	l->stats_size = h.stats_size;
	return 0;
}

void mbshm_read_header(const void *base, struct mbshm_header *h)
{
	const struct mbshm_header *H = chdr(base);

	memcpy(h, H, sizeof(*h));
	h->cmd_cons = __atomic_load_n(&H->cmd_cons, __ATOMIC_ACQUIRE);
	h->epoch = __atomic_load_n(&H->epoch, __ATOMIC_RELAXED);
	h->heartbeat = __atomic_load_n(&H->heartbeat, __ATOMIC_RELAXED);
}

int mbshm_guest_submit(void *base, const struct mbshm_layout *l,
		       const char *text, size_t len, __u32 *seq)
{
	struct mbshm_cmd_slot *s;
	__u32 prod, cons;

	if (len > l->cmd_slot_size - MBSHM_CMD_HDR)
		return -EMSGSIZE;
	prod = __atomic_load_n(&guest(base)->cmd_prod, __ATOMIC_RELAXED);
	cons = __atomic_load_n(&hdr(base)->cmd_cons, __ATOMIC_ACQUIRE);
	if (prod - cons > l->cmd_slots)
		prod = cons;		/* resynchronise (see header) */
	if (prod - cons == l->cmd_slots)
		return -EAGAIN;
	s = (struct mbshm_cmd_slot *)cmd_slot(base, l, prod);
	__atomic_store_n(&s->seq, prod, __ATOMIC_RELAXED);
	__atomic_store_n(&s->len, (__u32)len, __ATOMIC_RELAXED);
	memcpy(s->text, text, len);
	__atomic_store_n(&guest(base)->cmd_prod, prod + 1, __ATOMIC_RELEASE);
	*seq = prod;
	return 0;
}

/* Seqlock read of a response slot into @out: 1, 0 (never written) or
 * -EBUSY. */
static int read_rsp(const void *base, const struct mbshm_layout *l,
		    __u32 index, struct mbshm_response *out)
{
	const struct mbshm_rsp_slot *s = (const struct mbshm_rsp_slot *)
		rsp_slot((void *)base, l, index);
	size_t max = l->rsp_slot_size - MBSHM_RSP_HDR;
	__u32 l1, l2, len;
	int tries;

	if (max > MBSHM_RSP_MSG_MAX)
		max = MBSHM_RSP_MSG_MAX;
	for (tries = 0; tries < MBSHM_READ_TRIES; tries++) {
		l1 = __atomic_load_n(&s->lock, __ATOMIC_ACQUIRE);
		if (l1 & 1)
			continue;
		if (!l1)
			return 0;
		out->seq = __atomic_load_n(&s->seq, __ATOMIC_RELAXED);
		out->status = __atomic_load_n(&s->status, __ATOMIC_RELAXED);
		out->error = __atomic_load_n(&s->error, __ATOMIC_RELAXED);
		out->epoch = __atomic_load_n(&s->epoch, __ATOMIC_RELAXED);
		len = __atomic_load_n(&s->len, __ATOMIC_RELAXED);
		if (len > max)
			len = (__u32)max;
		memcpy(out->msg, s->msg, len);
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		l2 = __atomic_load_n(&s->lock, __ATOMIC_RELAXED);
		if (l1 == l2) {
			out->len = len;
			out->msg[len] = '\0';
			return 1;
		}
	}
	return -EBUSY;
}

int mbshm_read_rsp_slot(const void *base, const struct mbshm_layout *l,
			__u32 index, struct mbshm_response *out)
{
	return read_rsp(base, l, index, out);
}

int mbshm_guest_response(const void *base, const struct mbshm_layout *l,
			 __u32 seq, __u64 epoch, struct mbshm_response *out)
{
	__u32 cons = __atomic_load_n(&chdr(base)->cmd_cons, __ATOMIC_ACQUIRE);
	int ret;

	if (__atomic_load_n(&chdr(base)->epoch, __ATOMIC_RELAXED) != epoch)
		return -ECONNRESET;

	/* Not answered yet: cons has not passed seq. */
	if ((__s32)(cons - seq) <= 0)
		return 0;
	ret = read_rsp(base, l, seq, out);
	if (ret < 0)
		return ret;
	if (ret == 0 || out->seq != seq)
		return -ESTALE;
	if (out->epoch != epoch)
		return -ECONNRESET;
	return 1;
}

int mbshm_guest_stats(const void *base, const struct mbshm_layout *l,
		      struct mbshm_stats_entry *e, size_t max,
		      __u64 *updated)
{
	const struct mbshm_stats_hdr *h = (const struct mbshm_stats_hdr *)
		((const char *)base + l->stats_off);
	size_t fit = (l->stats_size - sizeof(*h)) / sizeof(*e);
	__u32 l1, l2, n;
	int tries;

	if (max > fit)
		max = fit;
	for (tries = 0; tries < MBSHM_READ_TRIES; tries++) {
		l1 = __atomic_load_n(&h->lock, __ATOMIC_ACQUIRE);
		if (l1 & 1)
			continue;
		n = __atomic_load_n(&h->count, __ATOMIC_RELAXED);
		if (n > max)
			n = (__u32)max;
		*updated = __atomic_load_n(&h->updated, __ATOMIC_RELAXED);
		memcpy(e, h + 1, n * sizeof(*e));
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		l2 = __atomic_load_n(&h->lock, __ATOMIC_RELAXED);
		if (l1 == l2)
			return (int)n;
	}
	return -EBUSY;
}
