/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * The mbvisor shared-memory channel between a middlebox VM and mbhostd:
 * layout, ordering rules, and the one implementation of both ends
 * (common/shmproto.c), used by mbctl (guest), mbhostd (host) and the tests.
 * docs/protocol.md is the specification; this header follows it.
 *
 *   offset 0      header page (4 KiB): host part, then guest part
 *   cmd_off       command ring:  cmd_slots  x cmd_slot_size, guest writes
 *   rsp_off       response ring: rsp_slots  x rsp_slot_size, host writes
 *   stats_off     counters page:  stats_size bytes,           host writes
 *
 * Every number is little-endian (both ends are x86 or another
 * little-endian machine; the build refuses a big-endian one).
 *
 * Ownership: each field has exactly one writer. The host never reads back a
 * field it owns (it keeps its own copy of the layout, its indices and its
 * epoch) and treats every field the guest owns as hostile: it copies before
 * it checks and bounds every index and length. The guest, which trusts the
 * host, still checks the layout against the size of its mapping.
 *
 * Ordering (C11 acquire/release, __atomic builtins on the mapped memory):
 *  - guest: write the slot (seq, len, text), then store-release cmd_prod;
 *    host: load-acquire cmd_prod, then copy the slot.
 *  - host: write a response slot under its per-slot seqlock (lock odd,
 *    fields, lock even with release), then store-release cmd_cons;
 *    guest: load-acquire cmd_cons / the slot's lock, copy, re-check the lock.
 *  - counters page: one seqlock for the whole page, same pattern.
 */
#ifndef _MBVISOR_SHMPROTO_H
#define _MBVISOR_SHMPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>
#include <mbvisor/rule.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the mbvisor shared-memory layout is little-endian"
#endif

#define MBSHM_MAGIC		0x4853424dU	/* "MBSH" in memory */
#define MBSHM_VERSION		1

/* Geometry the host of version 1 writes; a guest uses the header's. */
#define MBSHM_HEADER_SIZE	4096
#define MBSHM_CMD_SLOTS		64
#define MBSHM_CMD_SLOT_SIZE	320
#define MBSHM_RSP_SLOTS		64
#define MBSHM_RSP_SLOT_SIZE	2048
#define MBSHM_STATS_SIZE	(64 * 1024)
/* Smallest shared memory that holds the version 1 layout (power of 2). */
#define MBSHM_MIN_SIZE		(256 * 1024)

/* Bounds a guest accepts for a host's geometry. */
#define MBSHM_MAX_SLOTS		1024

/* Bytes of command text a slot holds: room for "@" + 256 + "@" and blanks. */
#define MBSHM_CMD_HDR		8
#define MBSHM_CMD_TEXT_MAX	(MBSHM_CMD_SLOT_SIZE - MBSHM_CMD_HDR)
#define MBSHM_RSP_HDR		32
#define MBSHM_RSP_MSG_MAX	(MBSHM_RSP_SLOT_SIZE - MBSHM_RSP_HDR)

/* Header flags (host). */
#define MBSHM_HF_DOORBELL	0x1	/* host_peer listens to doorbells and
					 * rings the guest after responding */
#define MBSHM_NO_PEER		0xffffffffU

/* Host status word: what the host thinks of the guest's indices. */
enum mbshm_host_status {
	MBSHM_HS_OK = 0,
	MBSHM_HS_BAD_PROD = 1,	/* cmd_prod is not within cmd_slots of
				 * cmd_cons: ignored until the guest fixes it */
};

/* The host part of the header page (offset 0). */
struct mbshm_header {
	__u32 magic;		/* MBSHM_MAGIC, stored last when formatting */
	__u16 version;		/* MBSHM_VERSION */
	__u16 header_size;	/* MBSHM_HEADER_SIZE */
	__u32 shm_size;		/* bytes of shared memory the host uses */
	__u32 flags;		/* MBSHM_HF_* */
	__u32 cmd_off, cmd_slots, cmd_slot_size;
	__u32 rsp_off, rsp_slots, rsp_slot_size;
	__u32 stats_off, stats_size;
	__u32 host_peer;	/* ivshmem peer ID of the host, or NO_PEER */
	__u32 host_vector;	/* vector to ring it on */
	__u32 host_status;	/* enum mbshm_host_status */
	__u32 reserved0;
	__u64 epoch;		/* changes when the host lost its state */
	__u64 heartbeat;	/* bumped by the host at least once a second */
	__u32 cmd_cons;		/* commands < cmd_cons are answered */
	__u32 reserved1;
	__u64 reserved[20];
};

