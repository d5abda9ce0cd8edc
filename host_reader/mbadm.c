// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * mbadm - the host's administration tool for the mbstate registry.
 *
 * Runs the text commands of docs/commands.md against the kernel (cmd, batch,
 * replace), shows the registry (show, stats) and follows its changes
 * (monitor). Exit status: 0 success; 1 the kernel refused, the kernel side is
 * unavailable or a system call failed; 2 usage, parse or input file error.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>
#include <linux/mbstate.h>
#include <mbvisor/cmd.h>
#include <mbvisor/mbnl.h>

#ifndef MBVISOR_VERSION
#define MBVISOR_VERSION "0.1.0"
#endif

enum {
	EXIT_REFUSED = 1,	/* kernel refused, unavailable, system failure */
	EXIT_USAGE = 2,		/* usage, parse or input error */
};

static const char *prog_name = "mbadm";
static bool json_out;
static struct mbnl *nl_handle;

/* --- Helpers ------------------------------------------------------------ */

/* The netlink handle, opened on first use; exits 1 if it cannot be. */
static struct mbnl *nl_get(void)
{
	char err[MB_ERR_LEN];

	if (nl_handle)
		return nl_handle;
	nl_handle = mbnl_open(err, sizeof(err));
	if (!nl_handle) {
		fprintf(stderr, "%s\n", err);
		exit(EXIT_REFUSED);
	}
	return nl_handle;
}

static void *xrealloc(void *p, size_t n, size_t size)
{
	if (size && n > SIZE_MAX / size) {
		errno = ENOMEM;
		p = NULL;
	} else {
		p = realloc(p, n * size);
	}
	if (!p) {
		perror(prog_name);
		exit(EXIT_REFUSED);
	}
	return p;
}

static void print_json(struct json_object *obj, int flags)
{
	puts(json_object_to_json_string_ext(obj, flags |
					    JSON_C_TO_STRING_NOSLASHESCAPE));
}

static const char *mac_str(const __u8 mac[MB_ETH_ALEN], char buf[18])
{
	mb_format_mac(mac, buf);
	return buf;
}

static const char *ip_str(__be32 ip, char buf[16])
{
	mb_format_ipv4(ip, buf);
	return buf;
}

static void json_add_str(struct json_object *o, const char *key,
			 const char *val)
{
	json_object_object_add(o, key, val ? json_object_new_string(val) :
				       NULL);
}

static void json_add_u64(struct json_object *o, const char *key, uint64_t v)
{
	json_object_object_add(o, key, json_object_new_uint64(v));
}

static void json_add_mac(struct json_object *o, const char *key,
			 const __u8 mac[MB_ETH_ALEN])
{
	char buf[18];

	json_add_str(o, key, mac_str(mac, buf));
}

static void json_add_ip(struct json_object *o, const char *key, __be32 ip)
{
	char buf[16];

	json_add_str(o, key, ip_str(ip, buf));
}

/* The service letters of the text commands: "F", "L". */
static const char *service_letter(__u32 bit)
{
	switch (bit) {
	case MBSTATE_SVC_F:
		return "F";
	case MBSTATE_SVC_L:
		return "L";
	default:
		return "?";
	}
}

static struct json_object *services_json(__u32 services)
{
	struct json_object *a = json_object_new_array();
	__u32 bit;

	for (bit = 1; bit && bit <= services; bit <<= 1)
		if (services & bit)
			json_object_array_add(a,
				json_object_new_string(mb_service_name(bit)));
	return a;
}

static const char *be_state_name(__u8 state)
{
	switch (state) {
	case MBSTATE_BE_ACTIVE:
		return "active";
	case MBSTATE_BE_STANDBY:
		return "standby";
	case MBSTATE_BE_DRAINING:
		return "draining";
	default:
		return "unknown";
	}
}

static const char *mac_source_name(__u8 source)
{
	switch (source) {
	case MBSTATE_BE_MAC_STATIC:
		return "static";
	case MBSTATE_BE_MAC_LEARNED:
		return "learned";
	default:
		return "unknown";
	}
}

static const char *flow_state_name(__u8 state)
{
	switch (state) {
	case MBSTATE_FLOW_NEW:
		return "new";
	case MBSTATE_FLOW_ESTABLISHED:
		return "established";
	case MBSTATE_FLOW_CLOSING:
		return "closing";
	case MBSTATE_FLOW_CLOSED:
		return "closed";
	default:
		return "unknown";
	}
}

static const char *proto_name(__u8 proto)
{
	switch (proto) {
	case 6:
		return "tcp";
	case 17:
		return "udp";
	case 1:
		return "icmp";
	default:
		return "?";
	}
}

static struct json_object *backend_json(const struct mbnl_backend *b)
{
	struct json_object *o = json_object_new_object();

	json_add_ip(o, "ip", b->ip);
	if (b->mac_source != MBSTATE_BE_MAC_UNKNOWN)
		json_add_mac(o, "mac", b->mac);
	else
		json_add_str(o, "mac", NULL);
	json_add_str(o, "mac_source", mac_source_name(b->mac_source));
	json_add_str(o, "state", be_state_name(b->state));
	json_add_u64(o, "weight", b->weight);
	json_add_u64(o, "flows", b->flows);
	json_add_u64(o, "new_flows", b->new_flows);
	json_add_u64(o, "packets", b->packets);
	json_add_u64(o, "bytes", b->bytes);
	json_add_u64(o, "ret_packets", b->ret_packets);
	json_add_u64(o, "ret_bytes", b->ret_bytes);
	return o;
}

static struct json_object *lb_stats_json(const struct mbnl_lb_stats *s)
{
	struct json_object *o = json_object_new_object();

	json_add_u64(o, "new_flows", s->new_flows);
	json_add_u64(o, "redirected_packets", s->redirected_packets);
	json_add_u64(o, "redirected_bytes", s->redirected_bytes);
	json_add_u64(o, "not_selected", s->not_selected);
	json_add_u64(o, "unhandled", s->unhandled);
	json_add_u64(o, "no_flow", s->no_flow);
	json_add_u64(o, "no_backend", s->no_backend);
	json_add_u64(o, "mac_unknown", s->mac_unknown);
	json_add_u64(o, "table_full", s->table_full);
	json_add_u64(o, "collision", s->collision);
	json_add_u64(o, "from_mb_port", s->from_mb_port);
	json_add_u64(o, "mb_port_unknown", s->mb_port_unknown);
	json_add_u64(o, "over_quota", s->over_quota);
	return o;
}

