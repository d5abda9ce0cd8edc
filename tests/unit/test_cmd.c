// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Unit tests of the command language (common/cmd.c, docs/commands.md).
 *
 * Every text is handed to the parser in a heap buffer of exactly its length,
 * without a terminating NUL, so that ASan or valgrind catch a read past the
 * end. Every accepted command is also formatted and parsed again, and must
 * come back identical.
 *
 *   make bin/test_cmd && bin/test_cmd
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <mbvisor/cmd.h>

#define MB_MAC	"52:34:56:00:12:22"

static const __u8 mb_mac[MB_ETH_ALEN] = { 0x52, 0x34, 0x56, 0x00, 0x12, 0x22 };

static __be32 ip4(__u8 a, __u8 b, __u8 c, __u8 d)
{
	__u8 bytes[4] = { a, b, c, d };
	__be32 ip;

	memcpy(&ip, bytes, 4);
	return ip;
}

static int is_zero(const void *p, size_t n)
{
	const unsigned char *c = p;
	size_t i;

	for (i = 0; i < n; i++)
		if (c[i])
			return 0;
	return 1;
}

/* Parses @len bytes of @s from a buffer of exactly @len bytes. */
static int parse_n(const char *s, size_t len, struct mb_cmd *cmd, char *err,
		   size_t errlen)
{
	char *copy = NULL;
	int ret;

	if (len) {
		copy = malloc(len);
		assert_non_null(copy);
		memcpy(copy, s, len);
	}
	ret = mb_cmd_parse(copy, len, cmd, err, errlen);
	free(copy);
	return ret;
}

/* Formats @cmd, parses the result and wants @cmd back; returns the text. */
static void roundtrip(const struct mb_cmd *cmd, char *out, size_t outlen)
{
	struct mb_cmd again;
	char err[MB_ERR_LEN], out2[512];
	int n, n2;

	n = mb_cmd_format(cmd, out, outlen);
	if (n < 0)
		fail_msg("mb_cmd_format failed for op %d", cmd->op);
	assert_int_equal((size_t)n, strlen(out));
	memset(&again, 0xa5, sizeof(again));
	if (parse_n(out, (size_t)n, &again, err, sizeof(err)))
		fail_msg("formatted `%s' does not parse: %s", out, err);
	if (memcmp(cmd, &again, sizeof(again)))
		fail_msg("`%s' does not parse back to the same command", out);
	n2 = mb_cmd_format(&again, out2, sizeof(out2));
	assert_int_equal(n2, n);
	assert_string_equal(out2, out);
}

static void parse_ok(const char *s, struct mb_cmd *cmd)
{
	char err[MB_ERR_LEN] = "x", out[512];

	memset(cmd, 0xa5, sizeof(*cmd));
	if (parse_n(s, strlen(s), cmd, err, sizeof(err)))
		fail_msg("`%s' refused: %s", s, err);
	assert_string_equal(err, "");
	roundtrip(cmd, out, sizeof(out));
}

/* @s parses, and formats as @canon (NULL: as @s itself). */
static void canon(const char *s, const char *want)
{
	struct mb_cmd cmd;
	char out[512];

	parse_ok(s, &cmd);
	assert_true(mb_cmd_format(&cmd, out, sizeof(out)) > 0);
	assert_string_equal(out, want ? want : s);
}

static void parse_err_n(const char *s, size_t len, const char *want)
{
	struct mb_cmd cmd;
	char err[MB_ERR_LEN];

	memset(&cmd, 0xa5, sizeof(cmd));
	memset(err, 0, sizeof(err));
	if (!parse_n(s, len, &cmd, err, sizeof(err)))
		fail_msg("`%.*s' accepted, wanted an error with `%s'",
			 (int)len, s, want);
	if (!strstr(err, want))
		fail_msg("`%.*s': got error `%s', wanted `%s'", (int)len, s,
			 err, want);
	assert_true(is_zero(&cmd, sizeof(cmd)));
}

static void parse_err(const char *s, const char *want)
{
	parse_err_n(s, strlen(s), want);
}

static void base_cmd(struct mb_cmd *c, enum mb_op op)
{
	memset(c, 0, sizeof(*c));
	c->op = op;
	memcpy(c->mac, mb_mac, MB_ETH_ALEN);
}

static void assert_cmd(const struct mb_cmd *got, const struct mb_cmd *want)
{
	assert_int_equal(got->op, want->op);
	assert_memory_equal(got->mac, want->mac, MB_ETH_ALEN);
	assert_int_equal(got->service, want->service);
	assert_int_equal(got->ip, want->ip);
	assert_int_equal(got->lb.type, want->lb.type);
	assert_int_equal(got->lb.src_ip, want->lb.src_ip);
	assert_int_equal(got->lb.dst_ip, want->lb.dst_ip);
	assert_int_equal(got->rule.cls, want->rule.cls);
	assert_int_equal(got->rule.fields, want->rule.fields);
	assert_int_equal(got->rule.valued, want->rule.valued);
	assert_memory_equal(got, want, sizeof(*got));
}

/* ---- The report's examples (section 4.2.1). ---- */

static void test_report_register(void **state)
{
	struct mb_cmd cmd, want;

	(void)state;
	base_cmd(&want, MB_OP_REGISTER);
	want.service = MBSTATE_SVC_F;
	want.ip = ip4(10, 129, 126, 115);
	parse_ok("R F 52:34:56:00:12:22 10.129.126.115", &cmd);
	assert_cmd(&cmd, &want);
	canon("R F 52:34:56:00:12:22 10.129.126.115", NULL);
	parse_ok("@R F 52:34:56:00:12:22 10.129.126.115@", &cmd);
	assert_cmd(&cmd, &want);
}

static void test_report_add(void **state)
{
	static const __u8 src[MB_ETH_ALEN] = { 0x12, 0x13, 0x14, 0x15, 0x16,
					       0x17 };
	struct mb_cmd cmd, want;

	(void)state;
	base_cmd(&want, MB_OP_ADD_RULE);
	want.rule.cls = MBSTATE_CLASS_MAC;
	want.rule.fields = MBSTATE_FIELD_S | MBSTATE_FIELD_P;
	want.rule.valued = want.rule.fields;
	memcpy(want.rule.src_mac, src, MB_ETH_ALEN);
	want.rule.ethertype = 0x0800;
	parse_ok("A 52:34:56:00:12:22 M 5 s 12:13:14:15:16:17 p 8", &cmd);
	assert_cmd(&cmd, &want);
	assert_int_equal(cmd.rule.fields, 5);
	assert_int_equal(cmd.rule.ethertype, 0x0800);
	canon("A 52:34:56:00:12:22 M 5 s 12:13:14:15:16:17 p 8",
	      "A 52:34:56:00:12:22 M 5 s 12:13:14:15:16:17 p ipv4");
}

static void test_report_del(void **state)
{
	struct mb_cmd cmd, want;

	(void)state;
	base_cmd(&want, MB_OP_DEL_RULE);
	want.rule.cls = MBSTATE_CLASS_MAC;
	want.rule.fields = MBSTATE_FIELD_S;
	parse_ok("D 52:34:56:00:12:22 M 4 s", &cmd);
	assert_cmd(&cmd, &want);
	assert_int_equal(cmd.rule.valued, 0);
	canon("D 52:34:56:00:12:22 M 4 s", NULL);
}

/* ---- Every op. ---- */

static void test_ops(void **state)
{
	struct mb_cmd cmd, want;

	(void)state;
	base_cmd(&want, MB_OP_ENABLE);
	parse_ok("A " MB_MAC, &cmd);
	assert_cmd(&cmd, &want);
	canon("A " MB_MAC, NULL);

	base_cmd(&want, MB_OP_DISABLE);
	parse_ok("D " MB_MAC, &cmd);
	assert_cmd(&cmd, &want);
	canon("D " MB_MAC "  ", "D " MB_MAC);

	base_cmd(&want, MB_OP_UNREGISTER);
	parse_ok("X " MB_MAC, &cmd);
	assert_cmd(&cmd, &want);
	canon("X " MB_MAC, NULL);

	base_cmd(&want, MB_OP_QUERY);
	parse_ok("Q " MB_MAC, &cmd);
	assert_cmd(&cmd, &want);
	canon("Q\t" MB_MAC, "Q " MB_MAC);

	parse_err("Z " MB_MAC,
		  "Unknown command `Z' (expected R, A, D, X or Q)");
	parse_err("r F " MB_MAC " 10.0.0.1", "Unknown command `r'");
	parse_err("a " MB_MAC, "Unknown command `a'");
	parse_err("RF " MB_MAC " 10.0.0.1", "Unknown command `RF'");
	parse_err("AA " MB_MAC, "Unknown command `AA'");
	parse_err("X", "Missing MAC address (usage: X <MAC>)");
	parse_err("Q", "Missing MAC address (usage: Q <MAC>)");
	parse_err("A", "Missing MAC address (usage: A <MAC>");
	parse_err("D", "Missing MAC address (usage: D <MAC>");
	parse_err("X " MB_MAC " 1", "Unexpected token `1' after the end");
	parse_err("Q " MB_MAC " Q", "Unexpected token `Q' after the end");
	parse_err("X 52:34:56", "Unable to parse MAC address: `52:34:56'");
}

static void test_register_fw(void **state)
{
	struct mb_cmd cmd;

	(void)state;
	parse_ok("R F 02:00:00:00:00:01 223.255.255.255", &cmd);
	assert_int_equal(cmd.ip, ip4(223, 255, 255, 255));
	parse_ok("R F 02:00:00:00:00:01 240.0.0.1", &cmd);
	parse_ok("R F 02:00:00:00:00:01 255.255.255.254", &cmd);
	parse_ok("R F 02:00:00:00:00:01 0.0.0.1", &cmd);
	assert_int_equal(cmd.ip, ip4(0, 0, 0, 1));

	parse_err("R", "Missing service after `R'");
	parse_err("R X " MB_MAC " 10.0.0.1",
		  "Unknown service `X' (expected F for firewall or L");
	parse_err("R f " MB_MAC " 10.0.0.1", "Unknown service `f'");
	parse_err("R F", "Missing MAC address (usage: R F <MAC> <IP> "
		  "[vlan <1-4094>])");
	parse_err("R F " MB_MAC, "Missing IP address (usage: R F <MAC> <IP> "
		  "[vlan <1-4094>])");
	parse_err("R F " MB_MAC " 10.0.0.1 0 0.0.0.0 10.0.0.2",
		  "Unexpected token `0' after the end of the command "
		  "(usage: R F <MAC> <IP> [vlan <1-4094>])");
	parse_err("R F " MB_MAC " 0.0.0.0",
		  "The IP address `0.0.0.0' is unspecified; it "
		  "must be unicast");
	parse_err("R F " MB_MAC " 224.0.0.1",
		  "The IP address `224.0.0.1' is multicast");
	parse_err("R F " MB_MAC " 239.255.255.255",
		  "`239.255.255.255' is multicast");
	parse_err("R F " MB_MAC " 255.255.255.255",
		  "`255.255.255.255' is the broadcast address");
	parse_err("R F 01:00:5e:00:00:01 10.0.0.1",
		  "MAC address `01:00:5e:00:00:01' is multicast");
	parse_err("R F ff:ff:ff:ff:ff:ff 10.0.0.1",
		  "MAC address `ff:ff:ff:ff:ff:ff' is multicast");
	parse_err("R F 00:00:00:00:00:00 10.0.0.1",
		  "MAC address `00:00:00:00:00:00' is all zero");
	parse_err("R F 0:0:0:0:0:0 10.0.0.1",
		  "MAC address `0:0:0:0:0:0' is all zero");
	/* the middlebox MAC of every command is checked the same way */
	parse_err("X 03:00:00:00:00:01", "`03:00:00:00:00:01' is multicast");
	parse_err("A 00:00:00:00:00:00", "is all zero");
}