/* The guest part of the header page, on its own cache lines. */
#define MBSHM_GUEST_OFF		256
struct mbshm_guest {
	__u32 cmd_prod;		/* commands < cmd_prod are published */
	__u32 guest_peer;	/* informational: the guest's IVPosition */
	__u64 reserved[7];
};

/* A command slot: cmd_off + (seq % cmd_slots) * cmd_slot_size. */
struct mbshm_cmd_slot {
	__u32 seq;		/* the command's sequence number */
	__u32 len;		/* bytes of text, <= cmd_slot_size - 8 */
	char text[];		/* "@R F 52:34:56:00:12:22 10.0.0.1@" */
};

/* Response status (mbshm_rsp_slot.status). */
enum mbshm_status {
	MBSHM_ST_OK = 0,	/* applied (or answered, for Q) */
	MBSHM_ST_REFUSED = 1,	/* the kernel refused it; error = errno */
	MBSHM_ST_PARSE = 2,	/* not a valid command */
	MBSHM_ST_PERM = 3,	/* names a MAC this VM does not own */
	MBSHM_ST_RATELIMIT = 4,	/* too many commands; not applied */
	MBSHM_ST_BADSLOT = 5,	/* slot seq or length wrong */
	MBSHM_ST_UNAVAIL = 6,	/* the kernel side is not there */
	MBSHM_ST_INTERNAL = 7,	/* host failure (state file); not applied */
	__MBSHM_ST_MAX
};

/* A response slot: rsp_off + (seq % rsp_slots) * rsp_slot_size. */
struct mbshm_rsp_slot {
	__u32 lock;		/* seqlock: odd while the host writes */
	__u32 seq;		/* the command answered */
	__s32 status;		/* enum mbshm_status */
	__s32 error;		/* errno (positive) with REFUSED, else 0 */
	__u32 len;		/* bytes of msg, no NUL */
	__u32 reserved;
	__u64 epoch;		/* host epoch when written */
	char msg[];		/* one sentence; several lines for Q */
};

/* The counters page: a header, then entries, under one seqlock. */
struct mbshm_stats_hdr {
	__u32 lock;		/* seqlock: odd while the host writes */
	__u32 count;		/* entries that follow */
	__u64 updated;		/* CLOCK_REALTIME seconds of the update */
	__u64 reserved[6];
};

#define MBSHM_SF_REGISTERED	0x1
#define MBSHM_SF_ENABLED	0x2

struct mbshm_stats_entry {
	__u8 mac[MB_ETH_ALEN];
	__u16 flags;		/* MBSHM_SF_* */
	__u32 services;		/* MBSTATE_SVC_* */
	__be32 ip;
	__u32 nrules;
	__u64 rx_packets, rx_bytes;
	__u64 fw_drop_packets, fw_drop_bytes;
	__u64 disabled_packets;
	__u64 reserved[2];
};

/* --- Both ends ---------------------------------------------------------- */

/* The geometry, as the host chose it and the guest validated it. */
struct mbshm_layout {
	size_t size;
	__u32 cmd_off, cmd_slots, cmd_slot_size;
	__u32 rsp_off, rsp_slots, rsp_slot_size;
	__u32 stats_off, stats_size;
};

const char *mbshm_status_name(int status);	/* "ok", "refused", ... */

/* A copied response. */
struct mbshm_response {
	__u32 seq;
	int status;
	int error;
	__u64 epoch;
	size_t len;
	char msg[MBSHM_RSP_MSG_MAX + 1];	/* NUL-terminated copy */
};

/* --- Host side ---------------------------------------------------------- */

/* The version 1 layout for @size bytes; -1 if @size is too small. */
int mbshm_layout_init(struct mbshm_layout *l, size_t size);

/* What the host publishes in the header (rewritten whole each time, so a
 * guest that scribbles over the host's fields only fools itself). */
struct mbshm_host_view {
	__u32 flags;
	__u32 host_peer, host_vector;
	__u32 host_status;
	__u64 epoch;
	__u64 heartbeat;
	__u32 cmd_cons;
};

/* Writes the header from @l and @h, magic last. Guest fields untouched. */
void mbshm_host_publish(void *base, const struct mbshm_layout *l,
			const struct mbshm_host_view *h);

/* Stores cmd_cons (release): responses before it are visible. */
void mbshm_host_set_cons(void *base, __u32 cons);

/* Reads the guest's producer index (acquire). */
__u32 mbshm_host_prod(const void *base);

/* Whether the header carries the magic (acquire): a host formatted it. */
int mbshm_host_formatted(const void *base);

/* The header's epoch (meaningful when mbshm_host_formatted()). */
__u64 mbshm_host_epoch(const void *base);