static struct json_object *lb_json(const struct mbnl_mb *mb)
{
	struct json_object *o, *a;
	__u32 i;

	if (!mb->has_lb)
		return NULL;
	o = json_object_new_object();
	json_add_u64(o, "type", mb->lb.type);
	json_add_ip(o, "src_ip", mb->lb.src_ip);
	json_add_ip(o, "dst_ip", mb->lb.dst_ip);
	a = json_object_new_array();
	for (i = 0; i < mb->n_backends; i++)
		json_object_array_add(a, backend_json(&mb->backends[i]));
	json_object_object_add(o, "backends", a);
	json_add_u64(o, "flows", mb->lb_flows);
	json_object_object_add(o, "stats", lb_stats_json(&mb->lb_stats));
	return o;
}

static const char *rule_str(const struct mb_rule *rule, char *buf,
			    size_t len)
{
	if (mb_rule_format(rule, buf, len) < 0)
		snprintf(buf, len, "(class %u, fields %u: cannot be formatted)",
			 rule->cls, rule->fields);
	return buf;
}

static struct json_object *rule_json(const struct mbnl_rule *r)
{
	struct json_object *o = json_object_new_object();
	char buf[MB_CMD_MAX_LEN + 1];

	json_add_u64(o, "id", r->id);
	json_add_str(o, "rule", rule_str(&r->rule, buf, sizeof(buf)));
	json_add_u64(o, "packets", r->packets);
	json_add_u64(o, "bytes", r->bytes);
	return o;
}

/* Reads FILE (or standard input for "-" or NULL) into @lines, one string a
 * line, newline and comment ('#' to the end) removed. */
struct lines {
	char **text;
	unsigned long *lineno;
	size_t n;
};

static void free_lines(struct lines *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->text[i]);
	free(l->text);
	free(l->lineno);
}

static bool blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' ||
	       c == '\v' || c == '\f';
}

static int read_lines(const char *path, struct lines *out)
{
	bool is_stdin = !path || !strcmp(path, "-");
	FILE *f = is_stdin ? stdin : fopen(path, "r");
	const char *name = is_stdin ? "<stdin>" : path;
	unsigned long lineno = 0;
	size_t cap = 0, size = 0;
	char *line = NULL, *p, *end;
	ssize_t len;

	memset(out, 0, sizeof(*out));
	if (!f) {
		perror(name);
		return -1;
	}
	while ((len = getline(&line, &size, f)) >= 0) {
		lineno++;
		end = line + len;
		p = memchr(line, '#', (size_t)len);
		if (p)
			end = p;
		while (end > line && blank(end[-1]))
			end--;
		*end = '\0';
		for (p = line; blank(*p); p++)
			;
		if (!*p)
			continue;
		if (out->n == cap) {
			cap = cap ? cap * 2 : 256;
			out->text = xrealloc(out->text, cap, sizeof(char *));
			out->lineno = xrealloc(out->lineno, cap,
					       sizeof(unsigned long));
		}
		out->text[out->n] = strdup(p);
		if (!out->text[out->n]) {
			perror(prog_name);
			exit(EXIT_REFUSED);
		}
		out->lineno[out->n++] = lineno;
	}
	free(line);
	if (ferror(f)) {
		perror(name);
		if (!is_stdin)
			fclose(f);
		free_lines(out);
		return -1;
	}
	if (!is_stdin)
		fclose(f);
	return 0;
}

static bool want_help(int argc, char *argv[])
{
	return argc > 1 && (!strcmp(argv[1], "-h") ||
			    !strcmp(argv[1], "--help"));
}

/* --- show --------------------------------------------------------------- */

struct show_ctx {
	struct json_object *arr;	/* JSON: the middleboxes; else NULL */
	struct json_object *rules;	/* JSON: rules of the current one */
	bool first;
	char err[MB_ERR_LEN];
};

static int show_rule_cb(const struct mbnl_rule *r, void *arg)
{
	struct show_ctx *ctx = arg;
	char buf[MB_CMD_MAX_LEN + 1];

	if (ctx->arr) {
		json_object_array_add(ctx->rules, rule_json(r));
		return 0;
	}
	printf("    rule %" PRIu32 ": %s (%" PRIu64 " packets, %" PRIu64
	       " bytes)\n", r->id, rule_str(&r->rule, buf, sizeof(buf)),
	       r->packets, r->bytes);
	return 0;
}

static void show_lb_human(const struct mbnl_mb *mb)
{
	const struct mbnl_lb_stats *st = &mb->lb_stats;
	char ip[16], mac[18];
	__u32 i;

	if (mb->lb.type)
		printf("  load balancer: type 1 (from %s only), %" PRIu32
		       " backends, %" PRIu32 " flows\n",
		       ip_str(mb->lb.src_ip, ip), mb->n_backends, mb->lb_flows);
	else
		printf("  load balancer: type 0 (any source), %" PRIu32
		       " backends, %" PRIu32 " flows\n", mb->n_backends,
		       mb->lb_flows);
	for (i = 0; i < mb->n_backends; i++) {
		const struct mbnl_backend *b = &mb->backends[i];

		printf("    backend %s: %s, weight %" PRIu32 ", mac %s (%s)\n",
		       ip_str(b->ip, ip), be_state_name(b->state), b->weight,
		       b->mac_source == MBSTATE_BE_MAC_UNKNOWN ? "-" :
		       mac_str(b->mac, mac), mac_source_name(b->mac_source));
		printf("      flows: %" PRIu32 " now, %" PRIu64 " in all; to it: %"
		       PRIu64 " packets, %" PRIu64 " bytes; replies: %" PRIu64
		       " packets, %" PRIu64 " bytes\n", b->flows, b->new_flows,
		       b->packets, b->bytes, b->ret_packets, b->ret_bytes);
	}
	printf("  load balancer counters: %" PRIu64 " new flows, %" PRIu64
	       " packets (%" PRIu64 " bytes) redirected\n", st->new_flows,
	       st->redirected_packets, st->redirected_bytes);
	printf("    passed to the middlebox: %" PRIu64 " other source, %" PRIu64
	       " unhandled, %" PRIu64 " no flow, %" PRIu64 " no backend, %"
	       PRIu64 " MAC unknown, %" PRIu64 " table full, %" PRIu64
	       " collision, %" PRIu64 " from its own port, %" PRIu64
	       " port unknown, %" PRIu64 " over quota\n", st->not_selected,
	       st->unhandled, st->no_flow, st->no_backend, st->mac_unknown,
	       st->table_full, st->collision, st->from_mb_port,
	       st->mb_port_unknown, st->over_quota);
}