static void test_register_lb(void **state)
{
	struct mb_cmd cmd, want;

	(void)state;
	base_cmd(&want, MB_OP_REGISTER);
	want.service = MBSTATE_SVC_L;
	want.ip = ip4(10, 0, 0, 1);
	want.lb.type = 0;
	want.lb.dst_ip = ip4(10, 0, 0, 9);
	want.backend.ip = want.lb.dst_ip;
	want.backend.weight = 1;
	parse_ok("R L " MB_MAC " 10.0.0.1 0 0.0.0.0 10.0.0.9", &cmd);
	assert_cmd(&cmd, &want);
	canon("R L " MB_MAC " 10.0.0.1 0 0.0.0.0 10.0.0.9", NULL);

	want.lb.type = 1;
	want.lb.src_ip = ip4(192, 168, 1, 7);
	parse_ok("R L " MB_MAC " 10.0.0.1 1 192.168.1.7 10.0.0.9", &cmd);
	assert_cmd(&cmd, &want);
	canon("@ R L " MB_MAC " 10.0.0.1 1 192.168.1.7 10.0.0.9 @",
	      "R L " MB_MAC " 10.0.0.1 1 192.168.1.7 10.0.0.9");
	/* the source may be the middlebox; only the backend may not */
	parse_ok("R L " MB_MAC " 10.0.0.1 1 10.0.0.1 10.0.0.9", &cmd);

	parse_err("R L " MB_MAC " 10.0.0.1",
		  "Missing load-balancer type (usage: R L <MAC> <IP> <type> "
		  "<srcIP> <dstIP> [mac <MAC>] [weight <0-1000>] "
		  "[vlan <1-4094>])");
	parse_err("R L " MB_MAC " 10.0.0.1 0", "Missing source address");
	parse_err("R L " MB_MAC " 10.0.0.1 0 0.0.0.0",
		  "Missing backend address");
	parse_err("R L " MB_MAC " 10.0.0.1 2 0.0.0.0 10.0.0.9",
		  "Unknown load-balancer type `2' (expected 0");
	parse_err("R L " MB_MAC " 10.0.0.1 01 0.0.0.0 10.0.0.9",
		  "Unknown load-balancer type `01'");
	parse_err("R L " MB_MAC " 10.0.0.1 -0 0.0.0.0 10.0.0.9",
		  "Unknown load-balancer type `-0'");
	parse_err("R L " MB_MAC " 10.0.0.1 0 10.0.0.5 10.0.0.9",
		  "source address must be 0.0.0.0, not `10.0.0.5'");
	parse_err("R L " MB_MAC " 10.0.0.1 1 0.0.0.0 10.0.0.9",
		  "`0.0.0.0' is unspecified");
	parse_err("R L " MB_MAC " 10.0.0.1 1 224.1.2.3 10.0.0.9",
		  "`224.1.2.3' is multicast");
	parse_err("R L " MB_MAC " 10.0.0.1 1 255.255.255.255 10.0.0.9",
		  "`255.255.255.255' is the broadcast address");
	parse_err("R L " MB_MAC " 10.0.0.1 0 0.0.0.0 10.0.0.1",
		  "The backend `10.0.0.1' must not be the middlebox itself");
	parse_err("R L " MB_MAC " 10.0.0.1 0 0.0.0.0 0.0.0.0",
		  "The backend address `0.0.0.0' is unspecified");
	parse_err("R L " MB_MAC " 10.0.0.1 0 0.0.0.0 230.0.0.1",
		  "The backend address `230.0.0.1' is multicast");
	parse_err("R L " MB_MAC " 10.0.0.1 0 0.0.0.0 255.255.255.255",
		  "is the broadcast address");
	parse_err("R L " MB_MAC " 10.0.0.1 0 0.0.0.0 10.0.0.9 x",
		  "Unexpected token `x'");
	parse_err("R L " MB_MAC " 10.0.0.1 0 0.0.0.0 10.0.0",
		  "Unable to parse IP address: `10.0.0'");
	parse_err("R L " MB_MAC " 10.0.0.1 0 any 10.0.0.9",
		  "Unable to parse IP address: `any'");
}

/* Our extensions of R L: the backend's MAC and weight, in any order. */
static void test_register_lb_options(void **state)
{
	static const __u8 bmac[MB_ETH_ALEN] = { 0x02, 0, 0, 0, 0, 0x09 };
	struct mb_cmd cmd, want;

	(void)state;
	base_cmd(&want, MB_OP_REGISTER);
	want.service = MBSTATE_SVC_L;
	want.ip = ip4(10, 0, 0, 1);
	want.lb.dst_ip = ip4(10, 0, 0, 9);
	want.backend.ip = want.lb.dst_ip;
	want.backend.weight = 1;
	want.backend.has_mac = 1;
	memcpy(want.backend.mac, bmac, MB_ETH_ALEN);
	parse_ok("R L " MB_MAC " 10.0.0.1 0 0.0.0.0 10.0.0.9 mac 2:0:0:0:0:9",
		 &cmd);
	assert_cmd(&cmd, &want);
	canon("R L " MB_MAC " 10.0.0.1 0 0.0.0.0 10.0.0.9 mac 2:0:0:0:0:9",
	      "R L " MB_MAC " 10.0.0.1 0 0.0.0.0 10.0.0.9 "
	      "mac 02:00:00:00:00:09");
	want.backend.weight = 7;
	parse_ok("R L " MB_MAC " 10.0.0.1 0 0.0.0.0 10.0.0.9 weight 7 "
		 "mac 02:00:00:00:00:09", &cmd);
	assert_cmd(&cmd, &want);
	canon("R L " MB_MAC " 10.0.0.1 0 0.0.0.0 10.0.0.9 weight 7 "
	      "mac 02:00:00:00:00:09",
	      "R L " MB_MAC " 10.0.0.1 0 0.0.0.0 10.0.0.9 "
	      "mac 02:00:00:00:00:09 weight 7");
	/* the default weight is not printed; weight 0 is */
	canon("R L " MB_MAC " 10.0.0.1 0 0.0.0.0 10.0.0.9 weight 1",
	      "R L " MB_MAC " 10.0.0.1 0 0.0.0.0 10.0.0.9");
	canon("R L " MB_MAC " 10.0.0.1 0 0.0.0.0 10.0.0.9 weight 0", NULL);
	canon("R L " MB_MAC " 10.0.0.1 1 10.0.0.7 10.0.0.9 weight 1000",
	      NULL);

	parse_err("R L " MB_MAC " 10.0.0.1 0 0.0.0.0 10.0.0.9 weight 1001",
		  "Unable to parse weight: `1001' (expected 0 to 1000)");
	parse_err("R L " MB_MAC " 10.0.0.1 0 0.0.0.0 10.0.0.9 weight 07",
		  "Unable to parse weight: `07'");
	parse_err("R L " MB_MAC " 10.0.0.1 0 0.0.0.0 10.0.0.9 weight -1",
		  "Unable to parse weight: `-1'");
	parse_err("R L " MB_MAC " 10.0.0.1 0 0.0.0.0 10.0.0.9 weight",
		  "Missing value after `weight' (usage: R L");
	parse_err("R L " MB_MAC " 10.0.0.1 0 0.0.0.0 10.0.0.9 mac",
		  "Missing value after `mac'");
	parse_err("R L " MB_MAC " 10.0.0.1 0 0.0.0.0 10.0.0.9 weight 2 "
		  "weight 3", "Option `weight' is given twice");
	parse_err("R L " MB_MAC " 10.0.0.1 0 0.0.0.0 10.0.0.9 mac 2:0:0:0:0:9 "
		  "mac 2:0:0:0:0:8", "Option `mac' is given twice");
	parse_err("R L " MB_MAC " 10.0.0.1 0 0.0.0.0 10.0.0.9 mac 2:0:0:0:9",
		  "Unable to parse backend MAC address: `2:0:0:0:9'");
	parse_err("R L " MB_MAC " 10.0.0.1 0 0.0.0.0 10.0.0.9 "
		  "mac ff:ff:ff:ff:ff:ff",
		  "Backend MAC address `ff:ff:ff:ff:ff:ff' is multicast");
	parse_err("R L " MB_MAC " 10.0.0.1 0 0.0.0.0 10.0.0.9 "
		  "mac 00:00:00:00:00:00",
		  "Backend MAC address `00:00:00:00:00:00' is all zero");
	parse_err("R L " MB_MAC " 10.0.0.1 0 0.0.0.0 10.0.0.9 mac " MB_MAC,
		  "The backend MAC address `" MB_MAC "' must not be the "
		  "middlebox's own");
	parse_err("R L " MB_MAC " 10.0.0.1 0 0.0.0.0 10.0.0.9 MAC 2:0:0:0:0:9",
		  "Unexpected token `MAC' after the end of the command");
	parse_err("R L " MB_MAC " 10.0.0.1 0 0.0.0.0 10.0.0.9 weight 2 x",
		  "Unexpected token `x' after the end of the command");
}

