// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * swapper - replaces a middlebox's rule set COUNT times, alternating
 * between the rules of FILE_A and FILE_B (lines "A <MAC> <class> ..."),
 * one MBSTATE_CMD_NEW_RULE with MBSTATE_A_REPLACE each, as
 * `mbadm replace' sends it, from one process: under TCG a fork and exec
 * of mbadm per replace would allow a few hundred in the time of the test.
 * Sleeps GAP_US microseconds between two replaces. Prints "replaces N
 * failed N"; exits 1 if one failed.
 *
 *   swapper MAC FILE_A FILE_B COUNT GAP_US	(tests/vm/t68-atomic-swap.sh)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <mbvisor/cmd.h>
#include <mbvisor/mbnl.h>

static size_t load(const char *path, struct mb_rule *rules, size_t max)
{
	char line[512], err[MB_ERR_LEN];
	struct mb_cmd cmd;
	FILE *f = fopen(path, "r");
	size_t n = 0;

	if (!f) {
		perror(path);
		exit(2);
	}
	while (n < max && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (!line[0])
			continue;
		if (mb_cmd_parse(line, strlen(line), &cmd, err, sizeof(err)) ||
		    cmd.op != MB_OP_ADD_RULE) {
			fprintf(stderr, "%s: `%s': %s\n", path, line, err);
			exit(2);
		}
		rules[n++] = cmd.rule;
	}
	fclose(f);
	return n;
}

int main(int argc, char *argv[])
{
	static struct mb_rule set[2][64];
	char err[MB_ERR_LEN];
	__u8 mac[MB_ETH_ALEN];
	struct timespec gap;
	long i, count, failed = 0;
	struct mbnl *nl;
	size_t n[2];

	if (argc != 6 || mb_parse_mac(argv[1], mac)) {
		fprintf(stderr, "usage: swapper MAC FILE_A FILE_B COUNT GAP_US\n");
		return 2;
	}
	n[0] = load(argv[2], set[0], 64);
	n[1] = load(argv[3], set[1], 64);
	count = atol(argv[4]);
	gap.tv_sec = atol(argv[5]) / 1000000;
	gap.tv_nsec = atol(argv[5]) % 1000000 * 1000;
	nl = mbnl_open(err, sizeof(err));
	if (!nl) {
		fprintf(stderr, "swapper: %s\n", err);
		return 2;
	}
	for (i = 0; i < count; i++) {
		if (mbnl_add_rules(nl, mac, set[i % 2], n[i % 2], true, err,
				   sizeof(err))) {
			fprintf(stderr, "swapper: replace %ld: %s\n", i, err);
			failed++;
		}
		if (gap.tv_sec || gap.tv_nsec)
			nanosleep(&gap, NULL);
	}
	mbnl_close(nl);
	printf("replaces %ld failed %ld\n", count - failed, failed);
	return failed ? 1 : 0;
}