static void show_mb_human(const struct mbnl_mb *mb, bool first)
{
	char mac[18], ip[16];
	__u32 bit;
	const char *sep = "";

	if (!first)
		putchar('\n');
	printf("middlebox: %s\n", mac_str(mb->mac, mac));
	printf("  ip: %s\n", ip_str(mb->ip, ip));
	if (mb->vlan)
		printf("  vlan: %u\n", mb->vlan);
	else
		printf("  vlan: none (not offloaded on VLAN-filtering bridges)\n");
	printf("  services:");
	for (bit = 1; bit && bit <= mb->services; bit <<= 1) {
		if (!(mb->services & bit))
			continue;
		printf("%s %s", sep, mb_service_name(bit));
		sep = ",";
	}
	printf("%s\n", *sep ? "" : " (none)");
	printf("  enabled: %s\n", mb->enabled ? "yes" : "no");
	if (mb->has_lb)
		show_lb_human(mb);
	printf("  received: %" PRIu64 " packets, %" PRIu64 " bytes\n",
	       mb->stats.rx_packets, mb->stats.rx_bytes);
	printf("  firewall drops: %" PRIu64 " packets, %" PRIu64 " bytes\n",
	       mb->stats.fw_drop_packets, mb->stats.fw_drop_bytes);
	printf("  passed while disabled: %" PRIu64 " packets\n",
	       mb->stats.disabled_packets);
	if (!mb->vlan)
		printf("  passed without a VLAN on VLAN-filtering bridges: %"
		       PRIu64 " packets\n", mb->stats.unbound_packets);
	printf("  rules: %" PRIu32 "\n", mb->nrules);
}

static struct json_object *mb_json(const struct mbnl_mb *mb)
{
	struct json_object *o = json_object_new_object();
	struct json_object *st = json_object_new_object();

	json_add_mac(o, "mac", mb->mac);
	json_add_ip(o, "ip", mb->ip);
	json_object_object_add(o, "vlan", mb->vlan ?
			       json_object_new_int(mb->vlan) : NULL);
	json_object_object_add(o, "services", services_json(mb->services));
	json_object_object_add(o, "enabled",
			       json_object_new_boolean(mb->enabled));
	json_add_u64(o, "nrules", mb->nrules);
	json_object_object_add(o, "lb", lb_json(mb));
	json_add_u64(st, "rx_packets", mb->stats.rx_packets);
	json_add_u64(st, "rx_bytes", mb->stats.rx_bytes);
	json_add_u64(st, "fw_drop_packets", mb->stats.fw_drop_packets);
	json_add_u64(st, "fw_drop_bytes", mb->stats.fw_drop_bytes);
	json_add_u64(st, "disabled_packets", mb->stats.disabled_packets);
	json_add_u64(st, "unbound_packets", mb->stats.unbound_packets);
	json_object_object_add(o, "stats", st);
	return o;
}

/* Prints one middlebox and its rules. @gone_ok: a middlebox that vanished
 * since it was listed is not an error. */
static int show_mb(const struct mbnl_mb *mb, struct show_ctx *ctx,
		   bool gone_ok)
{
	struct json_object *o = NULL;
	int ret = 0;

	if (ctx->arr) {
		o = mb_json(mb);
		ctx->rules = json_object_new_array();
	} else {
		show_mb_human(mb, ctx->first);
	}
	ctx->first = false;
	if (mb->services & MBSTATE_SVC_F) {
		ret = mbnl_dump_rules(nl_get(), mb->mac, show_rule_cb, ctx,
				      ctx->err, sizeof(ctx->err));
		if (ret == -ENOENT && gone_ok)
			ret = 0;
	}
	if (o) {
		json_object_object_add(o, "rules", ctx->rules);
		json_object_array_add(ctx->arr, o);
	}
	return ret;
}

static int show_mb_cb(const struct mbnl_mb *mb, void *arg)
{
	return show_mb(mb, arg, true);
}

/* show [MAC]; also "cmd Q <MAC>" and Q lines of a batch. */
static int show(const __u8 *mac)
{
	struct show_ctx ctx = { .first = true };
	struct mbnl_mb mb;
	int ret;

	if (json_out)
		ctx.arr = json_object_new_array();
	if (mac) {
		ret = mbnl_get_mb(nl_get(), mac, &mb, ctx.err,
				  sizeof(ctx.err));
		if (!ret)
			ret = show_mb(&mb, &ctx, false);
	} else {
		ret = mbnl_dump_mbs(nl_get(), show_mb_cb, &ctx, ctx.err,
				    sizeof(ctx.err));
	}
	if (ret) {
		fflush(stdout);
		fprintf(stderr, "%s\n", ctx.err);
	} else if (ctx.arr) {
		print_json(ctx.arr, JSON_C_TO_STRING_PRETTY |
			   JSON_C_TO_STRING_SPACED);
	}
	json_object_put(ctx.arr);
	return ret ? EXIT_REFUSED : 0;
}

static int show_main(int argc, char *argv[])
{
	__u8 mac[MB_ETH_ALEN];

	if (want_help(argc, argv)) {
		printf("Usage: %s [-j] show [<MAC>]\n", prog_name);
		return 0;
	}
	if (argc > 2) {
		fprintf(stderr, "Usage: %s [-j] show [<MAC>]\n", prog_name);
		return EXIT_USAGE;
	}
	if (argc == 2) {
		if (mb_parse_mac(argv[1], mac)) {
			fprintf(stderr, "Unable to parse MAC address: `%s'\n",
				argv[1]);
			return EXIT_USAGE;
		}
		return show(mac);
	}
	return show(NULL);
}