/* R F and R L bound to a VLAN: "vlan <VID>", our extension. */
static void test_register_vlan(void **state)
{
	struct mb_cmd cmd, want;

	(void)state;
	base_cmd(&want, MB_OP_REGISTER);
	want.service = MBSTATE_SVC_F;
	want.ip = ip4(10, 0, 0, 100);
	want.vlan = 10;
	parse_ok("R F " MB_MAC " 10.0.0.100 vlan 10", &cmd);
	assert_cmd(&cmd, &want);
	assert_int_equal(cmd.vlan, 10);
	canon("R F " MB_MAC " 10.0.0.100 vlan 10", NULL);
	canon("@ R F " MB_MAC "\t10.0.0.100  vlan\t10 @",
	      "R F " MB_MAC " 10.0.0.100 vlan 10");
	canon("R F " MB_MAC " 10.0.0.100 vlan 1", NULL);
	canon("R F " MB_MAC " 10.0.0.100 vlan 4094", NULL);
	/* without the option: not bound */
	parse_ok("R F " MB_MAC " 10.0.0.100", &cmd);
	assert_int_equal(cmd.vlan, 0);

	/* R L: with the backend's options, in any order */
	base_cmd(&want, MB_OP_REGISTER);
	want.service = MBSTATE_SVC_L;
	want.ip = ip4(10, 0, 0, 1);
	want.lb.dst_ip = ip4(10, 0, 0, 9);
	want.backend.ip = want.lb.dst_ip;
	want.backend.weight = 3;
	want.vlan = 20;
	parse_ok("R L " MB_MAC " 10.0.0.1 0 0.0.0.0 10.0.0.9 vlan 20 "
		 "weight 3", &cmd);
	assert_cmd(&cmd, &want);
	canon("R L " MB_MAC " 10.0.0.1 0 0.0.0.0 10.0.0.9 vlan 20 weight 3",
	      "R L " MB_MAC " 10.0.0.1 0 0.0.0.0 10.0.0.9 weight 3 vlan 20");
	canon("R L " MB_MAC " 10.0.0.1 0 0.0.0.0 10.0.0.9 weight 0 "
	      "mac 02:00:00:00:00:09 vlan 4094",
	      "R L " MB_MAC " 10.0.0.1 0 0.0.0.0 10.0.0.9 "
	      "mac 02:00:00:00:00:09 weight 0 vlan 4094");

	/* bad values are quoted, and refused */
	parse_err("R F " MB_MAC " 10.0.0.100 vlan 0",
		  "Unable to parse VLAN: `0' (expected 1 to 4094)");
	parse_err("R F " MB_MAC " 10.0.0.100 vlan 4095",
		  "Unable to parse VLAN: `4095' (expected 1 to 4094)");
	parse_err("R F " MB_MAC " 10.0.0.100 vlan 65546",
		  "Unable to parse VLAN: `65546'");
	parse_err("R F " MB_MAC " 10.0.0.100 vlan 010",
		  "Unable to parse VLAN: `010'");
	parse_err("R F " MB_MAC " 10.0.0.100 vlan -1",
		  "Unable to parse VLAN: `-1'");
	parse_err("R F " MB_MAC " 10.0.0.100 vlan 0x0a",
		  "Unable to parse VLAN: `0x0a'");
	parse_err("R F " MB_MAC " 10.0.0.100 vlan ten",
		  "Unable to parse VLAN: `ten'");
	parse_err("R F " MB_MAC " 10.0.0.100 vlan "
		  "123456789012345678901234567890123456",
		  "Unable to parse VLAN: `12345678901234567890123456789012...'");
	parse_err("R F " MB_MAC " 10.0.0.100 vlan",
		  "Missing value after `vlan' (usage: R F <MAC> <IP> "
		  "[vlan <1-4094>])");
	parse_err("R F " MB_MAC " 10.0.0.100 vlan 10 vlan 20",
		  "Option `vlan' is given twice");
	parse_err("R F " MB_MAC " 10.0.0.100 vlan 10 10",
		  "Unexpected token `10' after the end of the command");
	parse_err("R F " MB_MAC " 10.0.0.100 VLAN 10",
		  "Unexpected token `VLAN' after the end of the command");
	parse_err("R F " MB_MAC " 10.0.0.100 weight 1",
		  "Unexpected token `weight' after the end of the command");
	parse_err("R F " MB_MAC " 10.0.0.100 mac 2:0:0:0:0:9",
		  "Unexpected token `mac' after the end of the command");
	parse_err("R L " MB_MAC " 10.0.0.1 0 0.0.0.0 10.0.0.9 vlan 0",
		  "Unable to parse VLAN: `0'");
	parse_err("R L " MB_MAC " 10.0.0.1 0 0.0.0.0 10.0.0.9 vlan 5 weight 1 "
		  "vlan 5", "Option `vlan' is given twice");
	/* a registration's option, not a backend's, nor any other command's */
	parse_err("A " MB_MAC " L 10.0.0.9 vlan 10",
		  "Option `vlan' belongs to the registration (R), not to a "
		  "backend (usage: A <MAC> L <IP>");
	parse_err("D " MB_MAC " L 10.0.0.9 vlan 10",
		  "Unexpected token `vlan' after the end of the command");
	parse_err("X " MB_MAC " vlan 10",
		  "Unexpected token `vlan' after the end of the command");
	parse_err("Q " MB_MAC " vlan 10",
		  "Unexpected token `vlan' after the end of the command");
	parse_err("A " MB_MAC " vlan 10", "Unknown filter class `vlan'");

	/* the formatter writes only what the parser can read back */
	base_cmd(&cmd, MB_OP_REGISTER);
	cmd.service = MBSTATE_SVC_F;
	cmd.ip = ip4(10, 0, 0, 100);
	cmd.vlan = 4095;
	{
		char buf[128];

		assert_int_equal(mb_cmd_format(&cmd, buf, sizeof(buf)), -1);
		assert_string_equal(buf, "");
		cmd.vlan = 4094;
		assert_true(mb_cmd_format(&cmd, buf, sizeof(buf)) > 0);
		assert_string_equal(buf, "R F " MB_MAC " 10.0.0.100 vlan 4094");
		base_cmd(&cmd, MB_OP_QUERY);
		cmd.vlan = 10;
		assert_int_equal(mb_cmd_format(&cmd, buf, sizeof(buf)), -1);
		base_cmd(&cmd, MB_OP_ENABLE);
		cmd.vlan = 10;
		assert_int_equal(mb_cmd_format(&cmd, buf, sizeof(buf)), -1);
	}
}

/* A <MAC> L and D <MAC> L: backends of a registered load balancer. */
static void test_backends(void **state)
{
	static const __u8 bmac[MB_ETH_ALEN] = { 0x02, 0, 0, 0, 0, 0x0a };
	struct mb_cmd cmd, want;

	(void)state;
	base_cmd(&want, MB_OP_ADD_BACKEND);
	want.backend.ip = ip4(10, 0, 0, 10);
	want.backend.weight = 1;
	parse_ok("A " MB_MAC " L 10.0.0.10", &cmd);
	assert_cmd(&cmd, &want);
	canon("A " MB_MAC " L 10.0.0.10", NULL);
	want.backend.weight = 3;
	want.backend.has_mac = 1;
	memcpy(want.backend.mac, bmac, MB_ETH_ALEN);
	parse_ok("@A " MB_MAC " L 10.0.0.10 weight 3 mac 02:00:00:00:00:0A@",
		 &cmd);
	assert_cmd(&cmd, &want);
	canon("A " MB_MAC " L 10.0.0.10 weight 3 mac 02:00:00:00:00:0A",
	      "A " MB_MAC " L 10.0.0.10 mac 02:00:00:00:00:0a weight 3");
	canon("A " MB_MAC " L 10.0.0.10 weight 0", NULL);

	base_cmd(&want, MB_OP_DEL_BACKEND);
	want.backend.ip = ip4(10, 0, 0, 10);
	parse_ok("D " MB_MAC " L 10.0.0.10", &cmd);
	assert_cmd(&cmd, &want);
	canon("D	" MB_MAC "	L	10.0.0.10", "D " MB_MAC " L 10.0.0.10");

	parse_err("A " MB_MAC " L",
		  "Missing backend address (usage: A <MAC> L <IP> "
		  "[mac <MAC>] [weight <0-1000>])");
	parse_err("D " MB_MAC " L", "Missing backend address (usage: D <MAC> "
		  "L <IP>)");
	parse_err("A " MB_MAC " L 10.0.0", "Unable to parse IP address: "
		  "`10.0.0'");
	parse_err("A " MB_MAC " L 0.0.0.0",
		  "The backend address `0.0.0.0' is unspecified");
	parse_err("A " MB_MAC " L 224.0.0.5",
		  "The backend address `224.0.0.5' is multicast");
	parse_err("A " MB_MAC " L 255.255.255.255",
		  "The backend address `255.255.255.255' is the broadcast "
		  "address");
	parse_err("D " MB_MAC " L 10.0.0.10 weight 1",
		  "Unexpected token `weight' after the end of the command "
		  "(usage: D <MAC> L <IP>)");
	parse_err("A " MB_MAC " L 10.0.0.10 weight 1001",
		  "Unable to parse weight: `1001'");
	parse_err("A " MB_MAC " L 10.0.0.10 mac 01:00:5e:00:00:01",
		  "Backend MAC address `01:00:5e:00:00:01' is multicast");
	parse_err("A " MB_MAC " L 10.0.0.10 mac " MB_MAC,
		  "must not be the middlebox's own");
	parse_err("A " MB_MAC " l 10.0.0.10", "Unknown filter class `l' "
		  "(expected I, M or T, or L for a backend)");
	parse_err("A " MB_MAC " LL 10.0.0.10", "Unknown filter class `LL'");
}

/* The formatter refuses backends the parser cannot produce. */
static void test_backend_format_refuses(void **state)
{
	struct mb_cmd cmd;
	char buf[128];

	(void)state;
	base_cmd(&cmd, MB_OP_ADD_BACKEND);
	assert_int_equal(mb_cmd_format(&cmd, buf, sizeof(buf)), -1);
	cmd.backend.ip = ip4(10, 0, 0, 2);
	cmd.backend.weight = 1001;
	assert_int_equal(mb_cmd_format(&cmd, buf, sizeof(buf)), -1);
	cmd.backend.weight = 1000;
	assert_true(mb_cmd_format(&cmd, buf, sizeof(buf)) > 0);
	cmd.backend.mac[0] = 2;	/* a MAC without has_mac */
	assert_int_equal(mb_cmd_format(&cmd, buf, sizeof(buf)), -1);
	cmd.backend.has_mac = 2;
	assert_int_equal(mb_cmd_format(&cmd, buf, sizeof(buf)), -1);

	base_cmd(&cmd, MB_OP_DEL_BACKEND);
	cmd.backend.ip = ip4(10, 0, 0, 2);
	assert_true(mb_cmd_format(&cmd, buf, sizeof(buf)) > 0);
	cmd.backend.weight = 1;	/* D <MAC> L takes no weight */
	assert_int_equal(mb_cmd_format(&cmd, buf, sizeof(buf)), -1);

	base_cmd(&cmd, MB_OP_REGISTER);
	cmd.service = MBSTATE_SVC_L;
	cmd.ip = ip4(10, 0, 0, 1);
	cmd.lb.dst_ip = ip4(10, 0, 0, 2);
	cmd.backend.ip = ip4(10, 0, 0, 3);	/* not the dstIP */
	cmd.backend.weight = 1;
	assert_int_equal(mb_cmd_format(&cmd, buf, sizeof(buf)), -1);
	cmd.service = MBSTATE_SVC_F;		/* R F has no backend */
	assert_int_equal(mb_cmd_format(&cmd, buf, sizeof(buf)), -1);
	base_cmd(&cmd, MB_OP_UNREGISTER);
	cmd.backend.weight = 1;
	assert_int_equal(mb_cmd_format(&cmd, buf, sizeof(buf)), -1);
}

/* ---- Syntax of MAC and IPv4 addresses. ---- */

static void test_mac_syntax(void **state)
{
	static const char *const bad[] = {
		"52:34:56", "52:34:56:00:12", "52:34:56:00:12:22:33",
		"523:34:56:00:12:22", "52::56:00:12:22", ":34:56:00:12:22",
		"52:34:56:00:12:", "52:34:56:00:12:22:", "52-34-56-00-12-22",
		"g2:34:56:00:12:22", "52:34:56:00:12:2z", "5234.5600.1222",
		"0x52:34:56:00:12:22", "+2:34:56:00:12:22", ":::::",
		"52:34:56:00:12:022", "52:34:56:00:12 :22",
	};
	struct mb_cmd cmd;
	char text[128], want[128];
	size_t i;

	(void)state;
	parse_ok("X 2:3:4:5:6:7", &cmd);
	assert_memory_equal(cmd.mac, "\x02\x03\x04\x05\x06\x07", 6);
	canon("X 2:3:4:5:6:7", "X 02:03:04:05:06:07");
	parse_ok("X AA:bb:Cc:dD:0e:F0", &cmd);
	assert_memory_equal(cmd.mac, "\xaa\xbb\xcc\xdd\x0e\xf0", 6);
	canon("X AA:bb:Cc:dD:0e:F0", "X aa:bb:cc:dd:0e:f0");
	parse_ok("X fe:ff:ff:ff:ff:ff", &cmd);
	assert_memory_equal(cmd.mac, "\xfe\xff\xff\xff\xff\xff", 6);
	parse_ok("X 00:00:00:00:00:01", &cmd);

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "X %s", bad[i]);
		snprintf(want, sizeof(want), "Unable to parse MAC address: "
			 "`%s'",
			 strchr(bad[i], ' ') ? "52:34:56:00:12" : bad[i]);
		parse_err(text, want);
	}
}