/* Sets the guest's producer index; only when the host formats a new
 * channel, and in tests. */
void mbshm_set_prod(void *base, __u32 prod);

/* One command copied out of its slot, checked, in private memory. */
struct mbshm_fetched {
	__u32 seq;
	int status;		/* MBSHM_ST_OK, or BADSLOT with @msg set */
	size_t len;
	char text[MBSHM_CMD_TEXT_MAX + 1];	/* NUL-terminated copy */
	char msg[128];
};

/*
 * How many commands are waiting after @next, given the guest's producer
 * index: 0..cmd_slots, or -1 when cmd_prod is out of range (more than
 * cmd_slots ahead of @next, or behind it).
 */
int mbshm_host_pending(const void *base, const struct mbshm_layout *l,
		       __u32 next);

/*
 * Copies the slot of command @seq (which mbshm_host_pending() said is
 * published) into @out with one copy, then checks the copy: the slot's seq
 * must be @seq and its len at most the slot's text size. The text is not
 * parsed here (mb_cmd_parse does that, on the copy).
 */
void mbshm_host_fetch(const void *base, const struct mbshm_layout *l,
		      __u32 seq, struct mbshm_fetched *out);

/*
 * Checks a fetched command (status MBSHM_ST_OK) and parses it: the text
 * must be framed "@...@" (blanks around are fine) and parse with
 * mb_cmd_parse(). Returns MBSHM_ST_OK with @cmd filled, or MBSHM_ST_PARSE
 * with a sentence in @msg.
 */
struct mb_cmd;
int mbshm_host_parse(const struct mbshm_fetched *f, struct mb_cmd *cmd,
		     char *msg, size_t msglen);

/* Writes the response to @seq into its slot (seqlock). @msg is cut to the
 * slot; it need not be NUL-terminated past @len. Does not move cmd_cons. */
void mbshm_host_respond(void *base, const struct mbshm_layout *l, __u32 seq,
			__u64 epoch, int status, int error, const char *msg,
			size_t len);

/* Writes @n entries to the counters page (cut to what fits). */
void mbshm_host_stats(void *base, const struct mbshm_layout *l,
		      const struct mbshm_stats_entry *e, size_t n,
		      __u64 updated);

/* --- Guest side --------------------------------------------------------- */

/*
 * Validates the header of a mapping of @maplen bytes: magic, version,
 * geometry inside the mapping, slots a power of two. Fills @l. Returns 0,
 * or -1 with a sentence in @err ("no host has formatted the shared memory
 * yet" when the magic is missing).
 */
int mbshm_guest_attach(const void *base, size_t maplen,
		       struct mbshm_layout *l, char *err, size_t errlen);

/* A snapshot of the header's host fields (relaxed loads, cons acquire). */
void mbshm_read_header(const void *base, struct mbshm_header *h);

/*
 * Publishes one command: checks the ring has room, writes the slot and
 * stores cmd_prod with release. The caller serialises submitters (mbctl
 * holds flock on the device). A producer index found out of range (a guest
 * reboot, a scribble) is reset to cmd_cons first. Returns 0 and the
 * sequence number in *@seq, -EAGAIN when the ring is full, -EMSGSIZE when
 * @len exceeds the slot.
 */
int mbshm_guest_submit(void *base, const struct mbshm_layout *l,
		       const char *text, size_t len, __u32 *seq);

/*
 * Looks for the response to @seq, submitted while the header's epoch was
 * @epoch. Returns 1 and fills @out when it is there, 0 when not yet,
 * -ECONNRESET when the epoch changed (a host that lost its state took over:
 * whether the command was applied is unknown), -ESTALE when the host has
 * answered commands past it and its slot holds another one (overwritten:
 * more than rsp_slots commands were answered since), -EBUSY when the slot
 * kept changing.
 */
int mbshm_guest_response(const void *base, const struct mbshm_layout *l,
			 __u32 seq, __u64 epoch, struct mbshm_response *out);

/* Reads a response slot whatever its seq (for mbctl -r): 1 if it holds a
 * response, 0 if empty, -EBUSY if it kept changing. */
int mbshm_read_rsp_slot(const void *base, const struct mbshm_layout *l,
			__u32 index, struct mbshm_response *out);

/* Copies the counters page: returns the number of entries (at most @max),
 * or -EBUSY when it kept changing. */
int mbshm_guest_stats(const void *base, const struct mbshm_layout *l,
		      struct mbshm_stats_entry *e, size_t max,
		      __u64 *updated);

#endif /* _MBVISOR_SHMPROTO_H */