/* --- stats -------------------------------------------------------------- */

static void stats_header(void)
{
	printf("%-17s  %-15s  %12s %14s %12s %14s %12s %8s\n", "MAC", "IP",
	       "RX_PACKETS", "RX_BYTES", "DROP_PACKETS", "DROP_BYTES",
	       "DISABLED", "RULES");
}

struct stats_ctx {
	struct json_object *arr;	/* JSON: the rows; else NULL */
	bool header;			/* text: header printed */
	struct mbnl_mb *lbs;		/* text: load balancers, printed after */
	size_t n_lbs, cap_lbs;
};

static void stats_backends(const struct stats_ctx *ctx)
{
	char mac[18], ip[16];
	size_t i;
	__u32 j;

	if (!ctx->n_lbs)
		return;
	printf("\n%-17s  %-15s  %-8s %6s %6s %10s %12s %14s %12s %14s\n",
	       "MAC", "BACKEND", "STATE", "WEIGHT", "FLOWS", "NEW_FLOWS",
	       "PACKETS", "BYTES", "RET_PACKETS", "RET_BYTES");
	for (i = 0; i < ctx->n_lbs; i++) {
		const struct mbnl_mb *mb = &ctx->lbs[i];

		for (j = 0; j < mb->n_backends; j++) {
			const struct mbnl_backend *b = &mb->backends[j];

			printf("%-17s  %-15s  %-8s %6" PRIu32 " %6" PRIu32
			       " %10" PRIu64 " %12" PRIu64 " %14" PRIu64 " %12"
			       PRIu64 " %14" PRIu64 "\n", mac_str(mb->mac, mac),
			       ip_str(b->ip, ip), be_state_name(b->state),
			       b->weight, b->flows, b->new_flows, b->packets,
			       b->bytes, b->ret_packets, b->ret_bytes);
		}
	}
}

/* Called once the dump completed: nothing is printed if it failed. */
static int stats_cb(const struct mbnl_mb *mb, void *arg)
{
	struct stats_ctx *ctx = arg;
	struct json_object *o;
	char mac[18], ip[16];

	if (!ctx->arr) {
		if (!ctx->header)
			stats_header();
		ctx->header = true;
		printf("%-17s  %-15s  %12" PRIu64 " %14" PRIu64 " %12" PRIu64
		       " %14" PRIu64 " %12" PRIu64 " %8" PRIu32 "\n",
		       mac_str(mb->mac, mac), ip_str(mb->ip, ip),
		       mb->stats.rx_packets, mb->stats.rx_bytes,
		       mb->stats.fw_drop_packets, mb->stats.fw_drop_bytes,
		       mb->stats.disabled_packets, mb->nrules);
		if (mb->has_lb) {
			if (ctx->n_lbs == ctx->cap_lbs) {
				ctx->cap_lbs = ctx->cap_lbs ? 2 * ctx->cap_lbs : 8;
				ctx->lbs = xrealloc(ctx->lbs, ctx->cap_lbs,
						    sizeof(*ctx->lbs));
			}
			ctx->lbs[ctx->n_lbs++] = *mb;
		}
		return 0;
	}
	o = json_object_new_object();
	json_add_mac(o, "mac", mb->mac);
	json_add_ip(o, "ip", mb->ip);
	json_object_object_add(o, "vlan", mb->vlan ?
			       json_object_new_int(mb->vlan) : NULL);
	json_add_u64(o, "rx_packets", mb->stats.rx_packets);
	json_add_u64(o, "rx_bytes", mb->stats.rx_bytes);
	json_add_u64(o, "fw_drop_packets", mb->stats.fw_drop_packets);
	json_add_u64(o, "fw_drop_bytes", mb->stats.fw_drop_bytes);
	json_add_u64(o, "disabled_packets", mb->stats.disabled_packets);
	json_add_u64(o, "unbound_packets", mb->stats.unbound_packets);
	json_add_u64(o, "nrules", mb->nrules);
	json_object_object_add(o, "lb", lb_json(mb));
	json_object_array_add(ctx->arr, o);
	return 0;
}

static int stats_main(int argc, char *argv[])
{
	struct stats_ctx ctx = { 0 };
	char err[MB_ERR_LEN];
	int ret;

	if (want_help(argc, argv)) {
		printf("Usage: %s [-j] stats\n", prog_name);
		return 0;
	}
	if (argc > 1) {
		fprintf(stderr, "Usage: %s [-j] stats\n", prog_name);
		return EXIT_USAGE;
	}
	if (json_out)
		ctx.arr = json_object_new_array();
	ret = mbnl_dump_mbs(nl_get(), stats_cb, &ctx, err, sizeof(err));
	if (ret) {
		fflush(stdout);
		fprintf(stderr, "%s\n", err);
	} else if (ctx.arr) {
		print_json(ctx.arr, JSON_C_TO_STRING_PRETTY |
			   JSON_C_TO_STRING_SPACED);
	} else if (!ctx.header) {
		stats_header();
	} else {
		stats_backends(&ctx);
	}
	json_object_put(ctx.arr);
	free(ctx.lbs);
	return ret ? EXIT_REFUSED : 0;
}

/* --- flows -------------------------------------------------------------- */

struct flows_ctx {
	struct json_object *arr;
	size_t n;
};

static void flows_header(void)
{
	printf("%-17s  %-5s %-21s %-21s %-15s  %-11s %9s\n", "MAC", "PROTO",
	       "CLIENT", "VIP", "BACKEND", "STATE", "IDLE_MS");
}