static void test_ip_syntax(void **state)
{
	static const char *const bad[] = {
		"10.0.0", "10.0.0.0.1", "256.0.0.1", "10.0.0.256", "010.0.0.1",
		"10.00.0.1", "+1.0.0.1", "1..0.1", ".1.2.3", "1.2.3.",
		"1.2.3.4.",
		"1.2.3.4/32", "0x0a.0.0.1", "1.2.3.-4", "1.2.3.4a", "a1.2.3.4",
		"1000.0.0.1", "1.2.3.0004", "10", "", "4294967295", "1.2.3.1e1",
	};
	struct mb_cmd cmd;
	__be32 ip;
	char text[128], want[128];
	size_t i;

	(void)state;
	parse_ok("R F " MB_MAC " 1.2.3.4", &cmd);
	assert_int_equal(cmd.ip, ip4(1, 2, 3, 4));
	parse_ok("R F " MB_MAC " 100.200.0.255", &cmd);
	assert_int_equal(cmd.ip, ip4(100, 200, 0, 255));

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (!bad[i][0])
			continue;
		snprintf(text, sizeof(text), "R F " MB_MAC " %s", bad[i]);
		snprintf(want, sizeof(want), "Unable to parse IP address: `%s'",
			 bad[i]);
		parse_err(text, want);
		ip = 0x12345678;
		assert_int_equal(mb_parse_ipv4(bad[i], &ip), -1);
		assert_int_equal(ip, 0x12345678);
	}
}

/* ---- Class I. ---- */

static void test_class_ip(void **state)
{
	struct mb_cmd cmd, want;

	(void)state;
	base_cmd(&want, MB_OP_ADD_RULE);
	want.rule.cls = MBSTATE_CLASS_IP;
	want.rule.fields = want.rule.valued = MBSTATE_FIELD_ALL;
	want.rule.src_ip = ip4(10, 1, 0, 0);
	want.rule.src_plen = 16;
	want.rule.dst_ip = ip4(192, 168, 1, 1);
	want.rule.dst_plen = 32;
	want.rule.tos = 0x10;
	want.rule.proto = 6;
	parse_ok("A " MB_MAC " I 15 p tcp t 16 d 192.168.1.1 s 10.1.0.0/16",
		 &cmd);
	assert_cmd(&cmd, &want);
	canon("A " MB_MAC " I 15 p tcp t 16 d 192.168.1.1 s 10.1.0.0/16",
	      "A " MB_MAC " I 15 s 10.1.0.0/16 d 192.168.1.1 t 0x10 p tcp");
	canon("A " MB_MAC " I 15 s 10.1.0.0/16 d 192.168.1.1/32 t 0x10 p 6",
	      "A " MB_MAC " I 15 s 10.1.0.0/16 d 192.168.1.1 t 0x10 p tcp");

	/* s and d: any address, prefixes 0..32 */
	base_cmd(&want, MB_OP_ADD_RULE);
	want.rule.cls = MBSTATE_CLASS_IP;
	want.rule.fields = want.rule.valued = MBSTATE_FIELD_S;
	want.rule.src_plen = 0;
	parse_ok("A " MB_MAC " I 4 s 0.0.0.0/0", &cmd);
	assert_cmd(&cmd, &want);
	canon("A " MB_MAC " I 4 s 0.0.0.0/0", NULL);
	parse_ok("A " MB_MAC " I 4 s 0.0.0.0", &cmd);
	assert_int_equal(cmd.rule.src_plen, 32);
	assert_int_equal(cmd.rule.src_ip, 0);
	canon("A " MB_MAC " I 8 d 255.255.255.255", NULL);
	canon("A " MB_MAC " I 8 d 224.0.0.0/4", NULL);
	canon("A " MB_MAC " I 8 d 128.0.0.0/1", NULL);
	canon("A " MB_MAC " I 8 d 10.0.0.1/32", "A " MB_MAC " I 8 d 10.0.0.1");
	canon("A " MB_MAC " I 8 d 10.0.0.2/31", NULL);
	parse_ok("A " MB_MAC " I 8 d 10.0.0.2/31", &cmd);
	assert_int_equal(cmd.rule.dst_plen, 31);
	assert_int_equal(cmd.rule.dst_ip, ip4(10, 0, 0, 2));
	assert_int_equal(cmd.rule.src_plen, 0);

	parse_err("A " MB_MAC " I 4 s 10.0.0.5/24",
		  "`10.0.0.5/24' has host bits set; did you mean 10.0.0.0/24?");
	parse_err("A " MB_MAC " I 8 d 255.255.255.255/0",
		  "did you mean 0.0.0.0/0?");
	parse_err("A " MB_MAC " I 8 d 10.0.0.1/31",
		  "did you mean 10.0.0.0/31?");
	parse_err("A " MB_MAC " I 4 s 10.0.0.0/33",
		  "Unable to parse prefix length of `10.0.0.0/33' (expected /0 "
		  "to /32)");
	parse_err("A " MB_MAC " I 4 s 10.0.0.0/",
		  "prefix length of `10.0.0.0/'");
	parse_err("A " MB_MAC " I 4 s 10.0.0.0/08", "prefix length");
	parse_err("A " MB_MAC " I 4 s 10.0.0.0/-1", "prefix length");
	parse_err("A " MB_MAC " I 4 s 10.0.0.0/8/8", "prefix length");
	parse_err("A " MB_MAC " I 4 s 10.0.0.0/99999999999999999999",
		  "prefix length");
	parse_err("A " MB_MAC " I 4 s /8",
		  "Unable to parse IPv4 address or prefix: `/8'");
	parse_err("A " MB_MAC " I 4 s 10.0.0/8",
		  "Unable to parse IPv4 address or prefix: `10.0.0/8'");
	parse_err("A " MB_MAC " I 4 s any", "prefix: `any'");

	/* t: TOS */
	parse_ok("A " MB_MAC " I 2 t 0", &cmd);
	assert_int_equal(cmd.rule.tos, 0);
	assert_int_equal(cmd.rule.fields, MBSTATE_FIELD_T);
	canon("A " MB_MAC " I 2 t 0", "A " MB_MAC " I 2 t 0x00");
	parse_ok("A " MB_MAC " I 2 t 255", &cmd);
	assert_int_equal(cmd.rule.tos, 255);
	parse_ok("A " MB_MAC " I 2 t 0xB8", &cmd);
	assert_int_equal(cmd.rule.tos, 0xb8);
	canon("A " MB_MAC " I 2 t 0XB8", "A " MB_MAC " I 2 t 0xb8");
	parse_ok("A " MB_MAC " I 2 t 0x1", &cmd);
	assert_int_equal(cmd.rule.tos, 1);
	parse_err("A " MB_MAC " I 2 t 256",
		  "Unable to parse TOS: `256' (expected 0 to 255 or 0x00 to "
		  "0xff)");
	parse_err("A " MB_MAC " I 2 t 0x100", "Unable to parse TOS: `0x100'");
	parse_err("A " MB_MAC " I 2 t 0x", "Unable to parse TOS: `0x'");
	parse_err("A " MB_MAC " I 2 t 0xg", "TOS: `0xg'");
	parse_err("A " MB_MAC " I 2 t 010", "TOS: `010'");
	parse_err("A " MB_MAC " I 2 t -1", "TOS: `-1'");
	parse_err("A " MB_MAC " I 2 t ef", "TOS: `ef'");

	/* p: IP protocol */
	static const struct {
		const char *in;
		__u8 proto;
		const char *out;
	} protos[] = {
		{ "0", 0, "0" }, { "1", 1, "icmp" }, { "icmp", 1, "icmp" },
		{ "tcp", 6, "tcp" }, { "udp", 17, "udp" }, { "17", 17, "udp" },
		{ "gre", 47, "gre" }, { "esp", 50, "esp" },
		{ "icmpv6", 58, "icmpv6" }, { "sctp", 132, "sctp" },
		{ "132", 132, "sctp" }, { "8", 8, "8" }, { "255", 255, "255" },
	};
	char text[128], out[128];
	size_t i;

	for (i = 0; i < sizeof(protos) / sizeof(protos[0]); i++) {
		snprintf(text, sizeof(text), "A " MB_MAC " I 1 p %s",
			 protos[i].in);
		snprintf(out, sizeof(out), "A " MB_MAC " I 1 p %s",
			 protos[i].out);
		parse_ok(text, &cmd);
		assert_int_equal(cmd.rule.proto, protos[i].proto);
		assert_int_equal(cmd.rule.fields, MBSTATE_FIELD_P);
		canon(text, out);
	}
	parse_err("A " MB_MAC " I 1 p 256",
		  "Unable to parse IP protocol: `256' (expected 0 to 255, icmp");
	parse_err("A " MB_MAC " I 1 p TCP", "IP protocol: `TCP'");
	parse_err("A " MB_MAC " I 1 p ipv4", "IP protocol: `ipv4'");
	parse_err("A " MB_MAC " I 1 p 0x06", "IP protocol: `0x06'");
	parse_err("A " MB_MAC " I 1 p 06", "IP protocol: `06'");
}

/* ---- Class M. ---- */

