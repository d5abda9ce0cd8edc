// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * swapper - replaces a middlebox's configuration COUNT times, alternating
 * between FILE_A and FILE_B, from one process: under TCG a fork and exec
 * of mbadm per replace would allow a few hundred in the time of the test.
 * Each file holds either firewall rules (lines "A <MAC> <class> ...": one
 * MBSTATE_CMD_NEW_RULE with MBSTATE_A_REPLACE each, as `mbadm replace'
 * sends it) or one load-balancer configuration (an "R L <MAC> ..." line:
 * MBSTATE_CMD_NEW_MB with MBSTATE_A_REPLACE, as `mbadm replace' sends
 * it); both files the same kind. Sleeps GAP_US microseconds between two
 * replaces. Prints "replaces N failed N"; exits 1 if one failed.
 *
 *   swapper MAC FILE_A FILE_B COUNT GAP_US	(tests/vm/t68-atomic-swap.sh)
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <mbvisor/cmd.h>
#include <mbvisor/mbnl.h>

/* What one file holds: rules, or a load-balancer registration. */
struct conf {
	struct mb_rule rules[64];
	size_t n;
	bool lb;
	struct mb_cmd reg;
};

static void load(const char *path, struct conf *c)
{
	char line[512], err[MB_ERR_LEN] = "";
	struct mb_cmd cmd;
	FILE *f = fopen(path, "r");

	if (!f) {
		perror(path);
		exit(2);
	}
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (!line[0])
			continue;
		if (mb_cmd_parse(line, strlen(line), &cmd, err, sizeof(err)))
			goto bad;
		if (cmd.op == MB_OP_REGISTER && cmd.service == MBSTATE_SVC_L &&
		    !c->n && !c->lb) {
			c->lb = true;
			c->reg = cmd;
			continue;
		}
		snprintf(err, sizeof(err), "%s", c->lb ?
			 "a load-balancer configuration is one R L line" :
			 "not a rule (A <MAC> <class> ...) or R L");
		if (c->lb || cmd.op != MB_OP_ADD_RULE || c->n == 64)
			goto bad;
		c->rules[c->n++] = cmd.rule;
	}
	fclose(f);
	return;
bad:
	fprintf(stderr, "%s: `%s': %s\n", path, line, err);
	exit(2);
}

int main(int argc, char *argv[])
{
	static struct conf set[2];
	char err[MB_ERR_LEN];
	__u8 mac[MB_ETH_ALEN];
	struct timespec gap;
	long i, count, failed = 0;
	struct mbnl *nl;

	if (argc != 6 || mb_parse_mac(argv[1], mac)) {
		fprintf(stderr, "usage: swapper MAC FILE_A FILE_B COUNT GAP_US\n");
		return 2;
	}
	load(argv[2], &set[0]);
	load(argv[3], &set[1]);
	if (set[0].lb != set[1].lb) {
		fprintf(stderr, "swapper: %s and %s are not the same kind\n",
			argv[2], argv[3]);
		return 2;
	}
	count = atol(argv[4]);
	gap.tv_sec = atol(argv[5]) / 1000000;
	gap.tv_nsec = atol(argv[5]) % 1000000 * 1000;
	nl = mbnl_open(err, sizeof(err));
	if (!nl) {
		fprintf(stderr, "swapper: %s\n", err);
		return 2;
	}
	for (i = 0; i < count; i++) {
		const struct conf *c = &set[i % 2];
		int ret;

		if (c->lb)
			ret = mbnl_lb_replace(nl, &c->reg, NULL, 0, err,
					      sizeof(err));
		else
			ret = mbnl_add_rules(nl, mac, c->rules, c->n, true,
					     err, sizeof(err));
		if (ret) {
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