static int flows_cb(const struct mbnl_flow *f, void *arg)
{
	struct flows_ctx *ctx = arg;
	char mac[18], ip[16], client[24], vip[24];
	struct json_object *o;

	if (!ctx->arr) {
		if (!ctx->n++)
			flows_header();
		snprintf(client, sizeof(client), "%s:%u",
			 ip_str(f->client_ip, ip), f->client_port);
		snprintf(vip, sizeof(vip), "%s:%u", ip_str(f->vip, ip),
			 f->vip_port);
		printf("%-17s  %-5s %-21s %-21s %-15s  %-11s %9" PRIu32 "\n",
		       mac_str(f->mac, mac), proto_name(f->proto), client, vip,
		       ip_str(f->backend_ip, ip), flow_state_name(f->state),
		       f->idle_ms);
		return 0;
	}
	o = json_object_new_object();
	json_add_mac(o, "mac", f->mac);
	json_add_str(o, "proto", proto_name(f->proto));
	json_add_ip(o, "client_ip", f->client_ip);
	json_add_u64(o, "client_port", f->client_port);
	json_add_ip(o, "vip", f->vip);
	json_add_u64(o, "vip_port", f->vip_port);
	json_add_ip(o, "backend_ip", f->backend_ip);
	json_add_mac(o, "backend_mac", f->backend_mac);
	json_add_str(o, "state", flow_state_name(f->state));
	json_add_u64(o, "idle_ms", f->idle_ms);
	json_object_array_add(ctx->arr, o);
	return 0;
}

static int flows_main(int argc, char *argv[])
{
	struct flows_ctx ctx = { 0 };
	char err[MB_ERR_LEN];
	__u8 mac[MB_ETH_ALEN];
	int ret;

	if (want_help(argc, argv)) {
		printf("Usage: %s [-j] flows [<MAC>]\n", prog_name);
		return 0;
	}
	if (argc > 2) {
		fprintf(stderr, "Usage: %s [-j] flows [<MAC>]\n", prog_name);
		return EXIT_USAGE;
	}
	if (argc == 2 && mb_parse_mac(argv[1], mac)) {
		fprintf(stderr, "Unable to parse MAC address: `%s'\n", argv[1]);
		return EXIT_USAGE;
	}
	if (json_out)
		ctx.arr = json_object_new_array();
	ret = mbnl_dump_flows(nl_get(), argc == 2 ? mac : NULL, flows_cb,
			      &ctx, err, sizeof(err));
	if (ret) {
		fflush(stdout);
		fprintf(stderr, "%s\n", err);
	} else if (ctx.arr) {
		print_json(ctx.arr, JSON_C_TO_STRING_PRETTY |
			   JSON_C_TO_STRING_SPACED);
	} else if (!ctx.n) {
		flows_header();
	}
	json_object_put(ctx.arr);
	return ret ? EXIT_REFUSED : 0;
}

/* --- cmd ---------------------------------------------------------------- */

/* Runs one parsed command; prints the kernel's message on failure. */
static int run_cmd(const struct mb_cmd *cmd, const char *where)
{
	char err[MB_ERR_LEN];

	if (cmd->op == MB_OP_QUERY)
		return show(cmd->mac);
	if (mbnl_exec(nl_get(), cmd, err, sizeof(err))) {
		fflush(stdout);
		fprintf(stderr, "%s%s\n", where, err);
		return EXIT_REFUSED;
	}
	return 0;
}