static void test_class_mac(void **state)
{
	struct mb_cmd cmd, want;

	(void)state;
	base_cmd(&want, MB_OP_ADD_RULE);
	want.rule.cls = MBSTATE_CLASS_MAC;
	want.rule.fields = want.rule.valued = MBSTATE_FIELD_S |
					      MBSTATE_FIELD_D |
					      MBSTATE_FIELD_P;
	memcpy(want.rule.src_mac, "\x01\x00\x5e\x00\x00\x01", 6);
	memset(want.rule.dst_mac, 0xff, 6);
	want.rule.ethertype = 0x86dd;
	parse_ok("A " MB_MAC " M 13 d FF:FF:FF:FF:FF:FF p ipv6 "
		 "s 1:0:5e:0:0:1", &cmd);
	assert_cmd(&cmd, &want);
	canon("A " MB_MAC " M 13 d FF:FF:FF:FF:FF:FF p ipv6 s 1:0:5e:0:0:1",
	      "A " MB_MAC " M 13 s 01:00:5e:00:00:01 d ff:ff:ff:ff:ff:ff "
	      "p ipv6");
	canon("A " MB_MAC " M 8 d 00:00:00:00:00:00", NULL);

	static const struct {
		const char *in;
		__u16 type;
		const char *out;
	} types[] = {
		{ "ipv4", 0x0800, "ipv4" }, { "arp", 0x0806, "arp" },
		{ "ipv6", 0x86dd, "ipv6" }, { "vlan", 0x8100, "vlan" },
		{ "qinq", 0x88a8, "qinq" }, { "lldp", 0x88cc, "lldp" },
		{ "0x0800", 0x0800, "ipv4" }, { "0x800", 0x0800, "ipv4" },
		{ "0x86DD", 0x86dd, "ipv6" }, { "0X88cc", 0x88cc, "lldp" },
		{ "0x0600", 0x0600, "0x0600" }, { "0x600", 0x0600, "0x0600" },
		{ "0xffff", 0xffff, "0xffff" }, { "0x88e5", 0x88e5, "0x88e5" },
		/* decimal, at least 1536: the EtherType itself */
		{ "1536", 0x0600, "0x0600" }, { "2048", 0x0800, "ipv4" },
		{ "2054", 0x0806, "arp" }, { "65535", 0xffff, "0xffff" },
		{ "1544", 0x0608, "0x0608" },
		/* decimal below 1536: byte-swapped as in the report */
		{ "8", 0x0800, "ipv4" }, { "129", 0x8100, "vlan" },
		{ "6", 0x0600, "0x0600" }, { "255", 0xff00, "0xff00" },
		{ "1535", 0xff05, "0xff05" }, { "262", 0x0601, "0x0601" },
	};
	char text[128], out[128];
	size_t i;

	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		snprintf(text, sizeof(text), "A " MB_MAC " M 1 p %s",
			 types[i].in);
		snprintf(out, sizeof(out), "A " MB_MAC " M 1 p %s",
			 types[i].out);
		parse_ok(text, &cmd);
		if (cmd.rule.ethertype != types[i].type)
			fail_msg("`%s': EtherType 0x%04x, wanted 0x%04x", text,
				 cmd.rule.ethertype, types[i].type);
		canon(text, out);
	}
	parse_err("A " MB_MAC " M 1 p 0",
		  "EtherType `0' read byte-swapped as in the report is 0x0000, "
		  "below 0x0600");
	parse_err("A " MB_MAC " M 1 p 1", "`1' read byte-swapped as in the "
		  "report is 0x0100");
	parse_err("A " MB_MAC " M 1 p 5", "is 0x0500");
	parse_err("A " MB_MAC " M 1 p 1280", "`1280' read byte-swapped");
	parse_err("A " MB_MAC " M 1 p 0x05ff",
		  "EtherType `0x05ff' is below 0x0600, which is an 802.3 "
		  "length, not an EtherType");
	parse_err("A " MB_MAC " M 1 p 0x0", "`0x0' is below 0x0600");
	parse_err("A " MB_MAC " M 1 p 0x10000",
		  "Unable to parse EtherType: `0x10000' (expected 0x0600 to "
		  "0xffff)");
	parse_err("A " MB_MAC " M 1 p 0x00800", "EtherType: `0x00800'");
	parse_err("A " MB_MAC " M 1 p 0x", "EtherType: `0x'");
	parse_err("A " MB_MAC " M 1 p 65536",
		  "Unable to parse EtherType: `65536' (expected a name");
	parse_err("A " MB_MAC " M 1 p 08", "EtherType: `08'");
	parse_err("A " MB_MAC " M 1 p IPv4", "EtherType: `IPv4'");
	parse_err("A " MB_MAC " M 1 p tcp", "EtherType: `tcp'");
	parse_err("A " MB_MAC " M 4 s 1:2:3:4:5",
		  "Unable to parse MAC address: `1:2:3:4:5'");
	parse_err("A " MB_MAC " M 8 d 10.0.0.1",
		  "Unable to parse MAC address: `10.0.0.1'");
}

/* ---- Class T. ---- */

static void test_class_tp(void **state)
{
	struct mb_cmd cmd, want;

	(void)state;
	base_cmd(&want, MB_OP_ADD_RULE);
	want.rule.cls = MBSTATE_CLASS_TP;
	want.rule.fields = want.rule.valued = MBSTATE_FIELD_S |
					      MBSTATE_FIELD_D |
					      MBSTATE_FIELD_P;
	want.rule.sport_min = 1024;
	want.rule.sport_max = 65535;
	want.rule.dport_min = 80;
	want.rule.dport_max = 80;
	want.rule.proto = 17;
	parse_ok("A " MB_MAC " T 13 s 1024-65535 d 80 p udp", &cmd);
	assert_cmd(&cmd, &want);
	canon("A " MB_MAC " T 13 p 17 d 80-80 s 1024-65535",
	      "A " MB_MAC " T 13 s 1024-65535 d 80 p udp");

	parse_ok("A " MB_MAC " T 4 s 0", &cmd);
	assert_int_equal(cmd.rule.sport_min, 0);
	assert_int_equal(cmd.rule.sport_max, 0);
	assert_int_equal(cmd.rule.proto, 0);
	parse_ok("A " MB_MAC " T 8 d 0-65535", &cmd);
	assert_int_equal(cmd.rule.dport_min, 0);
	assert_int_equal(cmd.rule.dport_max, 65535);
	canon("A " MB_MAC " T 8 d 0-65535", NULL);
	canon("A " MB_MAC " T 8 d 65535", NULL);
	canon("A " MB_MAC " T 1 p tcp", NULL);
	canon("A " MB_MAC " T 1 p 6", "A " MB_MAC " T 1 p tcp");
	parse_ok("A " MB_MAC " T 1 p 6", &cmd);
	assert_int_equal(cmd.rule.proto, 6);

	parse_err("A " MB_MAC " T 4 s 65536",
		  "Unable to parse port or port range: `65536' (expected 0 to "
		  "65535 or low-high)");
	parse_err("A " MB_MAC " T 4 s 10-5",
		  "Port range `10-5' is reversed");
	parse_err("A " MB_MAC " T 4 s -5", "port range: `-5'");
	parse_err("A " MB_MAC " T 4 s 5-", "port range: `5-'");
	parse_err("A " MB_MAC " T 4 s 1-2-3", "port range: `1-2-3'");
	parse_err("A " MB_MAC " T 4 s 080", "port range: `080'");
	parse_err("A " MB_MAC " T 4 s http", "port range: `http'");
	parse_err("A " MB_MAC " T 4 s 1--2", "port range: `1--2'");
	parse_err("A " MB_MAC " T 8 d 0x50", "port range: `0x50'");
	parse_err("A " MB_MAC " T 1 p icmp",
		  "Transport protocol must be tcp or udp (6 or 17), not "
		  "`icmp'");
	parse_err("A " MB_MAC " T 1 p 7", "not `7'");
	parse_err("A " MB_MAC " T 1 p sctp", "not `sctp'");
	parse_err("A " MB_MAC " T 1 p TCP", "not `TCP'");
}

/* ---- Classes, masks and fields. ---- */

static void test_mask_and_fields(void **state)
{
	struct mb_cmd cmd;

	(void)state;
	parse_err("A " MB_MAC " X 4 s 1",
		  "Unknown filter class `X' (expected I, M or T, or L for a "
		  "backend)");
	parse_err("A " MB_MAC " m 4 s 1", "Unknown filter class `m'");
	parse_err("D " MB_MAC " IM 4 s", "Unknown filter class `IM'");
	parse_err("A " MB_MAC " M", "Missing mask after class `M'");
	parse_err("A " MB_MAC " M 0",
		  "Unable to parse mask: `0' (expected 1 to 15: p=1, t=2, s=4, "
		  "d=8)");
	parse_err("A " MB_MAC " M 16", "Unable to parse mask: `16'");
	parse_err("A " MB_MAC " M 05 s 1:2:3:4:5:6 p ipv4", "mask: `05'");
	parse_err("A " MB_MAC " M -4 s 1:2:3:4:5:6", "mask: `-4'");
	parse_err("A " MB_MAC " M 0x4 s 1:2:3:4:5:6", "mask: `0x4'");
	parse_err("A " MB_MAC " M s", "mask: `s'");
	parse_err("A " MB_MAC " M 2 t 1",
		  "Mask 2 of class M names field t, but field t (TOS) exists "
		  "only in class I");
	parse_err("D " MB_MAC " T 15", "Mask 15 of class T names field t, "
		  "but field t (TOS) exists only in class I");
	parse_err("A " MB_MAC " M 5 s 1:2:3:4:5:6 d 1:2:3:4:5:6",
		  "Mask 5 of class M names fields s and p, but `d' was given");
	parse_err("A " MB_MAC " I 13 s 10.0.0.0/8 t 1",
		  "Mask 13 of class I names fields s, d and p, but `t' was "
		  "given");
	parse_err("A " MB_MAC " I 4 d 10.0.0.1",
		  "Mask 4 of class I names field s, but `d' was given");
	parse_err("A " MB_MAC " M 5 s 1:2:3:4:5:6 s 1:2:3:4:5:7",
		  "Field `s' is given twice");
	parse_err("D " MB_MAC " M 5 s s", "Field `s' is given twice");
	parse_err("A " MB_MAC " M 5 x 1",
		  "Expected a field (s, d, t or p), not `x'");
	parse_err("A " MB_MAC " M 5 S 1:2:3:4:5:6 p 8",
		  "Expected a field (s, d, t or p), not `S'");
	parse_err("A " MB_MAC " M 5 src 1:2:3:4:5:6 p 8", "not `src'");
	parse_err("A " MB_MAC " M 5 s 1:2:3:4:5:6 1:2:3:4:5:6",
		  "Expected a field (s, d, t or p), not `1:2:3:4:5:6'");
	parse_err("A " MB_MAC " M 5", "Missing field `s' (mask 5 of class M "
		  "names fields s and p)");
	parse_err("A " MB_MAC " M 5 s 1:2:3:4:5:6",
		  "Missing field `p' (mask 5 of class M names fields s and p)");
	parse_err("D " MB_MAC " I 15 p t s",
		  "Missing field `d' (mask 15 of class I names fields s, d, t "
		  "and p)");
	parse_err("A " MB_MAC " T 1", "Missing field `p' (mask 1 of class T "
		  "names field p)");
	parse_err("A " MB_MAC " M 5 s", "Missing value for field `s'");
	parse_err("A " MB_MAC " M 5 s p 8", "Missing value for field `s'");
	parse_err("A " MB_MAC " M 5 s 1:2:3:4:5:6 p",
		  "Missing value for field `p'");
	parse_err("A " MB_MAC " M 4 s 1:2:3:4:5:6 extra",
		  "Unexpected token `extra' after the end of the command");
	parse_err("A " MB_MAC " M 4 s 1:2:3:4:5:6 p 8",
		  "Unexpected token `p' after the end");
	parse_err("D " MB_MAC " M 4 s p", "Unexpected token `p' after the end");

	/* fields in any order, blanks of any kind and number */
	parse_ok("A\t" MB_MAC "  M \t 5\t\tp 8   s  12:13:14:15:16:17", &cmd);
	assert_int_equal(cmd.rule.fields, 5);
	assert_int_equal(cmd.rule.ethertype, 0x0800);
}

/* ---- D with a class: selectors. ---- */

