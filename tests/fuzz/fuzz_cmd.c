// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * libFuzzer target: the command parser, mb_cmd_parse(), on arbitrary bytes,
 * as a hostile guest could write them into shared memory.
 *
 * libFuzzer hands over a heap copy of exactly @size bytes, not terminated,
 * so AddressSanitizer catches any read past the text. Beyond "no crash":
 *
 *  - a refusal leaves an all-zero command and one non-empty, terminated
 *    sentence in the error buffer; an acceptance leaves the buffer empty;
 *  - the same text parsed with a tiny error buffer gives the same verdict
 *    and the same message, cut short;
 *  - an accepted command formats into its canonical text, which parses back
 *    to the same command, byte for byte, and formats to the same text again
 *    (parse(format(cmd)) == cmd);
 *  - formatting into a heap buffer of every size from 0 to the exact size
 *    needed either fits or returns -1 with an empty string: never a byte
 *    written past the buffer (ASan) and never a cut command.
 *
 *   make fuzz FUZZ_SECONDS=60 (all targets), or by hand:
 *   bin/fuzz/fuzz_cmd -max_len=320 CORPUS_COPY tests/fuzz/corpus/cmd
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbvisor/cmd.h>

#include "fuzz.h"

static int all_zero(const void *p, size_t n)
{
	const unsigned char *c = p;
	size_t i;

	for (i = 0; i < n; i++)
		if (c[i])
			return 0;
	return 1;
}

/* Formats @cmd into heap buffers of every size up to @need + 1 bytes. */
static void check_format_sizes(const struct mb_cmd *cmd, const char *canon,
			       size_t need)
{
	size_t len;

	for (len = 0; len <= need + 1; len++) {
		char *buf = len ? malloc(len) : NULL;
		int n;

		if (len)
			CHECK(buf);
		if (buf)
			memset(buf, 'x', len);
		n = mb_cmd_format(cmd, buf, len);
		if (len > need) {
			CHECK(n == (int)need);
			CHECK(!strcmp(buf, canon));
		} else {
			CHECK(n == -1);
			CHECK(!len || buf[0] == '\0');
		}
		free(buf);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	char err[MB_ERR_LEN], small_err[8], out[512], again_out[512];
	struct mb_cmd cmd, again, small;
	int ret, n, m;

	memset(err, 'x', sizeof(err));
	ret = mb_cmd_parse(text, size, &cmd, err, sizeof(err));
	CHECK(ret == 0 || ret == -1);
	CHECK(memchr(err, '\0', sizeof(err)));

	/* the same verdict, and the message cut, with a tiny buffer */
	memset(small_err, 'x', sizeof(small_err));
	CHECK(mb_cmd_parse(text, size, &small, small_err,
			   sizeof(small_err)) == ret);
	CHECK(!memcmp(&small, &cmd, sizeof(cmd)));
	CHECK(memchr(small_err, '\0', sizeof(small_err)));
	CHECK(!strncmp(small_err, err, strlen(small_err)));
	CHECK(strlen(small_err) == strlen(err) ||
	      strlen(small_err) == sizeof(small_err) - 1);
	/* and with none */
	CHECK(mb_cmd_parse(text, size, &small, NULL, 0) == ret);

	if (ret) {
		CHECK(err[0] != '\0');
		CHECK(all_zero(&cmd, sizeof(cmd)));
		return 0;
	}
	CHECK(err[0] == '\0');
	CHECK(cmd.op != MB_OP_NONE);

	n = mb_cmd_format(&cmd, out, sizeof(out));
	CHECK(n > 0 && (size_t)n == strlen(out));
	CHECK(n <= MB_CMD_MAX_LEN);
	CHECK(mb_cmd_parse(out, (size_t)n, &again, err, sizeof(err)) == 0);
	CHECK(!memcmp(&cmd, &again, sizeof(cmd)));
	m = mb_cmd_format(&again, again_out, sizeof(again_out));
	CHECK(m == n && !strcmp(out, again_out));

	check_format_sizes(&cmd, out, (size_t)n);

	if (cmd.op == MB_OP_ADD_RULE || cmd.op == MB_OP_DEL_RULE) {
		/* the class part alone is a suffix of the whole command */
		m = mb_rule_format(&cmd.rule, again_out, sizeof(again_out));
		if (cmd.op == MB_OP_ADD_RULE)
			CHECK(cmd.rule.valued == cmd.rule.fields);
		CHECK(m > 0 && m < n);
		CHECK(!strcmp(out + n - m, again_out));
	}
	return 0;
}