static int cmd_main(int argc, char *argv[])
{
	char err[MB_ERR_LEN], *text, *p;
	struct mb_cmd cmd;
	size_t len = 0;
	int i;

	if (want_help(argc, argv) || argc < 2) {
		fprintf(argc < 2 ? stderr : stdout,
			"Usage: %s [-j] cmd '<command>' | <word>...\n",
			prog_name);
		return argc < 2 ? EXIT_USAGE : 0;
	}
	/* The command may come as one word or as several: join them. */
	for (i = 1; i < argc; i++)
		len += strlen(argv[i]) + 1;
	text = p = xrealloc(NULL, len, 1);
	for (i = 1; i < argc; i++)
		p += sprintf(p, "%s%s", i > 1 ? " " : "", argv[i]);

	if (mb_cmd_parse(text, strlen(text), &cmd, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		free(text);
		return EXIT_USAGE;
	}
	free(text);
	return run_cmd(&cmd, "");
}

/* --- batch -------------------------------------------------------------- */

struct batch_cmd {
	struct mb_cmd cmd;
	unsigned long lineno;
};

/* Parses every line first, so that a syntax error changes nothing. */
static int parse_lines(const struct lines *l, struct batch_cmd *out)
{
	char err[MB_ERR_LEN];
	size_t i;

	for (i = 0; i < l->n; i++) {
		out[i].lineno = l->lineno[i];
		if (mb_cmd_parse(l->text[i], strlen(l->text[i]), &out[i].cmd,
				 err, sizeof(err))) {
			fprintf(stderr, "line %lu: %s\n", l->lineno[i], err);
			return -1;
		}
	}
	return 0;
}

/*
 * Adds the rules of the add-rule commands @cmds[0..n) (same middlebox) in
 * requests as large as fit. A refused request changed nothing; its rules are
 * then sent one by one, so that those before the bad line are added, as if
 * the lines ran one at a time, and the bad line is named.
 */
static int batch_add_rules(const struct batch_cmd *cmds, size_t n,
			   struct mb_rule *rules)
{
	char err[MB_ERR_LEN];
	size_t off = 0, count, i;

	for (i = 0; i < n; i++)
		rules[i] = cmds[i].cmd.rule;
	while (off < n) {
		count = mbnl_rules_per_request(rules + off, n - off);
		if (!mbnl_add_rules(nl_get(), cmds[0].cmd.mac, rules + off,
				    count, false, err, sizeof(err))) {
			off += count;
			continue;
		}
		for (i = off; i < off + count; i++) {
			if (count > 1 &&
			    !mbnl_add_rules(nl_get(), cmds[0].cmd.mac,
					    rules + i, 1, false, err,
					    sizeof(err)))
				continue;
			fflush(stdout);
			fprintf(stderr, "line %lu: %s\n", cmds[i].lineno, err);
			return EXIT_REFUSED;
		}
		off += count;
	}
	return 0;
}

static int batch_main(int argc, char *argv[])
{
	struct batch_cmd *cmds;
	struct mb_rule *rules;
	struct lines l;
	char where[32];
	size_t i, j;
	int ret = 0;

	if (want_help(argc, argv)) {
		printf("Usage: %s [-j] batch [<file> | -]\n", prog_name);
		return 0;
	}
	if (argc > 2) {
		fprintf(stderr, "Usage: %s [-j] batch [<file> | -]\n",
			prog_name);
		return EXIT_USAGE;
	}
	if (read_lines(argc == 2 ? argv[1] : NULL, &l))
		return EXIT_USAGE;
	cmds = xrealloc(NULL, l.n ? l.n : 1, sizeof(*cmds));
	rules = xrealloc(NULL, l.n ? l.n : 1, sizeof(*rules));
	if (parse_lines(&l, cmds)) {
		ret = EXIT_USAGE;
		goto out;
	}

	for (i = 0; i < l.n && !ret; i = j) {
		const struct mb_cmd *c = &cmds[i].cmd;

		j = i + 1;
		if (c->op != MB_OP_ADD_RULE) {
			snprintf(where, sizeof(where), "line %lu: ",
				 cmds[i].lineno);
			ret = run_cmd(c, where);
			continue;
		}
		while (j < l.n && cmds[j].cmd.op == MB_OP_ADD_RULE &&
		       !memcmp(cmds[j].cmd.mac, c->mac, MB_ETH_ALEN))
			j++;
		ret = batch_add_rules(cmds + i, j - i, rules);
	}
out:
	free(rules);
	free(cmds);
	free_lines(&l);
	return ret;
}

/* --- replace ------------------------------------------------------------ */

/*
 * replace with a load-balancer configuration: an "R L" line, then "A <MAC> L"
 * lines for more backends; all of it in one request.
 */
static int replace_lb(const __u8 *mac, const char *mac_buf,
		      const struct lines *l)
{
	struct mb_lb_backend extra[MBSTATE_LB_MAX_BACKENDS];
	char err[MB_ERR_LEN];
	struct mb_cmd reg, cmd;
	size_t i, n = 0;

	for (i = 0; i < l->n; i++) {
		struct mb_cmd *c = i ? &cmd : &reg;

		if (mb_cmd_parse(l->text[i], strlen(l->text[i]), c, err,
				 sizeof(err))) {
			fprintf(stderr, "line %lu: %s\n", l->lineno[i], err);
			return EXIT_USAGE;
		}
		if (memcmp(c->mac, mac, MB_ETH_ALEN)) {
			fprintf(stderr,
				"line %lu: command of another middlebox than %s: `%s'\n",
				l->lineno[i], mac_buf, l->text[i]);
			return EXIT_USAGE;
		}
		if (!i && (c->op != MB_OP_REGISTER ||
			   c->service != MBSTATE_SVC_L)) {
			fprintf(stderr,
				"line %lu: a load-balancer configuration starts with R L %s ...: `%s'\n",
				l->lineno[i], mac_buf, l->text[i]);
			return EXIT_USAGE;
		}
		if (i && c->op != MB_OP_ADD_BACKEND) {
			fprintf(stderr,
				"line %lu: not a backend to add (A %s L <IP> ...): `%s'\n",
				l->lineno[i], mac_buf, l->text[i]);
			return EXIT_USAGE;
		}
		if (i && n + 1 >= MBSTATE_LB_MAX_BACKENDS) {
			fprintf(stderr, "line %lu: more than %d backends\n",
				l->lineno[i], MBSTATE_LB_MAX_BACKENDS);
			return EXIT_USAGE;
		}
		if (i)
			extra[n++] = c->backend;
	}
	if (mbnl_lb_replace(nl_get(), &reg, extra, n, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return EXIT_REFUSED;
	}
	return 0;
}

static int replace_main(int argc, char *argv[])
{
	char err[MB_ERR_LEN], mac_buf[18];
	struct mb_rule *rules;
	__u8 mac[MB_ETH_ALEN];
	struct mb_cmd cmd;
	struct lines l;
	size_t i;
	int ret = 0;

	if (want_help(argc, argv)) {
		printf("Usage: %s replace <MAC> <file> | -\n", prog_name);
		return 0;
	}
	if (argc != 3) {
		fprintf(stderr, "Usage: %s replace <MAC> <file> | -\n",
			prog_name);
		return EXIT_USAGE;
	}
	if (mb_parse_mac(argv[1], mac)) {
		fprintf(stderr, "Unable to parse MAC address: `%s'\n", argv[1]);
		return EXIT_USAGE;
	}
	mb_format_mac(mac, mac_buf);
	if (read_lines(argv[2], &l))
		return EXIT_USAGE;
	if (l.n && l.text[0][0] == 'R') {
		ret = replace_lb(mac, mac_buf, &l);
		free_lines(&l);
		return ret;
	}
	rules = xrealloc(NULL, l.n ? l.n : 1, sizeof(*rules));
	for (i = 0; i < l.n; i++) {
		if (mb_cmd_parse(l.text[i], strlen(l.text[i]), &cmd, err,
				 sizeof(err))) {
			fprintf(stderr, "line %lu: %s\n", l.lineno[i], err);
			ret = EXIT_USAGE;
			goto out;
		}
		if (cmd.op != MB_OP_ADD_RULE) {
			fprintf(stderr,
				"line %lu: not a rule to add (A %s <class> ...): `%s'\n",
				l.lineno[i], mac_buf, l.text[i]);
			ret = EXIT_USAGE;
			goto out;
		}
		if (memcmp(cmd.mac, mac, MB_ETH_ALEN)) {
			fprintf(stderr,
				"line %lu: rule of another middlebox than %s: `%s'\n",
				l.lineno[i], mac_buf, l.text[i]);
			ret = EXIT_USAGE;
			goto out;
		}
		rules[i] = cmd.rule;
	}
	if (mbnl_add_rules(nl_get(), mac, rules, l.n, true, err,
			   sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		ret = EXIT_REFUSED;
	}
out:
	free(rules);
	free_lines(&l);
	return ret;
}

/* --- monitor ------------------------------------------------------------ */

/* The services each middlebox had at its last NEW_MB, to say which one a
 * NEW_MB added. */
struct known_mb {
	__u8 mac[MB_ETH_ALEN];
	__u32 services;
};

struct monitor_ctx {
	struct known_mb *mbs;
	size_t n, cap;
};

static struct known_mb *known_find(struct monitor_ctx *m, const __u8 *mac)
{
	size_t i;

	for (i = 0; i < m->n; i++)
		if (!memcmp(m->mbs[i].mac, mac, MB_ETH_ALEN))
			return &m->mbs[i];
	return NULL;
}

/* Prints one line of monitor output: @text, or its JSON object. */
static void monitor_line(const char *event, const struct mbnl_event *ev,
			 const char *text, struct json_object *extra)
{
	struct json_object *o;

	if (!json_out) {
		puts(text);
		json_object_put(extra);
	} else {
		o = json_object_new_object();
		json_add_str(o, "event", event);
		if (ev->cmd != MBSTATE_CMD_UNSPEC)
			json_add_mac(o, "mac", ev->mb.mac);
		if (extra) {
			json_object_object_foreach(extra, key, val)
				json_object_object_add(o, key,
						       json_object_get(val));
			json_object_put(extra);
		}
		json_add_str(o, "command", text[0] == '#' ||
			     !strncmp(text, "rules ", 6) ? NULL : text);
		print_json(o, JSON_C_TO_STRING_PLAIN);
		json_object_put(o);
	}
	fflush(stdout);
}

/* The "R L" backend (options included) of @mb's first configured backend. */
static void lb_first_backend(const struct mbnl_mb *mb, struct mb_lb_backend *be)
{
	const struct mbnl_backend *b = &mb->backends[0];

	memset(be, 0, sizeof(*be));
	be->ip = mb->lb.dst_ip;
	be->weight = 1;
	if (!mb->n_backends || b->ip != mb->lb.dst_ip ||
	    b->state == MBSTATE_BE_DRAINING)
		return;
	be->weight = b->weight;
	if (b->mac_source == MBSTATE_BE_MAC_STATIC) {
		be->has_mac = 1;
		memcpy(be->mac, b->mac, MB_ETH_ALEN);
	}
}

/* A backend was added, changed or removed: the configured ones now. */
static void monitor_backends(const struct mbnl_event *ev)
{
	const struct mbnl_mb *mb = &ev->mb;
	char text[MB_CMD_MAX_LEN + 1], mac[18], ip[16];
	struct json_object *extra;
	size_t pos;
	__u32 i;

	pos = (size_t)snprintf(text, sizeof(text), "# backends of %s:",
			       mac_str(mb->mac, mac));
	for (i = 0; i < mb->n_backends && pos < sizeof(text); i++)
		pos += (size_t)snprintf(text + pos, sizeof(text) - pos,
					" %s (%s, weight %" PRIu32 ")",
					ip_str(mb->backends[i].ip, ip),
					be_state_name(mb->backends[i].state),
					mb->backends[i].weight);
	extra = json_object_new_object();
	json_object_object_add(extra, "lb", lb_json(mb));
	monitor_line(ev->cmd == MBSTATE_CMD_NEW_BACKEND ? "new_backend" :
		     "del_backend", ev, text, extra);
}

static void monitor_new_mb(struct monitor_ctx *m, const struct mbnl_event *ev)
{
	const struct mbnl_mb *mb = &ev->mb;
	struct known_mb *k = known_find(m, mb->mac);
	char text[MB_CMD_MAX_LEN + 1];
	struct json_object *extra;
	struct mb_cmd cmd;
	__u32 added, bit;

	added = mb->services & ~(k ? k->services : 0);
	if (!added)
		added = mb->services;
	if (!k) {
		if (m->n == m->cap) {
			m->cap = m->cap ? m->cap * 2 : 16;
			m->mbs = xrealloc(m->mbs, m->cap, sizeof(*m->mbs));
		}
		k = &m->mbs[m->n++];
		memcpy(k->mac, mb->mac, MB_ETH_ALEN);
	}
	k->services = mb->services;

	for (bit = 1; bit && bit <= added; bit <<= 1) {
		if (!(added & bit))
			continue;
		memset(&cmd, 0, sizeof(cmd));
		cmd.op = MB_OP_REGISTER;
		memcpy(cmd.mac, mb->mac, MB_ETH_ALEN);
		cmd.service = bit;
		cmd.ip = mb->ip;
		cmd.vlan = mb->vlan;
		if (bit == MBSTATE_SVC_L) {
			cmd.lb = mb->lb;
			lb_first_backend(mb, &cmd.backend);
		}
		if (mb_cmd_format(&cmd, text, sizeof(text)) < 0) {
			char mac[18];

			snprintf(text, sizeof(text), "# %s registered for service %s",
				 mac_str(mb->mac, mac), service_letter(bit));
		}
		extra = json_object_new_object();
		json_add_ip(extra, "ip", mb->ip);
		json_object_object_add(extra, "vlan", mb->vlan ?
				       json_object_new_int(mb->vlan) : NULL);
		json_add_str(extra, "service", mb_service_name(bit));
		json_object_object_add(extra, "services",
				       services_json(mb->services));
		json_object_object_add(extra, "enabled",
				       json_object_new_boolean(mb->enabled));
		json_object_object_add(extra, "lb", lb_json(mb));
		monitor_line("new_mb", ev, text, extra);
	}
}

static void monitor_rule(const struct mbnl_event *ev)
{
	bool add = ev->cmd == MBSTATE_CMD_NEW_RULE;
	char text[MB_CMD_MAX_LEN + 1], mac[18];
	struct json_object *extra = json_object_new_object();
	struct mb_cmd cmd;

	json_add_u64(extra, "nrules", ev->mb.nrules);
	json_object_object_add(extra, "rule",
			       ev->has_rule ? rule_json(&ev->rule) : NULL);
	memset(&cmd, 0, sizeof(cmd));
	cmd.op = add ? MB_OP_ADD_RULE : MB_OP_DEL_RULE;
	memcpy(cmd.mac, ev->mb.mac, MB_ETH_ALEN);
	cmd.rule = ev->rule.rule;
	if (!ev->has_rule || mb_cmd_format(&cmd, text, sizeof(text)) < 0)
		snprintf(text, sizeof(text), "rules %s n=%" PRIu32,
			 mac_str(ev->mb.mac, mac), ev->mb.nrules);
	monitor_line(add ? "new_rule" : "del_rule", ev, text, extra);
}

static int monitor_cb(const struct mbnl_event *ev, void *arg)
{
	struct monitor_ctx *m = arg;
	char text[MB_CMD_MAX_LEN + 1], mac[18];
	struct json_object *extra;
	struct known_mb *k;

	mac_str(ev->mb.mac, mac);
	switch (ev->cmd) {
	case MBSTATE_CMD_UNSPEC:
		monitor_line("lost", ev,
			     "# events lost: the receive buffer overflowed",
			     NULL);
		break;
	case MBSTATE_CMD_NEW_MB:
		monitor_new_mb(m, ev);
		break;
	case MBSTATE_CMD_DEL_MB:
		k = known_find(m, ev->mb.mac);
		if (k)
			*k = m->mbs[--m->n];
		snprintf(text, sizeof(text), "X %s", mac);
		monitor_line("del_mb", ev, text, NULL);
		break;
	case MBSTATE_CMD_SET_MB:
		snprintf(text, sizeof(text), "%c %s",
			 ev->mb.enabled ? 'A' : 'D', mac);
		extra = json_object_new_object();
		json_object_object_add(extra, "enabled",
				       json_object_new_boolean(ev->mb.enabled));
		monitor_line("set_mb", ev, text, extra);
		break;
	case MBSTATE_CMD_NEW_RULE:
	case MBSTATE_CMD_DEL_RULE:
		monitor_rule(ev);
		break;
	case MBSTATE_CMD_NEW_BACKEND:
	case MBSTATE_CMD_DEL_BACKEND:
		monitor_backends(ev);
		break;
	}
	return 0;
}

static int monitor_main(int argc, char *argv[])
{
	struct monitor_ctx m = { 0 };
	char err[MB_ERR_LEN];
	int ret;

	if (want_help(argc, argv)) {
		printf("Usage: %s [-j] monitor\n", prog_name);
		return 0;
	}
	if (argc > 1) {
		fprintf(stderr, "Usage: %s [-j] monitor\n", prog_name);
		return EXIT_USAGE;
	}
	ret = mbnl_monitor(nl_get(), monitor_cb, &m, err, sizeof(err));
	free(m.mbs);
	if (ret < 0) {
		fprintf(stderr, "%s\n", err);
		return EXIT_REFUSED;
	}
	return 0;
}

/* --- main --------------------------------------------------------------- */

static int help_main(int argc, char *argv[]);

static const struct {
	const char *name;
	int (*fn)(int argc, char *argv[]);
	const char *args;
	const char *desc;
} subcommands[] = {
	{ "show", show_main, "[<MAC>]",
	  "Shows every middlebox, or one, with its rules and counters" },
	{ "stats", stats_main, "",
	  "Shows one line of counters per middlebox" },
	{ "flows", flows_main, "[<MAC>]",
	  "Shows the load balancer's flows, of every middlebox or one" },
	{ "cmd", cmd_main, "'<command>'",
	  "Runs one text command: R, A, D, X, or Q (shows the middlebox)" },
	{ "batch", batch_main, "[<file> | -]",
	  "Runs text commands, one a line, from a file or standard input" },
	{ "replace", replace_main, "<MAC> <file> | -",
	  "Replaces a middlebox's rule set (A lines) or load-balancer\n"
	  "      configuration (R L, then A <MAC> L lines) at once" },
	{ "monitor", monitor_main, "",
	  "Prints each change of the registry as it happens" },
	{ "help", help_main, "", "Shows this usage" },
};

#define NSUBCOMMANDS (sizeof(subcommands) / sizeof(subcommands[0]))

static void show_usage(FILE *f)
{
	size_t i;

	fprintf(f, "Usage: %s [-j] <cmd> [<args>]\n\n", prog_name);
	fprintf(f, "Available subcommands:\n");
	for (i = 0; i < NSUBCOMMANDS; i++)
		fprintf(f, "  %s %s%s%s\n      %s\n", prog_name,
			subcommands[i].name, *subcommands[i].args ? " " : "",
			subcommands[i].args, subcommands[i].desc);
	fprintf(f, "\nOptions:\n"
		"  -j, --json     JSON output (show, stats, flows, monitor, Q commands)\n"
		"  -h, --help     this usage\n"
		"  --version      the version of mbadm\n\n"
		"Without a subcommand, runs `show'. You may pass `--help' to any\n"
		"subcommand to view its usage. Commands: docs/commands.md, mbadm(8).\n");
}

static int help_main(int argc, char *argv[])
{
	(void)argc;
	(void)argv;
	show_usage(stdout);
	return 0;
}

static int finish(int ret)
{
	if (nl_handle)
		mbnl_close(nl_handle);
	if (fflush(stdout) == EOF || ferror(stdout)) {
		perror("stdout");
		if (!ret)
			ret = EXIT_REFUSED;
	}
	return ret;
}

int main(int argc, char *argv[])
{
	static char *show_argv[] = { "show", NULL };
	int i = 1;
	size_t s;

	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "-j") || !strcmp(argv[i], "--json")) {
			json_out = true;
		} else if (!strcmp(argv[i], "-h") ||
			   !strcmp(argv[i], "--help")) {
			show_usage(stdout);
			return finish(0);
		} else if (!strcmp(argv[i], "--version")) {
			printf("mbadm (mbvisor) v%s\n", MBVISOR_VERSION);
			return finish(0);
		} else if (!strcmp(argv[i], "--")) {
			i++;
			break;
		} else {
			fprintf(stderr, "Invalid option: `%s'\n", argv[i]);
			show_usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (i == argc)
		return finish(show_main(1, show_argv));
	for (s = 0; s < NSUBCOMMANDS; s++)
		if (!strcmp(argv[i], subcommands[s].name))
			return finish(subcommands[s].fn(argc - i, argv + i));

	fprintf(stderr, "Invalid subcommand: `%s'\n", argv[i]);
	show_usage(stderr);
	return EXIT_USAGE;
}