static void test_del_selectors(void **state)
{
	struct mb_cmd cmd, want;

	(void)state;
	base_cmd(&want, MB_OP_DEL_RULE);
	want.rule.cls = MBSTATE_CLASS_IP;
	want.rule.fields = MBSTATE_FIELD_S | MBSTATE_FIELD_D;
	want.rule.valued = MBSTATE_FIELD_D;
	want.rule.dst_ip = ip4(10, 0, 0, 0);
	want.rule.dst_plen = 8;
	parse_ok("D " MB_MAC " I 12 s d 10.0.0.0/8", &cmd);
	assert_cmd(&cmd, &want);
	canon("D " MB_MAC " I 12 d 10.0.0.0/8 s",
	      "D " MB_MAC " I 12 s d 10.0.0.0/8");

	/* T p without a value: no protocol, and still a good selector */
	base_cmd(&want, MB_OP_DEL_RULE);
	want.rule.cls = MBSTATE_CLASS_TP;
	want.rule.fields = MBSTATE_FIELD_P;
	parse_ok("D " MB_MAC " T 1 p", &cmd);
	assert_cmd(&cmd, &want);
	canon("D " MB_MAC " T 1 p", NULL);
	want.rule.valued = MBSTATE_FIELD_P;
	want.rule.proto = 17;
	parse_ok("D " MB_MAC " T 1 p udp", &cmd);
	assert_cmd(&cmd, &want);

	base_cmd(&want, MB_OP_DEL_RULE);
	want.rule.cls = MBSTATE_CLASS_MAC;
	want.rule.fields = MBSTATE_FIELD_S | MBSTATE_FIELD_P;
	want.rule.valued = want.rule.fields;
	memcpy(want.rule.src_mac, "\x12\x13\x14\x15\x16\x17", 6);
	want.rule.ethertype = 0x0800;
	parse_ok("D " MB_MAC " M 5 s 12:13:14:15:16:17 p 8", &cmd);
	assert_cmd(&cmd, &want);

	canon("D " MB_MAC " I 15 s t d p", "D " MB_MAC " I 15 s d t p");
	parse_ok("D " MB_MAC " I 15 p t s d", &cmd);
	assert_int_equal(cmd.rule.fields, 15);
	assert_int_equal(cmd.rule.valued, 0);
	canon("D " MB_MAC " I 15 p t 0x08 s d",
	      "D " MB_MAC " I 15 s d t 0x08 p");
	canon("D " MB_MAC " T 12 s 1-2 d", NULL);
	canon("D " MB_MAC " M 9 d p arp", NULL);

	parse_err("D " MB_MAC " M 4 s 1:2:3", "Unable to parse MAC address: "
		  "`1:2:3'");
	parse_err("D " MB_MAC " T 1 p icmp", "not `icmp'");
	parse_err("D " MB_MAC " I 4 s 10.0.0.1/8", "did you mean 10.0.0.0/8?");
}

/* ---- Framing, bytes, length. ---- */

static void test_framing(void **state)
{
	struct mb_cmd cmd, want;

	(void)state;
	base_cmd(&want, MB_OP_QUERY);
	parse_ok("@Q " MB_MAC "@", &cmd);
	assert_cmd(&cmd, &want);
	parse_ok("  @Q " MB_MAC "@\t ", &cmd);
	assert_cmd(&cmd, &want);
	parse_ok("\t@ \tQ " MB_MAC "\t @  ", &cmd);
	assert_cmd(&cmd, &want);
	parse_ok("   Q " MB_MAC "   ", &cmd);
	assert_cmd(&cmd, &want);

	parse_err("@Q " MB_MAC, "Missing closing `@'");
	parse_err("Q " MB_MAC "@", "Missing opening `@'");
	parse_err("@", "Missing closing `@'");
	parse_err("  @  ", "Missing closing `@'");
	parse_err("@@", "Empty command");
	parse_err(" @ \t @ ", "Empty command");
	parse_err("@@Q " MB_MAC "@@", "Unexpected `@' at offset 1");
	parse_err("@@Q " MB_MAC "@", "Unexpected `@' at offset 1");
	parse_err("@Q " MB_MAC "@@", "Unexpected `@' at offset 20");
	parse_err("Q @" MB_MAC, "Unexpected `@' at offset 2");
	parse_err("@Q " MB_MAC "@ x", "Missing closing `@'");
	parse_err("x @Q " MB_MAC "@", "Missing opening `@'");
	parse_err("@Q 52:34:56:00:12:22@@Q 52:34:56:00:12:22@",
		  "Unexpected `@' at offset 20");
	parse_err("R F 52:34:56:00:12:22@10.0.0.1", "Unexpected `@' at offset "
		  "21");
}

static void test_bytes(void **state)
{
	static const char nul[] = "Q 52:34:56:00:12:22\0 junk";
	char text[64];
	unsigned int c;

	(void)state;
	parse_err_n(nul, sizeof(nul) - 1,
		    "Invalid byte 0x00 at offset 19 (only printable ASCII and "
		    "tab are allowed)");
	parse_err_n("\0Q 52:34:56:00:12:22", 20,
		    "Invalid byte 0x00 at offset 0");
	parse_err("Q 52:34:56:00:12:22\n", "Invalid byte 0x0a at offset 19");
	parse_err("Q 52:34:56:00:12:22\r\n", "Invalid byte 0x0d at offset 19");
	parse_err("Q\v52:34:56:00:12:22", "Invalid byte 0x0b at offset 1");
	parse_err("@Q 52:34:56:00:12:22\x7f@",
		  "Invalid byte 0x7f at offset 20");
	parse_err("Q 52:34:56:00:12:2\xc3\xa9",
		  "Invalid byte 0xc3 at offset 18");
	/* the first bad byte is reported, wherever the framing is broken */
	parse_err("@@\x01", "Invalid byte 0x01 at offset 2");

	for (c = 0; c < 256; c++) {
		struct mb_cmd cmd;
		char err[MB_ERR_LEN], want[64];
		int r;

		snprintf(text, sizeof(text), "X 52:34:56:00:12:22 ");
		text[19] = (char)c;
		r = parse_n(text, 20, &cmd, err, sizeof(err));
		if (c == ' ' || c == '\t') {
			assert_int_equal(r, 0);
		} else if (c < 0x20 || c > 0x7e) {
			assert_int_equal(r, -1);
			snprintf(want, sizeof(want),
				 "Invalid byte 0x%02x at offset 19", c);
			assert_non_null(strstr(err, want));
		} else {
			/* printable: a bad token */
			assert_int_equal(r, -1);
		}
	}
}

static void test_length(void **state)
{
	char text[MB_CMD_MAX_LEN + 16];
	const char *cmd_text = "Q " MB_MAC;
	struct mb_cmd cmd;
	char err[MB_ERR_LEN];
	size_t n = strlen(cmd_text);

	(void)state;
	/* exactly MB_CMD_MAX_LEN: blanks inside the command count */
	memset(text, ' ', sizeof(text));
	memcpy(text, cmd_text, n);
	text[MB_CMD_MAX_LEN - 1] = 'Q';
	assert_int_equal(parse_n(text, MB_CMD_MAX_LEN, &cmd, err, sizeof(err)),
			 -1);
	assert_string_equal(err, "Unexpected token `Q' after the end of the "
			    "command (usage: Q <MAC>)");
	text[MB_CMD_MAX_LEN - 1] = ' ';
	memcpy(text + MB_CMD_MAX_LEN - 2, "x", 1);
	assert_int_equal(parse_n(text, MB_CMD_MAX_LEN, &cmd, err, sizeof(err)),
			 -1);
	assert_string_equal(err, "Unexpected token `x' after the end of the "
			    "command (usage: Q <MAC>)");
	memset(text, ' ', sizeof(text));
	memcpy(text, cmd_text, n);
	text[MB_CMD_MAX_LEN - 1] = 'Z';
	text[MB_CMD_MAX_LEN] = 'Z';
	assert_int_equal(parse_n(text, MB_CMD_MAX_LEN + 1, &cmd, err,
				 sizeof(err)), -1);
	assert_string_equal(err, "Command is 257 bytes long; at most 256 are "
			    "allowed");

	/* the delimiters and the blanks around them do not count */
	memset(text, ' ', sizeof(text));
	text[3] = '@';
	memcpy(text + 4, cmd_text, n);
	text[4 + MB_CMD_MAX_LEN] = '@';
	assert_int_equal(parse_n(text, sizeof(text), &cmd, err, sizeof(err)),
			 0);
	assert_int_equal(cmd.op, MB_OP_QUERY);
	text[4 + MB_CMD_MAX_LEN] = ' ';
	text[5 + MB_CMD_MAX_LEN] = '@';
	assert_int_equal(parse_n(text, sizeof(text), &cmd, err, sizeof(err)),
			 -1);
	assert_string_equal(err, "Command is 257 bytes long; at most 256 are "
			    "allowed");

	/* a long command with a real token at its end */
	memset(text, ' ', sizeof(text));
	memcpy(text, "A " MB_MAC, n);
	memcpy(text + MB_CMD_MAX_LEN - 6, "M 8 d", 5);
	assert_int_equal(parse_n(text, MB_CMD_MAX_LEN, &cmd, err, sizeof(err)),
			 -1);
	assert_string_equal(err, "Missing value for field `d'");
}

static void test_empty(void **state)
{
	struct mb_cmd cmd;
	char err[MB_ERR_LEN];

	(void)state;
	assert_int_equal(mb_cmd_parse(NULL, 0, &cmd, err, sizeof(err)), -1);
	assert_string_equal(err, "Empty command");
	assert_int_equal(mb_cmd_parse("Q " MB_MAC, 0, &cmd, err, sizeof(err)),
			 -1);
	assert_string_equal(err, "Empty command");
	assert_int_equal(mb_cmd_parse(NULL, 5, &cmd, err, sizeof(err)), -1);
	assert_string_equal(err, "No command text");
	assert_int_equal(mb_cmd_parse("Q " MB_MAC, 19, NULL, err, sizeof(err)),
			 -1);
	assert_string_equal(err, "Internal error: no command to fill");
	parse_err(" ", "Empty command");
	parse_err(" \t \t", "Empty command");
}

/* The text ends at @len, wherever its NUL is. */
static void test_not_terminated(void **state)
{
	static const char text[] = "X 52:34:56:00:12:22 trailing garbage";
	struct mb_cmd cmd;
	char err[MB_ERR_LEN];
	char *buf;

	(void)state;
	buf = malloc(19);
	assert_non_null(buf);
	memcpy(buf, text, 19);
	assert_int_equal(mb_cmd_parse(buf, 19, &cmd, err, sizeof(err)), 0);
	assert_int_equal(cmd.op, MB_OP_UNREGISTER);
	assert_memory_equal(cmd.mac, mb_mac, 6);
	/* cut inside the MAC: a shorter but valid MAC, then an invalid one */
	assert_int_equal(mb_cmd_parse(buf, 18, &cmd, err, sizeof(err)), 0);
	assert_memory_equal(cmd.mac, "\x52\x34\x56\x00\x12\x02", 6);
	assert_int_equal(mb_cmd_parse(buf, 17, &cmd, err, sizeof(err)), -1);
	assert_string_equal(err, "Unable to parse MAC address: "
			    "`52:34:56:00:12:'");
	/* cut inside the op */
	assert_int_equal(mb_cmd_parse(buf, 1, &cmd, err, sizeof(err)), -1);
	assert_string_equal(err, "Missing MAC address (usage: X <MAC>)");
	free(buf);

	/* every prefix of every kind of command, each in its own buffer */
	static const char *const all[] = {
		"R L 52:34:56:00:12:22 10.0.0.1 1 10.0.0.2 10.0.0.3",
		"A 52:34:56:00:12:22 I 15 s 10.0.0.0/8 d 1.2.3.4 t 0xff p 255",
		"D 52:34:56:00:12:22 T 13 s 1-2 d 3 p udp",
		"A 52:34:56:00:12:22 L 10.0.0.4 mac 2:0:0:0:0:4 weight 55",
		"R L 52:34:56:00:12:22 10.0.0.1 0 0.0.0.0 10.0.0.3 weight 9",
		"@A 52:34:56:00:12:22 M 13 s 1:2:3:4:5:6 d 1:2:3:4:5:6 p 0x88cc@",
	};
	size_t i, n;

	for (i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		for (n = 0; n <= strlen(all[i]); n++) {
			int r = parse_n(all[i], n, &cmd, err, sizeof(err));

			if (n == strlen(all[i]))
				assert_int_equal(r, 0);
			else if (r == 0)
				roundtrip(&cmd, err, sizeof(err));
			else
				assert_true(err[0] != '\0');
		}
	}
}

/* ---- Error buffer handling and messages. ---- */

