// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * libFuzzer target: the frame parser of the classifier on arbitrary frames.
 * The input is one Ethernet frame, of any length and content, as any port
 * of the bridge can send it.
 *
 * libFuzzer hands over a heap copy of exactly @size bytes, so
 * AddressSanitizer catches a read past the frame. The key is computed three
 * ways and must be the same every time:
 *
 *  1. mb_key_from_frame(), the userspace entry point: its header callback
 *     returns pointers into the frame, like skb_header_pointer() on a
 *     linear skb;
 *  2. mb_key_parse_l3() through a callback that always copies into the
 *     caller's buffer, like skb_header_pointer() on a paged skb, and
 *     checks that the buffer is as large as what it asked for (the
 *     callback copies into it: ASan catches an overflow of the caller's
 *     stack buffer), with the MACs and EtherType filled in the way
 *     mbfw_rx() does it;
 *  3. naive_key_from_frame() (tests/naive_classifier.h), written from the
 *     documentation, which reads byte by byte.
 *
 *   bin/fuzz/fuzz_frame -max_len=128 CORPUS_COPY tests/fuzz/corpus/frame
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbvisor/classifier.h>
#include "../naive_classifier.h"

#include "fuzz.h"

/* The network header on: what skb->data points at in the bridge hook. */
struct paged {
	const uint8_t *l3;
	size_t len;
	unsigned int calls;
};

static const void *paged_hdr(const void *ctx, unsigned int off,
			     unsigned int len, void *buf)
{
	struct paged *p = (struct paged *)ctx;

	p->calls++;
	CHECK(p->calls <= 2);	/* the IP header, then the ports */
	if (off > p->len || len > p->len - off)
		return NULL;
	memcpy(buf, p->l3 + off, len);
	return buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mb_key k1, k2, k3;
	struct paged pg;

	mb_key_from_frame(&k1, data, (unsigned int)size);

	memset(&k2, 0, sizeof(k2));
	if (size >= 14) {
		memcpy(k2.dmac, data, 6);
		memcpy(k2.smac, data + 6, 6);
		k2.ethertype = (uint16_t)(data[12] << 8 | data[13]);
		pg.l3 = data + 14;
		pg.len = size - 14;
		pg.calls = 0;
		mb_key_parse_l3(&k2, paged_hdr, &pg);
	}

	naive_key_from_frame(&k3, data, size);

	CHECK(!memcmp(&k1, &k3, sizeof(k1)));
	CHECK(!memcmp(&k2, &k3, sizeof(k2)));
	CHECK(!k1.pad[0] && !k1.pad[1] && !k1.pad[2]);
	CHECK(k1.l4 == 0 || k1.l4 == 1);
	return 0;
}