static void test_err_buffer(void **state)
{
	const char *bad = "Z " MB_MAC;
	struct mb_cmd cmd;
	char err[64];

	(void)state;
	assert_int_equal(mb_cmd_parse(bad, strlen(bad), &cmd, NULL, 100), -1);
	assert_int_equal(mb_cmd_parse(bad, strlen(bad), &cmd, NULL, 0), -1);

	memset(err, 'x', sizeof(err));
	assert_int_equal(mb_cmd_parse(bad, strlen(bad), &cmd, err, 0), -1);
	assert_int_equal(err[0], 'x');

	memset(err, 'x', sizeof(err));
	assert_int_equal(mb_cmd_parse(bad, strlen(bad), &cmd, err, 1), -1);
	assert_int_equal(err[0], '\0');
	assert_int_equal(err[1], 'x');

	memset(err, 'x', sizeof(err));
	assert_int_equal(mb_cmd_parse(bad, strlen(bad), &cmd, err, 10), -1);
	assert_string_equal(err, "Unknown c");
	assert_int_equal(err[10], 'x');

	/* success clears an old message */
	strcpy(err, "old");
	assert_int_equal(mb_cmd_parse("Q " MB_MAC, 19, &cmd, err, sizeof(err)),
			 0);
	assert_string_equal(err, "");

	/* every message fits in MB_ERR_LEN */
	{
		char big[MB_CMD_MAX_LEN + 1], e[MB_ERR_LEN + 64];
		size_t len;

		memset(big, 'A', sizeof(big));
		memcpy(big, "A " MB_MAC " M 5 ", 25);
		memset(e, 'x', sizeof(e));
		assert_int_equal(parse_n(big, MB_CMD_MAX_LEN, &cmd, e,
					 MB_ERR_LEN), -1);
		len = strlen(e);
		assert_true(len < MB_ERR_LEN);
		assert_int_equal(e[MB_ERR_LEN], 'x');
	}
}

static void test_long_token_quoted(void **state)
{
	char text[MB_CMD_MAX_LEN], want[128];
	struct mb_cmd cmd;
	char err[MB_ERR_LEN];
	size_t n;

	(void)state;
	n = (size_t)snprintf(text, sizeof(text), "X ");
	memset(text + n, 'a', 100);
	n += 100;
	assert_int_equal(parse_n(text, n, &cmd, err, sizeof(err)), -1);
	memset(want, 0, sizeof(want));
	strcpy(want, "Unable to parse MAC address: `");
	memset(want + strlen(want), 'a', 32);
	strcat(want, "...'");
	assert_string_equal(err, want);

	/* exactly 32 bytes: no ellipsis */
	n = 2 + 32;
	assert_int_equal(parse_n(text, n, &cmd, err, sizeof(err)), -1);
	want[strlen(want) - 4] = '\0';
	strcat(want, "'");
	assert_string_equal(err, want);

	/* a long unknown command */
	memset(text, 'Z', 200);
	assert_int_equal(parse_n(text, 200, &cmd, err, sizeof(err)), -1);
	assert_string_equal(err, "Unknown command "
			    "`ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ...' "
			    "(expected R, A, D, X or Q)");
}

/* ---- Formatting. ---- */

static void test_format_small_buffer(void **state)
{
	static const char *const texts[] = {
		"R L 52:34:56:00:12:22 10.0.0.1 1 10.0.0.2 10.0.0.3",
		"A 52:34:56:00:12:22 M 5 s 12:13:14:15:16:17 p ipv4",
		"D 52:34:56:00:12:22 M 4 s",
		"Q 52:34:56:00:12:22",
	};
	char buf[128];
	struct mb_cmd cmd;
	size_t i, len, full;

	(void)state;
	for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		parse_ok(texts[i], &cmd);
		full = strlen(texts[i]);
		for (len = 0; len <= full; len++) {
			memset(buf, 'x', sizeof(buf));
			assert_int_equal(mb_cmd_format(&cmd, buf, len), -1);
			if (len)
				assert_int_equal(buf[0], '\0');
			assert_int_equal(buf[len], 'x');
		}
		memset(buf, 'x', sizeof(buf));
		assert_int_equal(mb_cmd_format(&cmd, buf, full + 1), (int)full);
		assert_string_equal(buf, texts[i]);
		assert_int_equal(buf[full + 1], 'x');
	}
	assert_int_equal(mb_cmd_format(&cmd, NULL, 0), -1);
	assert_int_equal(mb_cmd_format(&cmd, NULL, 100), -1);
	assert_int_equal(mb_cmd_format(NULL, buf, sizeof(buf)), -1);
	assert_string_equal(buf, "");

	/* mb_rule_format */
	parse_ok("A 52:34:56:00:12:22 M 5 s 12:13:14:15:16:17 p 8", &cmd);
	assert_int_equal(mb_rule_format(&cmd.rule, buf, sizeof(buf)), 30);
	assert_string_equal(buf, "M 5 s 12:13:14:15:16:17 p ipv4");
	for (len = 0; len <= 30; len++) {
		memset(buf, 'x', sizeof(buf));
		assert_int_equal(mb_rule_format(&cmd.rule, buf, len), -1);
		assert_int_equal(buf[len], 'x');
	}
	parse_ok("D 52:34:56:00:12:22 I 12 s d 10.0.0.0/8", &cmd);
	assert_int_equal(mb_rule_format(&cmd.rule, buf, sizeof(buf)), 19);
	assert_string_equal(buf, "I 12 s d 10.0.0.0/8");
	assert_int_equal(mb_rule_format(NULL, buf, sizeof(buf)), -1);
}

static void test_format_refuses(void **state)
{
	struct mb_cmd cmd;
	char buf[128];

	(void)state;
	base_cmd(&cmd, MB_OP_NONE);
	assert_int_equal(mb_cmd_format(&cmd, buf, sizeof(buf)), -1);
	assert_string_equal(buf, "");
	cmd.op = (enum mb_op)99;
	assert_int_equal(mb_cmd_format(&cmd, buf, sizeof(buf)), -1);

	base_cmd(&cmd, MB_OP_REGISTER);
	cmd.service = MBSTATE_SVC_F | MBSTATE_SVC_L;
	assert_int_equal(mb_cmd_format(&cmd, buf, sizeof(buf)), -1);

	base_cmd(&cmd, MB_OP_ADD_RULE);
	assert_int_equal(mb_cmd_format(&cmd, buf, sizeof(buf)), -1);
	cmd.rule.cls = MBSTATE_CLASS_IP;
	assert_int_equal(mb_cmd_format(&cmd, buf, sizeof(buf)), -1);
	cmd.rule.fields = MBSTATE_FIELD_S;
	cmd.rule.src_plen = 33;
	assert_int_equal(mb_cmd_format(&cmd, buf, sizeof(buf)), -1);
	cmd.rule.src_plen = 32;
	/* an ADD rule prints every value, whatever valued says */
	assert_int_equal(mb_cmd_format(&cmd, buf, sizeof(buf)), 33);
	assert_string_equal(buf, "A 52:34:56:00:12:22 I 4 s 0.0.0.0");
	cmd.rule.tos = 1;	/* a value of a field not in the mask */
	assert_int_equal(mb_cmd_format(&cmd, buf, sizeof(buf)), -1);
	cmd.rule.tos = 0;
	cmd.rule.pad0 = 1;
	assert_int_equal(mb_cmd_format(&cmd, buf, sizeof(buf)), -1);

	base_cmd(&cmd, MB_OP_DEL_RULE);
	cmd.rule.cls = MBSTATE_CLASS_MAC;
	cmd.rule.fields = MBSTATE_FIELD_S;
	cmd.rule.valued = MBSTATE_FIELD_P;	/* not in fields */
	assert_int_equal(mb_cmd_format(&cmd, buf, sizeof(buf)), -1);
	cmd.rule.valued = 0;
	cmd.rule.src_mac[0] = 1;	/* a value without valued */
	assert_int_equal(mb_cmd_format(&cmd, buf, sizeof(buf)), -1);
	cmd.rule.fields = MBSTATE_FIELD_T;
	cmd.rule.src_mac[0] = 0;
	assert_int_equal(mb_cmd_format(&cmd, buf, sizeof(buf)), -1);

	base_cmd(&cmd, MB_OP_ADD_RULE);
	cmd.rule.cls = MBSTATE_CLASS_TP;
	cmd.rule.fields = cmd.rule.valued = MBSTATE_FIELD_P;
	cmd.rule.proto = 1;
	assert_int_equal(mb_cmd_format(&cmd, buf, sizeof(buf)), -1);
	cmd.rule.proto = 6;
	assert_true(mb_cmd_format(&cmd, buf, sizeof(buf)) > 0);
	cmd.rule.fields = cmd.rule.valued = MBSTATE_FIELD_S;
	cmd.rule.proto = 0;
	cmd.rule.sport_min = 2;
	cmd.rule.sport_max = 1;
	assert_int_equal(mb_cmd_format(&cmd, buf, sizeof(buf)), -1);
}

static void test_helpers(void **state)
{
	__u8 mac[MB_ETH_ALEN];
	char buf[18], ibuf[16];
	__be32 ip;

	(void)state;
	assert_int_equal(mb_parse_mac("52:34:56:00:12:22", mac), 0);
	assert_memory_equal(mac, mb_mac, 6);
	mb_format_mac(mac, buf);
	assert_string_equal(buf, "52:34:56:00:12:22");
	assert_int_equal(mb_parse_mac("1:2:3:4:5:6", mac), 0);
	assert_memory_equal(mac, "\x01\x02\x03\x04\x05\x06", 6);
	memcpy(mac, "\xde\xad\xbe\xef\x00\x01", 6);
	assert_int_equal(mb_parse_mac("52:34:56:00:12:22 ", mac), -1);
	assert_int_equal(mb_parse_mac("52:34:56:00:12:22:", mac), -1);
	assert_int_equal(mb_parse_mac("052:34:56:00:12:22", mac), -1);
	assert_int_equal(mb_parse_mac("", mac), -1);
	assert_int_equal(mb_parse_mac(NULL, mac), -1);
	assert_memory_equal(mac, "\xde\xad\xbe\xef\x00\x01", 6);
	mb_format_mac((const __u8 *)"\xff\x00\x0a\xb0\x01\x10", buf);
	assert_string_equal(buf, "ff:00:0a:b0:01:10");

	assert_int_equal(mb_parse_ipv4("10.129.126.115", &ip), 0);
	assert_int_equal(ip, ip4(10, 129, 126, 115));
	mb_format_ipv4(ip, ibuf);
	assert_string_equal(ibuf, "10.129.126.115");
	assert_int_equal(mb_parse_ipv4("255.255.255.255", &ip), 0);
	mb_format_ipv4(ip, ibuf);
	assert_string_equal(ibuf, "255.255.255.255");
	assert_int_equal(mb_parse_ipv4("0.0.0.0", &ip), 0);
	assert_int_equal(ip, 0);
	assert_int_equal(mb_parse_ipv4("255.255.255.2550", &ip), -1);
	assert_int_equal(mb_parse_ipv4(NULL, &ip), -1);

	assert_string_equal(mb_service_name(MBSTATE_SVC_F), "firewall");
	assert_string_equal(mb_service_name(MBSTATE_SVC_L), "load-balancer");
	assert_string_equal(mb_service_name(0), "unknown");
	assert_string_equal(mb_service_name(MBSTATE_SVC_ALL), "unknown");
}

/* ---- Generated commands and mutations. ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint32_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state >> 11);
}

static uint32_t rnd_edge(uint32_t max)
{
	switch (rnd() % 4) {
	case 0:
		return 0;
	case 1:
		return max;
	default:
		return rnd() % (max + 1);
	}
}

static __be32 rnd_unicast(void)
{
	for (;;) {
		__u8 b[4] = { (__u8)rnd(), (__u8)rnd(), (__u8)rnd(),
			      (__u8)rnd() };
		__be32 ip;

		if (rnd() % 8 == 0)
			b[0] = (rnd() & 1) ? 223 : 0;
		if ((b[0] & 0xf0) == 0xe0 || !(b[0] | b[1] | b[2] | b[3]) ||
		    (b[0] & b[1] & b[2] & b[3]) == 0xff)
			continue;
		memcpy(&ip, b, 4);
		return ip;
	}
}

static void rnd_mac(__u8 mac[MB_ETH_ALEN])
{
	size_t i;

	for (i = 0; i < MB_ETH_ALEN; i++)
		mac[i] = (__u8)rnd();
}

static void rnd_prefix(__be32 *ip, __u8 *plen)
{
	__u32 h = rnd(), m;
	__u8 b[4];

	*plen = (__u8)rnd_edge(32);
	m = *plen ? ~0U << (32 - *plen) : 0;
	h &= m;
	b[0] = (__u8)(h >> 24);
	b[1] = (__u8)(h >> 16);
	b[2] = (__u8)(h >> 8);
	b[3] = (__u8)h;
	memcpy(ip, b, 4);
}

static void rnd_range(__u16 *lo, __u16 *hi)
{
	__u16 a = (__u16)rnd_edge(65535), b = (__u16)rnd_edge(65535);

	if (rnd() & 1)
		b = a;
	*lo = a < b ? a : b;
	*hi = a < b ? b : a;
}

static void rnd_rule(struct mb_rule *r, int add)
{
	__u8 allowed, v;

	r->cls = (__u8)(1 + rnd() % 3);
	allowed = mb_class_fields(r->cls);
	do
		r->fields = (__u8)(rnd() & allowed);
	while (!r->fields);
	r->valued = add ? r->fields : (__u8)(rnd() & r->fields);
	v = r->valued;
	switch (r->cls) {
	case MBSTATE_CLASS_IP:
		if (v & MBSTATE_FIELD_S)
			rnd_prefix(&r->src_ip, &r->src_plen);
		if (v & MBSTATE_FIELD_D)
			rnd_prefix(&r->dst_ip, &r->dst_plen);
		if (v & MBSTATE_FIELD_T)
			r->tos = (__u8)rnd_edge(255);
		if (v & MBSTATE_FIELD_P)
			r->proto = (__u8)rnd_edge(255);
		break;
	case MBSTATE_CLASS_MAC:
		if (v & MBSTATE_FIELD_S)
			rnd_mac(r->src_mac);
		if (v & MBSTATE_FIELD_D)
			rnd_mac(r->dst_mac);
		if (v & MBSTATE_FIELD_P)
			r->ethertype = (__u16)(0x0600 +
					       rnd_edge(0xffff - 0x0600));
		break;
	default:
		if (v & MBSTATE_FIELD_S)
			rnd_range(&r->sport_min, &r->sport_max);
		if (v & MBSTATE_FIELD_D)
			rnd_range(&r->dport_min, &r->dport_max);
		if (v & MBSTATE_FIELD_P)
			r->proto = (rnd() & 1) ? 6 : 17;
		break;
	}
}

/* A backend for c->mac: any unicast address, maybe a MAC, a weight. */
static void rnd_backend(struct mb_cmd *c)
{
	c->backend.ip = rnd_unicast();
	c->backend.weight = (rnd() & 1) ? 1 : rnd() % 1001;
	if (rnd() & 1) {
		do {
			rnd_mac(c->backend.mac);
			c->backend.mac[0] &= 0xfe;
		} while (!(c->backend.mac[0] | c->backend.mac[1] |
			   c->backend.mac[2] | c->backend.mac[3] |
			   c->backend.mac[4] | c->backend.mac[5]) ||
			 !memcmp(c->backend.mac, c->mac, MB_ETH_ALEN));
		c->backend.has_mac = 1;
	}
}

static void rnd_cmd(struct mb_cmd *c)
{
	memset(c, 0, sizeof(*c));
	c->op = (enum mb_op)(MB_OP_REGISTER + rnd() % 9);
	do {
		rnd_mac(c->mac);
		c->mac[0] &= 0xfe;
	} while (!(c->mac[0] | c->mac[1] | c->mac[2] | c->mac[3] |
		   c->mac[4] | c->mac[5]));
	switch (c->op) {
	case MB_OP_REGISTER:
		c->ip = rnd_unicast();
		c->service = (rnd() & 1) ? MBSTATE_SVC_F : MBSTATE_SVC_L;
		if (c->service == MBSTATE_SVC_L) {
			c->lb.type = (__u8)(rnd() & 1);
			if (c->lb.type)
				c->lb.src_ip = rnd_unicast();
			do
				c->lb.dst_ip = rnd_unicast();
			while (c->lb.dst_ip == c->ip);
			rnd_backend(c);
			c->backend.ip = c->lb.dst_ip;
		}
		if (rnd() & 1)
			c->vlan = (__u16)(MBSTATE_VLAN_MIN +
					  rnd_edge(MBSTATE_VLAN_MAX -
						   MBSTATE_VLAN_MIN));
		break;
	case MB_OP_ADD_BACKEND:
		rnd_backend(c);
		break;
	case MB_OP_DEL_BACKEND:
		c->backend.ip = rnd_unicast();
		break;
	case MB_OP_ADD_RULE:
	case MB_OP_DEL_RULE:
		rnd_rule(&c->rule, c->op == MB_OP_ADD_RULE);
		break;
	default:
		break;
	}
}

static void test_roundtrip_generated(void **state)
{
	struct mb_cmd cmd;
	char out[512], framed[520];
	struct mb_cmd again;
	char err[MB_ERR_LEN];
	int i, n;

	(void)state;
	for (i = 0; i < 20000; i++) {
		rnd_cmd(&cmd);
		roundtrip(&cmd, out, sizeof(out));
		n = snprintf(framed, sizeof(framed), " @%s@\t", out);
		if (parse_n(framed, (size_t)n, &again, err, sizeof(err)))
			fail_msg("`%s' refused: %s", framed, err);
		assert_memory_equal(&cmd, &again, sizeof(cmd));
	}
}

static char rnd_char(const char *alphabet)
{
	return alphabet[rnd() % strlen(alphabet)];
}

/*
 * A small fuzzer: mutations of valid commands. Whatever the parser accepts
 * must format and parse back to itself; whatever it refuses must leave a
 * message and an all-zero command.
 */
static void test_mutations(void **state)
{
	static const char *const seeds[] = {
		"R F 52:34:56:00:12:22 10.129.126.115",
		"R L 52:34:56:00:12:22 10.0.0.1 1 10.0.0.2 10.0.0.3",
		"R L 52:34:56:00:12:22 10.0.0.1 0 0.0.0.0 10.0.0.3",
		"A 52:34:56:00:12:22 M 5 s 12:13:14:15:16:17 p 8",
		"D 52:34:56:00:12:22 M 4 s",
		"A 52:34:56:00:12:22 I 15 s 10.0.0.0/8 d 1.2.3.4 t 0xff p tcp",
		"D 52:34:56:00:12:22 I 15 s d 1.2.3.4/32 t p",
		"A 52:34:56:00:12:22 T 13 s 1-200 d 80 p udp",
		"@X 52:34:56:00:12:22@", "Q 52:34:56:00:12:22",
		"A 52:34:56:00:12:22", "D 52:34:56:00:12:22",
		"R L 52:34:56:00:12:22 10.0.0.1 0 0.0.0.0 10.0.0.3 "
		"mac 2:0:0:0:0:3 weight 12",
		"A 52:34:56:00:12:22 L 10.0.0.4 weight 0 mac 02:00:00:00:00:04",
		"D 52:34:56:00:12:22 L 10.0.0.4",
		"R F 52:34:56:00:12:22 10.0.0.100 vlan 10",
		"R L 52:34:56:00:12:22 10.0.0.1 0 0.0.0.0 10.0.0.3 vlan 4094 "
		"weight 2",
	};
	static const char alphabet[] =
		" \t@:./-0123456789abcdefxABCDEFIMTRXQLFsdtpmwvln";
	char text[MB_CMD_MAX_LEN + 8], out[512], err[MB_ERR_LEN];
	struct mb_cmd cmd;
	unsigned int accepted = 0;
	int i, k;

	(void)state;
	for (i = 0; i < 200000; i++) {
		const char *seed = seeds[rnd() % (sizeof(seeds) /
						   sizeof(seeds[0]))];
		size_t len = strlen(seed), pos;
		int muts = 1 + (int)(rnd() % 3);

		memcpy(text, seed, len);
		for (k = 0; k < muts; k++) {
			pos = len ? rnd() % len : 0;
			switch (rnd() % 5) {
			case 0:	/* replace */
				if (len)
					text[pos] = rnd_char(alphabet);
				break;
			case 1:	/* delete */
				if (len) {
					memmove(text + pos, text + pos + 1,
						len - pos - 1);
					len--;
				}
				break;
			case 2:	/* insert */
				if (len < sizeof(text) - 1) {
					memmove(text + pos + 1, text + pos,
						len - pos);
					text[pos] = rnd_char(alphabet);
					len++;
				}
				break;
			case 3:	/* any byte */
				if (len)
					text[pos] = (char)rnd();
				break;
			default: /* cut */
				len = pos;
				break;
			}
		}
		memset(err, 'x', sizeof(err));
		if (parse_n(text, len, &cmd, err, sizeof(err)) == 0) {
			accepted++;
			assert_string_equal(err, "");
			roundtrip(&cmd, out, sizeof(out));
		} else {
			assert_true(strlen(err) > 0);
			assert_true(strlen(err) < sizeof(err));
			assert_true(is_zero(&cmd, sizeof(cmd)));
		}
	}
	/* enough of them must survive to exercise the round trip */
	assert_true(accepted > 10000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_report_register),
		cmocka_unit_test(test_report_add),
		cmocka_unit_test(test_report_del),
		cmocka_unit_test(test_ops),
		cmocka_unit_test(test_register_fw),
		cmocka_unit_test(test_register_lb),
		cmocka_unit_test(test_register_lb_options),
		cmocka_unit_test(test_register_vlan),
		cmocka_unit_test(test_backends),
		cmocka_unit_test(test_backend_format_refuses),
		cmocka_unit_test(test_mac_syntax),
		cmocka_unit_test(test_ip_syntax),
		cmocka_unit_test(test_class_ip),
		cmocka_unit_test(test_class_mac),
		cmocka_unit_test(test_class_tp),
		cmocka_unit_test(test_mask_and_fields),
		cmocka_unit_test(test_del_selectors),
		cmocka_unit_test(test_framing),
		cmocka_unit_test(test_bytes),
		cmocka_unit_test(test_length),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_not_terminated),
		cmocka_unit_test(test_err_buffer),
		cmocka_unit_test(test_long_token_quoted),
		cmocka_unit_test(test_format_small_buffer),
		cmocka_unit_test(test_format_refuses),
		cmocka_unit_test(test_helpers),
		cmocka_unit_test(test_roundtrip_generated),
		cmocka_unit_test(test_mutations),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
