// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * The text command language of mbvisor: parser and formatter. The grammar is
 * in docs/commands.md; keep the two in step.
 *
 * The parser faces text written by guests that may be hostile, so it is
 * written to be boring: it never reads past @len (the text need not be
 * NUL-terminated), never allocates, and every loop is bounded by the length
 * of the text or by a small constant. Every value is checked while it is
 * read, and the finished rule goes through mb_rule_check() once more. Errors
 * are one sentence that quotes the offending token, the way wireguard-tools
 * does ("Unable to parse MAC address: `52:34:56'").
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <mbvisor/cmd.h>

/* Tokens longer than this are cut in messages. */
#define MB_TOK_QUOTE_MAX	32
/* The lowest EtherType; a smaller value is an 802.3 length field. */
#define MB_ETH_P_MIN		0x0600

/* A token of the command text: a pointer into the text and a length. */
struct mb_tok {
	const char *s;
	size_t len;
};

struct mb_parser {
	const char *text;	/* the text between the delimiters */
	size_t len;
	size_t pos;
	char *err;
	size_t errlen;
	const char *usage;	/* of the command being parsed */
};

static void __attribute__((format(printf, 2, 3)))
mb_err(struct mb_parser *p, const char *fmt, ...)
{
	va_list ap;

	if (!p->err || !p->errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(p->err, p->errlen, fmt, ap);
	va_end(ap);
}

/* "`%.*s%s'" with these arguments quotes a token, cut after 32 bytes. */
#define TOK_Q		"`%.*s%s'"
#define TOK_A(t)	(int)((t)->len > MB_TOK_QUOTE_MAX ? MB_TOK_QUOTE_MAX : \
			      (t)->len), (t)->s, \
			((t)->len > MB_TOK_QUOTE_MAX ? "..." : "")

static bool mb_is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static bool mb_tok_is(const struct mb_tok *t, const char *word)
{
	size_t n = strlen(word);

	return t->len == n && !memcmp(t->s, word, n);
}

/* Returns false at the end of the text. */
static bool mb_peek(const struct mb_parser *p, struct mb_tok *t)
{
	size_t i = p->pos, start;

	while (i < p->len && mb_is_blank(p->text[i]))
		i++;
	if (i >= p->len)
		return false;
	start = i;
	while (i < p->len && !mb_is_blank(p->text[i]))
		i++;
	t->s = p->text + start;
	t->len = i - start;
	return true;
}

static bool mb_next(struct mb_parser *p, struct mb_tok *t)
{
	if (!mb_peek(p, t))
		return false;
	p->pos = (size_t)(t->s - p->text) + t->len;
	return true;
}

/* The command must end here. */
static int mb_expect_end(struct mb_parser *p)
{
	struct mb_tok t;

	if (!mb_peek(p, &t))
		return 0;
	mb_err(p, "Unexpected token " TOK_Q " after the end of the command "
	       "(usage: %s)", TOK_A(&t), p->usage);
	return -1;
}

/* ---- Numbers and addresses; all take a pointer and a length. ---- */

static int mb_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Decimal without sign and without leading zeros ("0" itself is fine), at
 * most @max. Leading zeros are refused so that nobody can read "010" as
 * octal 8, the way inet_aton() does.
 */
static int mb_parse_dec(const char *s, size_t n, unsigned long max,
			unsigned long *val)
{
	unsigned long v = 0;
	size_t i;

	if (!n || (n > 1 && s[0] == '0'))
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned long)(s[i] - '0');
		if (v > max)	/* max is small: no overflow before this */
			return -1;
	}
	*val = v;
	return 0;
}

static bool mb_is_hex_prefixed(const char *s, size_t n)
{
	return n >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
}

/* "0x" followed by 1 to @digits hex digits. */
static int mb_parse_hex(const char *s, size_t n, unsigned int digits,
			unsigned long *val)
{
	unsigned long v = 0;
	size_t i;

	if (!mb_is_hex_prefixed(s, n) || n < 3 || n - 2 > digits)
		return -1;
	for (i = 2; i < n; i++) {
		int h = mb_hexval(s[i]);

		if (h < 0)
			return -1;
		v = v << 4 | (unsigned long)h;
	}
	*val = v;
	return 0;
}

/* Six groups of one or two hex digits separated by ':'. */
static int mb_parse_mac_n(const char *s, size_t n, __u8 mac[MB_ETH_ALEN])
{
	__u8 out[MB_ETH_ALEN];
	unsigned int group = 0, digits = 0, v = 0;
	size_t i;

	for (i = 0; i <= n; i++) {
		int h;

		if (i == n || s[i] == ':') {
			if (!digits || group >= MB_ETH_ALEN)
				return -1;
			out[group++] = (__u8)v;
			digits = 0;
			v = 0;
			continue;
		}
		h = mb_hexval(s[i]);
		if (h < 0 || ++digits > 2)
			return -1;
		v = v << 4 | (unsigned int)h;
	}
	if (group != MB_ETH_ALEN)
		return -1;
	memcpy(mac, out, MB_ETH_ALEN);
	return 0;
}

/* Dotted quad, each part 0..255 in decimal, into network order bytes. */
static int mb_parse_ipv4_n(const char *s, size_t n, __u8 ip[4])
{
	__u8 out[4];
	unsigned int part = 0;
	size_t i, start = 0;

	for (i = 0; i <= n; i++) {
		unsigned long v;

		if (i < n && s[i] != '.')
			continue;
		if (part >= 4 || i - start > 3 ||
		    mb_parse_dec(s + start, i - start, 255, &v))
			return -1;
		out[part++] = (__u8)v;
		start = i + 1;
	}
	if (part != 4)
		return -1;
	memcpy(ip, out, 4);
	return 0;
}

static __be32 mb_ip_be(const __u8 b[4])
{
	__be32 ip;

	memcpy(&ip, b, 4);
	return ip;
}

static void mb_ip_bytes(__be32 ip, __u8 b[4])
{
	memcpy(b, &ip, 4);
}

/* Why @b is not a unicast address, or NULL if it is one. */
static const char *mb_ip_not_unicast(const __u8 b[4])
{
	if (!b[0] && !b[1] && !b[2] && !b[3])
		return "unspecified";
	if ((b[0] & 0xf0) == 0xe0)
		return "multicast (224.0.0.0/4)";
	if (b[0] == 0xff && b[1] == 0xff && b[2] == 0xff && b[3] == 0xff)
		return "the broadcast address";
	return NULL;
}

/* Length of a NUL-terminated string, or @max + 1 if it is longer than @max. */
static size_t mb_strnlen(const char *s, size_t max)
{
	size_t n = 0;

	while (n <= max && s[n])
		n++;
	return n;
}

int mb_parse_mac(const char *s, __u8 mac[MB_ETH_ALEN])
{
	size_t n;

	if (!s)
		return -1;
	n = mb_strnlen(s, 17);
	return n > 17 ? -1 : mb_parse_mac_n(s, n, mac);
}

int mb_parse_ipv4(const char *s, __be32 *ip)
{
	__u8 b[4];
	size_t n;

	if (!s)
		return -1;
	n = mb_strnlen(s, 15);
	if (n > 15 || mb_parse_ipv4_n(s, n, b))
		return -1;
	*ip = mb_ip_be(b);
	return 0;
}

void mb_format_mac(const __u8 mac[MB_ETH_ALEN], char buf[18])
{
	snprintf(buf, 18, "%02x:%02x:%02x:%02x:%02x:%02x",
		 mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
}

void mb_format_ipv4(__be32 ip, char buf[16])
{
	__u8 b[4];

	mb_ip_bytes(ip, b);
	snprintf(buf, 16, "%u.%u.%u.%u", b[0], b[1], b[2], b[3]);
}

const char *mb_service_name(__u32 service)
{
	switch (service) {
	case MBSTATE_SVC_F:
		return "firewall";
	case MBSTATE_SVC_L:
		return "load-balancer";
	default:
		return "unknown";
	}
}

/* ---- Names of protocols and EtherTypes. ---- */

struct mb_name {
	const char *name;
	unsigned int value;
};

static const struct mb_name mb_ip_protos[] = {
	{ "icmp", 1 }, { "tcp", 6 }, { "udp", 17 }, { "gre", 47 },
	{ "esp", 50 }, { "icmpv6", 58 }, { "sctp", 132 },
};

static const struct mb_name mb_ethertypes[] = {
	{ "ipv4", 0x0800 }, { "arp", 0x0806 }, { "ipv6", 0x86dd },
	{ "vlan", 0x8100 }, { "qinq", 0x88a8 }, { "lldp", 0x88cc },
};

#define MB_NNAMES(a)	(sizeof(a) / sizeof((a)[0]))

static int mb_name_lookup(const struct mb_name *tab, size_t n,
			  const struct mb_tok *t, unsigned int *val)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (mb_tok_is(t, tab[i].name)) {
			*val = tab[i].value;
			return 0;
		}
	}
	return -1;
}

static const char *mb_name_of(const struct mb_name *tab, size_t n,
			      unsigned int val)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (tab[i].value == val)
			return tab[i].name;
	return NULL;
}

/* ---- Fields. ---- */

/* Canonical order of fields in text: s d t p. */
static const struct {
	char letter;
	__u8 bit;
} mb_fields[] = {
	{ 's', MBSTATE_FIELD_S }, { 'd', MBSTATE_FIELD_D },
	{ 't', MBSTATE_FIELD_T }, { 'p', MBSTATE_FIELD_P },
};

static __u8 mb_field_bit(const struct mb_tok *t)
{
	size_t i;

	if (t->len != 1)
		return 0;
	for (i = 0; i < MB_NNAMES(mb_fields); i++)
		if (t->s[0] == mb_fields[i].letter)
			return mb_fields[i].bit;
	return 0;
}

/* The first field of @mask in canonical order. */
static char mb_first_field(__u8 mask)
{
	size_t i;

	for (i = 0; i < MB_NNAMES(mb_fields); i++)
		if (mask & mb_fields[i].bit)
			return mb_fields[i].letter;
	return '?';
}

/* "field s", "fields s and p", "fields s, d, t and p" */
static void mb_field_list(__u8 mask, char *buf, size_t len)
{
	unsigned int n = 0, total = 0, i;
	size_t pos;

	for (i = 0; i < MB_NNAMES(mb_fields); i++)
		total += !!(mask & mb_fields[i].bit);
	pos = (size_t)snprintf(buf, len, total == 1 ? "field" : "fields");
	for (i = 0; i < MB_NNAMES(mb_fields) && pos < len; i++) {
		if (!(mask & mb_fields[i].bit))
			continue;
		n++;
		pos += (size_t)snprintf(buf + pos, len - pos, "%s%c",
					n == 1 ? " " : n == total ? " and " :
					", ", mb_fields[i].letter);
	}
}

static char mb_class_letter(__u8 cls)
{
	switch (cls) {
	case MBSTATE_CLASS_IP:
		return 'I';
	case MBSTATE_CLASS_MAC:
		return 'M';
	case MBSTATE_CLASS_TP:
		return 'T';
	default:
		return '?';
	}
}

/* ---- Values of fields. ---- */

/* I s / I d: IPv4[/len], no host bits past the prefix. */
static int mb_parse_prefix(struct mb_parser *p, const struct mb_tok *t,
			   __be32 *ip, __u8 *plen)
{
	const char *slash = memchr(t->s, '/', t->len);
	size_t alen = slash ? (size_t)(slash - t->s) : t->len;
	unsigned long len = 32;
	__u8 b[4];
	__u32 h, mask;

	if (mb_parse_ipv4_n(t->s, alen, b)) {
		mb_err(p, "Unable to parse IPv4 address or prefix: " TOK_Q,
		       TOK_A(t));
		return -1;
	}
	if (slash && mb_parse_dec(slash + 1, t->len - alen - 1, 32, &len)) {
		mb_err(p, "Unable to parse prefix length of " TOK_Q
		       " (expected /0 to /32)", TOK_A(t));
		return -1;
	}
	h = (__u32)b[0] << 24 | (__u32)b[1] << 16 | (__u32)b[2] << 8 | b[3];
	mask = len ? ~0U << (32 - len) : 0;
	if (h & ~mask) {
		char fix[16];

		h &= mask;
		snprintf(fix, sizeof(fix), "%u.%u.%u.%u", h >> 24,
			 (h >> 16) & 0xff, (h >> 8) & 0xff, h & 0xff);
		mb_err(p, TOK_Q " has host bits set; did you mean %s/%lu?",
		       TOK_A(t), fix, len);
		return -1;
	}
	*ip = mb_ip_be(b);
	*plen = (__u8)len;
	return 0;
}

/* I t: 0..255 in decimal or 0x00..0xff. */
static int mb_parse_tos(struct mb_parser *p, const struct mb_tok *t, __u8 *tos)
{
	unsigned long v;
	int r = mb_is_hex_prefixed(t->s, t->len) ?
		mb_parse_hex(t->s, t->len, 2, &v) :
		mb_parse_dec(t->s, t->len, 255, &v);

	if (r) {
		mb_err(p, "Unable to parse TOS: " TOK_Q
		       " (expected 0 to 255 or 0x00 to 0xff)", TOK_A(t));
		return -1;
	}
	*tos = (__u8)v;
	return 0;
}

/* I p: 0..255 or a name. */
static int mb_parse_ip_proto(struct mb_parser *p, const struct mb_tok *t,
			     __u8 *proto)
{
	unsigned long v;
	unsigned int u;

	if (!mb_name_lookup(mb_ip_protos, MB_NNAMES(mb_ip_protos), t, &u)) {
		*proto = (__u8)u;
		return 0;
	}
	if (mb_parse_dec(t->s, t->len, 255, &v)) {
		mb_err(p, "Unable to parse IP protocol: " TOK_Q " (expected 0 "
		       "to 255, icmp, tcp, udp, gre, esp, icmpv6 or sctp)",
		       TOK_A(t));
		return -1;
	}
	*proto = (__u8)v;
	return 0;
}

/*
 * M p: a name, 0x0600..0xffff, or a decimal number. A decimal number of at
 * least 1536 (0x0600) is the EtherType itself. One below cannot be an
 * EtherType (it would be an 802.3 length), and is read the way the report's
 * implementation compared it: it compared the big-endian h_proto of the
 * frame, loaded on a little-endian machine, with the number given, so its
 * "p 8" matched IPv4 frames (0x0800 on the wire). Such a number is therefore
 * byte-swapped, and must still give an EtherType of at least 0x0600.
 */
static int mb_parse_ethertype(struct mb_parser *p, const struct mb_tok *t,
			      __u16 *type)
{
	unsigned long v;
	unsigned int u;

	if (!mb_name_lookup(mb_ethertypes, MB_NNAMES(mb_ethertypes), t, &u)) {
		*type = (__u16)u;
		return 0;
	}
	if (mb_is_hex_prefixed(t->s, t->len)) {
		if (mb_parse_hex(t->s, t->len, 4, &v)) {
			mb_err(p, "Unable to parse EtherType: " TOK_Q
			       " (expected 0x0600 to 0xffff)", TOK_A(t));
			return -1;
		}
		if (v < MB_ETH_P_MIN) {
			mb_err(p, "EtherType " TOK_Q " is below 0x0600, which "
			       "is an 802.3 length, not an EtherType",
			       TOK_A(t));
			return -1;
		}
		*type = (__u16)v;
		return 0;
	}
	if (mb_parse_dec(t->s, t->len, 0xffff, &v)) {
		mb_err(p, "Unable to parse EtherType: " TOK_Q " (expected a "
		       "name such as ipv4, arp or ipv6, or 0x0600 to 0xffff)",
		       TOK_A(t));
		return -1;
	}
	if (v < MB_ETH_P_MIN) {
		unsigned long sw = (v & 0xff) << 8 | v >> 8;

		if (sw < MB_ETH_P_MIN) {
			mb_err(p, "EtherType " TOK_Q " read byte-swapped as in "
			       "the report is 0x%04lx, below 0x0600; give it "
			       "as 0xHHHH or by name", TOK_A(t), sw);
			return -1;
		}
		v = sw;
	}
	*type = (__u16)v;
	return 0;
}

/* T s / T d: port or lo-hi. */
static int mb_parse_ports(struct mb_parser *p, const struct mb_tok *t,
			  __u16 *lo, __u16 *hi)
{
	const char *dash = memchr(t->s, '-', t->len);
	size_t llen = dash ? (size_t)(dash - t->s) : t->len;
	unsigned long a, b = 0;

	if (mb_parse_dec(t->s, llen, 65535, &a) ||
	    (dash && mb_parse_dec(dash + 1, t->len - llen - 1, 65535, &b))) {
		mb_err(p, "Unable to parse port or port range: " TOK_Q
		       " (expected 0 to 65535 or low-high)", TOK_A(t));
		return -1;
	}
	if (!dash)
		b = a;
	if (a > b) {
		mb_err(p, "Port range " TOK_Q " is reversed (low-high with "
		       "low <= high)", TOK_A(t));
		return -1;
	}
	*lo = (__u16)a;
	*hi = (__u16)b;
	return 0;
}

/* T p: tcp or udp. */
static int mb_parse_tp_proto(struct mb_parser *p, const struct mb_tok *t,
			     __u8 *proto)
{
	if (mb_tok_is(t, "tcp") || mb_tok_is(t, "6")) {
		*proto = 6;
		return 0;
	}
	if (mb_tok_is(t, "udp") || mb_tok_is(t, "17")) {
		*proto = 17;
		return 0;
	}
	mb_err(p, "Transport protocol must be tcp or udp (6 or 17), not " TOK_Q,
	       TOK_A(t));
	return -1;
}

/* M s / M d: any MAC address, multicast included. */
static int mb_parse_mac_val(struct mb_parser *p, const struct mb_tok *t,
			    __u8 mac[MB_ETH_ALEN])
{
	if (mb_parse_mac_n(t->s, t->len, mac)) {
		mb_err(p, "Unable to parse MAC address: " TOK_Q, TOK_A(t));
		return -1;
	}
	return 0;
}

static int mb_parse_value(struct mb_parser *p, const struct mb_tok *t,
			  struct mb_rule *r, __u8 field)
{
	switch (r->cls) {
	case MBSTATE_CLASS_IP:
		switch (field) {
		case MBSTATE_FIELD_S:
			return mb_parse_prefix(p, t, &r->src_ip, &r->src_plen);
		case MBSTATE_FIELD_D:
			return mb_parse_prefix(p, t, &r->dst_ip, &r->dst_plen);
		case MBSTATE_FIELD_T:
			return mb_parse_tos(p, t, &r->tos);
		default:
			return mb_parse_ip_proto(p, t, &r->proto);
		}
	case MBSTATE_CLASS_MAC:
		switch (field) {
		case MBSTATE_FIELD_S:
			return mb_parse_mac_val(p, t, r->src_mac);
		case MBSTATE_FIELD_D:
			return mb_parse_mac_val(p, t, r->dst_mac);
		default:
			return mb_parse_ethertype(p, t, &r->ethertype);
		}
	default:
		switch (field) {
		case MBSTATE_FIELD_S:
			return mb_parse_ports(p, t, &r->sport_min,
					      &r->sport_max);
		case MBSTATE_FIELD_D:
			return mb_parse_ports(p, t, &r->dport_min,
					      &r->dport_max);
		default:
			return mb_parse_tp_proto(p, t, &r->proto);
		}
	}
}

/*
 * The members of @r that its valued fields use, everything else zero. A rule
 * built by the parser must equal this, byte for byte.
 */
static void mb_rule_canon(const struct mb_rule *r, struct mb_rule *c)
{
	__u8 v = r->valued & r->fields;

	memset(c, 0, sizeof(*c));
	c->cls = r->cls;
	c->fields = r->fields;
	c->valued = r->valued;
	switch (r->cls) {
	case MBSTATE_CLASS_IP:
		if (v & MBSTATE_FIELD_S) {
			c->src_ip = r->src_ip;
			c->src_plen = r->src_plen;
		}
		if (v & MBSTATE_FIELD_D) {
			c->dst_ip = r->dst_ip;
			c->dst_plen = r->dst_plen;
		}
		if (v & MBSTATE_FIELD_T)
			c->tos = r->tos;
		if (v & MBSTATE_FIELD_P)
			c->proto = r->proto;
		break;
	case MBSTATE_CLASS_MAC:
		if (v & MBSTATE_FIELD_S)
			memcpy(c->src_mac, r->src_mac, MB_ETH_ALEN);
		if (v & MBSTATE_FIELD_D)
			memcpy(c->dst_mac, r->dst_mac, MB_ETH_ALEN);
		if (v & MBSTATE_FIELD_P)
			c->ethertype = r->ethertype;
		break;
	case MBSTATE_CLASS_TP:
		if (v & MBSTATE_FIELD_S) {
			c->sport_min = r->sport_min;
			c->sport_max = r->sport_max;
		}
		if (v & MBSTATE_FIELD_D) {
			c->dport_min = r->dport_min;
			c->dport_max = r->dport_max;
		}
		if (v & MBSTATE_FIELD_P)
			c->proto = r->proto;
		break;
	}
}

/*
 * mb_rule_check() plus what it cannot know: the members of fields without a
 * value are zero, so that equal commands give equal rules.
 */
static const char *mb_rule_check_sel(const struct mb_rule *r)
{
	struct mb_rule c;
	const char *why = mb_rule_check(r);

	if (why)
		return why;
	mb_rule_canon(r, &c);
	if (memcmp(&c, r, sizeof(c)))
		return "values of fields without a value must be zero";
	return NULL;
}

/* ---- Commands. ---- */

static int mb_parse_mb_mac(struct mb_parser *p, __u8 mac[MB_ETH_ALEN])
{
	struct mb_tok t;

	if (!mb_next(p, &t)) {
		mb_err(p, "Missing MAC address (usage: %s)", p->usage);
		return -1;
	}
	if (mb_parse_mac_n(t.s, t.len, mac)) {
		mb_err(p, "Unable to parse MAC address: " TOK_Q, TOK_A(&t));
		return -1;
	}
	if (mac[0] & 1) {
		mb_err(p, "MAC address " TOK_Q " is multicast; a middlebox has "
		       "a unicast address", TOK_A(&t));
		return -1;
	}
	if (!(mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5])) {
		mb_err(p, "MAC address " TOK_Q " is all zero; a middlebox has "
		       "a unicast address", TOK_A(&t));
		return -1;
	}
	return 0;
}

/* An IPv4 address; @what says which one, for messages. */
static int mb_parse_ip_arg(struct mb_parser *p, const char *what,
			   bool unicast, __u8 b[4], struct mb_tok *t)
{
	const char *why;

	if (!mb_next(p, t)) {
		mb_err(p, "Missing %s (usage: %s)", what, p->usage);
		return -1;
	}
	if (mb_parse_ipv4_n(t->s, t->len, b)) {
		mb_err(p, "Unable to parse IP address: " TOK_Q, TOK_A(t));
		return -1;
	}
	why = unicast ? mb_ip_not_unicast(b) : NULL;
	if (why) {
		mb_err(p, "The %s " TOK_Q " is %s; it must be unicast", what,
		       TOK_A(t), why);
		return -1;
	}
	return 0;
}

/* The value of a "vlan" option: 1 to MBSTATE_VLAN_MAX. */
static int mb_parse_vlan(struct mb_parser *p, const struct mb_tok *t,
			 __u16 *vlan)
{
	unsigned long v;

	if (mb_parse_dec(t->s, t->len, MBSTATE_VLAN_MAX, &v) ||
	    v < MBSTATE_VLAN_MIN) {
		mb_err(p, "Unable to parse VLAN: " TOK_Q " (expected %d to %d)",
		       TOK_A(t), MBSTATE_VLAN_MIN, MBSTATE_VLAN_MAX);
		return -1;
	}
	*vlan = (__u16)v;
	return 0;
}

static int mb_parse_backend_mac(struct mb_parser *p, const struct mb_tok *v,
				struct mb_lb_backend *be,
				const __u8 mb_mac[MB_ETH_ALEN])
{
	if (mb_parse_mac_n(v->s, v->len, be->mac)) {
		mb_err(p, "Unable to parse backend MAC address: " TOK_Q,
		       TOK_A(v));
		return -1;
	}
	if (be->mac[0] & 1) {
		mb_err(p, "Backend MAC address " TOK_Q " is multicast; "
		       "a backend has a unicast address", TOK_A(v));
		return -1;
	}
	if (!(be->mac[0] | be->mac[1] | be->mac[2] | be->mac[3] |
	      be->mac[4] | be->mac[5])) {
		mb_err(p, "Backend MAC address " TOK_Q " is all zero; "
		       "a backend has a unicast address", TOK_A(v));
		return -1;
	}
	if (!memcmp(be->mac, mb_mac, MB_ETH_ALEN)) {
		mb_err(p, "The backend MAC address " TOK_Q " must not "
		       "be the middlebox's own", TOK_A(v));
		return -1;
	}
	be->has_mac = 1;
	return 0;
}

/*
 * The options at the end of a command, each at most once, in any order;
 * then the end of the command. "mac <MAC>" and "weight <w>" are a
 * backend's (@be: R L, A <MAC> L), "vlan <VID>" is a registration's
 * (@vlan: R F, R L). At most three rounds succeed, and each one consumes
 * two tokens.
 */
static int mb_parse_opts(struct mb_parser *p, struct mb_lb_backend *be,
			 const __u8 mb_mac[MB_ETH_ALEN], __u16 *vlan)
{
	bool seen_mac = false, seen_weight = false, seen_vlan = false;
	struct mb_tok t, v;
	unsigned long w;

	while (mb_next(p, &t)) {
		bool is_mac = be && mb_tok_is(&t, "mac");
		bool is_weight = be && mb_tok_is(&t, "weight");
		bool is_vlan = vlan && mb_tok_is(&t, "vlan");
		bool *seen = is_mac ? &seen_mac : is_weight ? &seen_weight :
			     &seen_vlan;

		if (!is_mac && !is_weight && !is_vlan) {
			if (!vlan && mb_tok_is(&t, "vlan"))
				mb_err(p, "Option `vlan' belongs to the "
				       "registration (R), not to a backend "
				       "(usage: %s)", p->usage);
			else
				mb_err(p, "Unexpected token " TOK_Q " after "
				       "the end of the command (usage: %s)",
				       TOK_A(&t), p->usage);
			return -1;
		}
		if (*seen) {
			mb_err(p, "Option " TOK_Q " is given twice", TOK_A(&t));
			return -1;
		}
		*seen = true;
		if (!mb_next(p, &v)) {
			mb_err(p, "Missing value after " TOK_Q " (usage: %s)",
			       TOK_A(&t), p->usage);
			return -1;
		}
		if (is_vlan) {
			if (mb_parse_vlan(p, &v, vlan))
				return -1;
		} else if (is_weight) {
			if (mb_parse_dec(v.s, v.len, MBSTATE_LB_WEIGHT_MAX,
					 &w)) {
				mb_err(p, "Unable to parse weight: " TOK_Q
				       " (expected 0 to %d)", TOK_A(&v),
				       MBSTATE_LB_WEIGHT_MAX);
				return -1;
			}
			be->weight = (__u32)w;
		} else if (mb_parse_backend_mac(p, &v, be, mb_mac)) {
			return -1;
		}
	}
	return 0;
}

static int mb_parse_register(struct mb_parser *p, struct mb_cmd *cmd)
{
	struct mb_tok t, lt;
	unsigned long type;
	__u8 mb[4], src[4], dst[4];

	p->usage = "R F <MAC> <IP> [vlan <1-4094>] or "
		   "R L <MAC> <IP> <type> <srcIP> <dstIP> ...";
	if (!mb_next(p, &t)) {
		mb_err(p, "Missing service after `R' (usage: %s)", p->usage);
		return -1;
	}
	if (mb_tok_is(&t, "F")) {
		cmd->service = MBSTATE_SVC_F;
		p->usage = "R F <MAC> <IP> [vlan <1-4094>]";
	} else if (mb_tok_is(&t, "L")) {
		cmd->service = MBSTATE_SVC_L;
		p->usage = "R L <MAC> <IP> <type> <srcIP> <dstIP> "
			   "[mac <MAC>] [weight <0-1000>] [vlan <1-4094>]";
	} else {
		mb_err(p, "Unknown service " TOK_Q " (expected F for firewall "
		       "or L for load balancer)", TOK_A(&t));
		return -1;
	}
	if (mb_parse_mb_mac(p, cmd->mac) ||
	    mb_parse_ip_arg(p, "IP address", true, mb, &t))
		return -1;
	cmd->ip = mb_ip_be(mb);
	if (cmd->service == MBSTATE_SVC_F)
		return mb_parse_opts(p, NULL, cmd->mac, &cmd->vlan);

	if (!mb_next(p, &lt)) {
		mb_err(p, "Missing load-balancer type (usage: %s)", p->usage);
		return -1;
	}
	if (mb_parse_dec(lt.s, lt.len, 1, &type)) {
		mb_err(p, "Unknown load-balancer type " TOK_Q " (expected 0 "
		       "for any source or 1 for one source)", TOK_A(&lt));
		return -1;
	}
	if (mb_parse_ip_arg(p, "source address", false, src, &t))
		return -1;
	if (type == 0 && (src[0] | src[1] | src[2] | src[3])) {
		mb_err(p, "Load-balancer type 0 forwards any source, so its "
		       "source address must be 0.0.0.0, not " TOK_Q,
		       TOK_A(&t));
		return -1;
	}
	if (type == 1 && mb_ip_not_unicast(src)) {
		mb_err(p, "Load-balancer type 1 forwards one source, which "
		       "must be unicast; " TOK_Q " is %s", TOK_A(&t),
		       mb_ip_not_unicast(src));
		return -1;
	}
	if (mb_parse_ip_arg(p, "backend address", true, dst, &t))
		return -1;
	if (!memcmp(dst, mb, 4)) {
		mb_err(p, "The backend " TOK_Q " must not be the middlebox "
		       "itself", TOK_A(&t));
		return -1;
	}
	cmd->lb.type = (__u8)type;
	cmd->lb.src_ip = mb_ip_be(src);
	cmd->lb.dst_ip = mb_ip_be(dst);
	cmd->backend.ip = cmd->lb.dst_ip;
	cmd->backend.weight = 1;
	return mb_parse_opts(p, &cmd->backend, cmd->mac, &cmd->vlan);
}

/* The "L <IP> ..." of A <MAC> L and D <MAC> L. */
static int mb_parse_backend_cmd(struct mb_parser *p, struct mb_cmd *cmd,
				bool add)
{
	struct mb_tok t;
	__u8 b[4];

	mb_next(p, &t);		/* the "L" the caller peeked */
	cmd->op = add ? MB_OP_ADD_BACKEND : MB_OP_DEL_BACKEND;
	p->usage = add ? "A <MAC> L <IP> [mac <MAC>] [weight <0-1000>]" :
		"D <MAC> L <IP>";
	if (mb_parse_ip_arg(p, "backend address", true, b, &t))
		return -1;
	cmd->backend.ip = mb_ip_be(b);
	if (!add)
		return mb_expect_end(p);
	cmd->backend.weight = 1;
	return mb_parse_opts(p, &cmd->backend, cmd->mac, NULL);
}

/* The "<class> <mask> <field> [<value>] ..." of A and D. */
static int mb_parse_rule(struct mb_parser *p, struct mb_rule *r, bool add)
{
	struct mb_tok t;
	unsigned long mask;
	__u8 left, allowed;
	char list[32];
	const char *why;
	char cls;

	if (!mb_next(p, &t)) {	/* the caller peeked: cannot happen */
		mb_err(p, "Missing filter class (usage: %s)", p->usage);
		return -1;
	}
	if (mb_tok_is(&t, "I")) {
		r->cls = MBSTATE_CLASS_IP;
	} else if (mb_tok_is(&t, "M")) {
		r->cls = MBSTATE_CLASS_MAC;
	} else if (mb_tok_is(&t, "T")) {
		r->cls = MBSTATE_CLASS_TP;
	} else {
		mb_err(p, "Unknown filter class " TOK_Q " (expected I, M or T, "
		       "or L for a backend)", TOK_A(&t));
		return -1;
	}
	cls = mb_class_letter(r->cls);
	if (!mb_next(p, &t)) {
		mb_err(p, "Missing mask after class `%c' (usage: %s)", cls,
		       p->usage);
		return -1;
	}
	if (mb_parse_dec(t.s, t.len, MBSTATE_FIELD_ALL, &mask) || !mask) {
		mb_err(p, "Unable to parse mask: " TOK_Q " (expected 1 to 15: "
		       "p=1, t=2, s=4, d=8)", TOK_A(&t));
		return -1;
	}
	allowed = mb_class_fields(r->cls);
	if (mask & ~allowed) {
		mb_err(p, "Mask %lu of class %c names field t, but field t "
		       "(TOS) exists only in class I", mask, cls);
		return -1;
	}
	r->fields = (__u8)mask;
	mb_field_list(r->fields, list, sizeof(list));

	/* One field per bit of the mask; at most four rounds. */
	for (left = r->fields; left; ) {
		__u8 f;

		if (!mb_next(p, &t)) {
			mb_err(p, "Missing field `%c' (mask %lu of class %c "
			       "names %s)", mb_first_field(left), mask, cls,
			       list);
			return -1;
		}
		f = mb_field_bit(&t);
		if (!f) {
			mb_err(p, "Expected a field (s, d, t or p), not " TOK_Q,
			       TOK_A(&t));
			return -1;
		}
		if (!(r->fields & f)) {
			mb_err(p, "Mask %lu of class %c names %s, but " TOK_Q
			       " was given", mask, cls, list, TOK_A(&t));
			return -1;
		}
		if (!(left & f)) {
			mb_err(p, "Field " TOK_Q " is given twice", TOK_A(&t));
			return -1;
		}
		left &= (__u8)~f;

		if (!mb_peek(p, &t) || mb_field_bit(&t)) {
			if (add) {
				mb_err(p, "Missing value for field `%c'",
				       mb_first_field(f));
				return -1;
			}
			continue;	/* a selector naming the field only */
		}
		mb_next(p, &t);
		if (mb_parse_value(p, &t, r, f))
			return -1;
		r->valued |= f;
	}
	if (mb_expect_end(p))
		return -1;

	why = mb_rule_check_sel(r);
	if (why) {
		mb_err(p, "Internal error: the parsed rule is invalid: %s",
		       why);
		return -1;
	}
	return 0;
}

static int mb_parse_cmd(struct mb_parser *p, struct mb_cmd *cmd)
{
	struct mb_tok t;
	bool add;

	if (!mb_next(p, &t)) {
		mb_err(p, "Empty command");
		return -1;
	}
	if (t.len != 1)
		goto unknown;
	switch (t.s[0]) {
	case 'R':
		cmd->op = MB_OP_REGISTER;
		return mb_parse_register(p, cmd);
	case 'X':
	case 'Q':
		cmd->op = t.s[0] == 'X' ? MB_OP_UNREGISTER : MB_OP_QUERY;
		p->usage = t.s[0] == 'X' ? "X <MAC>" : "Q <MAC>";
		if (mb_parse_mb_mac(p, cmd->mac))
			return -1;
		return mb_expect_end(p);
	case 'A':
	case 'D':
		add = t.s[0] == 'A';
		p->usage = add ? "A <MAC> [<class> <mask> <field> <value>...]" :
			"D <MAC> [<class> <mask> <field> [<value>]...]";
		if (mb_parse_mb_mac(p, cmd->mac))
			return -1;
		if (!mb_peek(p, &t)) {
			cmd->op = add ? MB_OP_ENABLE : MB_OP_DISABLE;
			return 0;
		}
		if (mb_tok_is(&t, "L"))
			return mb_parse_backend_cmd(p, cmd, add);
		cmd->op = add ? MB_OP_ADD_RULE : MB_OP_DEL_RULE;
		return mb_parse_rule(p, &cmd->rule, add);
	}
unknown:
	mb_err(p, "Unknown command " TOK_Q " (expected R, A, D, X or Q)",
	       TOK_A(&t));
	return -1;
}

/*
 * Checks the bytes and the '@' framing, and finds the command inside:
 * blanks, then optionally '@' ... '@', then blanks.
 */
static int mb_unframe(struct mb_parser *p, const char *text, size_t len)
{
	size_t b = 0, e = len, i;

	if (!text && len) {
		mb_err(p, "No command text");
		return -1;
	}
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)text[i];

		if (c != '\t' && (c < 0x20 || c > 0x7e)) {
			mb_err(p, "Invalid byte 0x%02x at offset %zu (only "
			       "printable ASCII and tab are allowed)", c, i);
			return -1;
		}
	}
	while (b < e && mb_is_blank(text[b]))
		b++;
	while (e > b && mb_is_blank(text[e - 1]))
		e--;
	if (b == e) {
		mb_err(p, "Empty command");
		return -1;
	}
	if (text[b] == '@') {
		if (e - b < 2 || text[e - 1] != '@') {
			mb_err(p, "Missing closing `@' (a framed command is "
			       "written @...@)");
			return -1;
		}
		b++;
		e--;
	} else if (text[e - 1] == '@') {
		mb_err(p, "Missing opening `@' (a framed command is written "
		       "@...@)");
		return -1;
	}
	for (i = b; i < e; i++) {
		if (text[i] == '@') {
			mb_err(p, "Unexpected `@' at offset %zu (only one "
			       "`@' is allowed at each end)", i);
			return -1;
		}
	}
	if (e - b > MB_CMD_MAX_LEN) {
		mb_err(p, "Command is %zu bytes long; at most %d are allowed",
		       e - b, MB_CMD_MAX_LEN);
		return -1;
	}
	p->text = text + b;
	p->len = e - b;
	p->pos = 0;
	return 0;
}

int mb_cmd_parse(const char *text, size_t len, struct mb_cmd *cmd,
		 char *err, size_t errlen)
{
	struct mb_parser p;

	memset(&p, 0, sizeof(p));
	p.usage = "";
	p.err = err;
	p.errlen = errlen;
	if (err && errlen)
		err[0] = '\0';
	if (!cmd) {
		mb_err(&p, "Internal error: no command to fill");
		return -1;
	}
	memset(cmd, 0, sizeof(*cmd));
	if (mb_unframe(&p, text, len) || mb_parse_cmd(&p, cmd)) {
		memset(cmd, 0, sizeof(*cmd));
		return -1;
	}
	return 0;
}

/* ---- Formatting. ---- */

struct mb_out {
	char *buf;
	size_t len;
	size_t pos;
	bool full;
};

static void __attribute__((format(printf, 2, 3)))
mb_out(struct mb_out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->full)
		return;
	va_start(ap, fmt);
	n = vsnprintf(o->buf + o->pos, o->len - o->pos, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= o->len - o->pos)
		o->full = true;
	else
		o->pos += (size_t)n;
}

static void mb_out_ip(struct mb_out *o, __be32 ip)
{
	char s[16];

	mb_format_ipv4(ip, s);
	mb_out(o, " %s", s);
}

static void mb_out_mac(struct mb_out *o, const __u8 mac[MB_ETH_ALEN])
{
	char s[18];

	mb_format_mac(mac, s);
	mb_out(o, " %s", s);
}

static void mb_out_prefix(struct mb_out *o, __be32 ip, __u8 plen)
{
	mb_out_ip(o, ip);
	if (plen < 32)
		mb_out(o, "/%u", plen);
}

static void mb_out_ports(struct mb_out *o, __u16 lo, __u16 hi)
{
	if (lo == hi)
		mb_out(o, " %u", lo);
	else
		mb_out(o, " %u-%u", lo, hi);
}

static void mb_out_value(struct mb_out *o, const struct mb_rule *r, __u8 f)
{
	const char *name;

	switch (r->cls) {
	case MBSTATE_CLASS_IP:
		if (f == MBSTATE_FIELD_S) {
			mb_out_prefix(o, r->src_ip, r->src_plen);
		} else if (f == MBSTATE_FIELD_D) {
			mb_out_prefix(o, r->dst_ip, r->dst_plen);
		} else if (f == MBSTATE_FIELD_T) {
			mb_out(o, " 0x%02x", r->tos);
		} else {
			name = mb_name_of(mb_ip_protos,
					  MB_NNAMES(mb_ip_protos), r->proto);
			if (name)
				mb_out(o, " %s", name);
			else
				mb_out(o, " %u", r->proto);
		}
		break;
	case MBSTATE_CLASS_MAC:
		if (f == MBSTATE_FIELD_S) {
			mb_out_mac(o, r->src_mac);
		} else if (f == MBSTATE_FIELD_D) {
			mb_out_mac(o, r->dst_mac);
		} else {
			name = mb_name_of(mb_ethertypes,
					  MB_NNAMES(mb_ethertypes),
					  r->ethertype);
			if (name)
				mb_out(o, " %s", name);
			else
				mb_out(o, " 0x%04x", r->ethertype);
		}
		break;
	case MBSTATE_CLASS_TP:
		if (f == MBSTATE_FIELD_S)
			mb_out_ports(o, r->sport_min, r->sport_max);
		else if (f == MBSTATE_FIELD_D)
			mb_out_ports(o, r->dport_min, r->dport_max);
		else
			mb_out(o, " %s", r->proto == 6 ? "tcp" : "udp");
		break;
	}
}

/* Prints the value of each field in @valued. */
static int mb_out_rule(struct mb_out *o, const struct mb_rule *r, __u8 valued)
{
	struct mb_rule c = *r;
	size_t i;

	c.valued = valued;
	if (mb_rule_check_sel(&c))
		return -1;
	mb_out(o, "%c %u", mb_class_letter(r->cls), r->fields);
	for (i = 0; i < MB_NNAMES(mb_fields); i++) {
		__u8 f = mb_fields[i].bit;

		if (!(r->fields & f))
			continue;
		mb_out(o, " %c", mb_fields[i].letter);
		if (c.valued & f)
			mb_out_value(o, r, f);
	}
	return 0;
}

static int mb_out_finish(struct mb_out *o, int bad)
{
	if (bad || o->full) {
		if (o->buf && o->len)
			o->buf[0] = '\0';
		return -1;
	}
	return (int)o->pos;
}

int mb_rule_format(const struct mb_rule *rule, char *buf, size_t len)
{
	struct mb_out o = { .buf = buf, .len = len, .full = !buf || !len };

	if (!rule)
		return mb_out_finish(&o, -1);
	return mb_out_finish(&o, mb_out_rule(&o, rule, rule->valued));
}

/*
 * Whether @cmd's backend is one the parser could have produced: all zero
 * for commands without one; for D <MAC> L only the address.
 */
static bool mb_backend_ok(const struct mb_cmd *cmd)
{
	static const __u8 zero_mac[MB_ETH_ALEN];
	const struct mb_lb_backend *be = &cmd->backend;
	bool has = cmd->op == MB_OP_ADD_BACKEND ||
		   (cmd->op == MB_OP_REGISTER &&
		    cmd->service == MBSTATE_SVC_L);

	if (be->pad || be->has_mac > 1 ||
	    (!be->has_mac && memcmp(be->mac, zero_mac, MB_ETH_ALEN)))
		return false;
	if (cmd->op == MB_OP_DEL_BACKEND)
		return be->ip && !be->weight && !be->has_mac;
	if (!has)
		return !be->ip && !be->weight && !be->has_mac;
	if (cmd->op == MB_OP_REGISTER && be->ip != cmd->lb.dst_ip)
		return false;
	return be->ip && be->weight <= MBSTATE_LB_WEIGHT_MAX;
}

/* " mac <MAC>" and " weight <w>" where they differ from the defaults. */
static void mb_out_backend_opts(struct mb_out *o,
				const struct mb_lb_backend *be)
{
	if (be->has_mac) {
		mb_out(o, " mac");
		mb_out_mac(o, be->mac);
	}
	if (be->weight != 1)
		mb_out(o, " weight %u", be->weight);
}

int mb_cmd_format(const struct mb_cmd *cmd, char *buf, size_t len)
{
	struct mb_out o = { .buf = buf, .len = len, .full = !buf || !len };
	int bad = 0;

	if (!cmd)
		return mb_out_finish(&o, -1);
	if (!mb_backend_ok(cmd))
		return mb_out_finish(&o, -1);
	if (cmd->vlan && (cmd->op != MB_OP_REGISTER ||
			  cmd->vlan > MBSTATE_VLAN_MAX))
		return mb_out_finish(&o, -1);
	switch (cmd->op) {
	case MB_OP_REGISTER:
		if (cmd->service == MBSTATE_SVC_F) {
			mb_out(&o, "R F");
		} else if (cmd->service == MBSTATE_SVC_L) {
			mb_out(&o, "R L");
		} else {
			bad = -1;
			break;
		}
		mb_out_mac(&o, cmd->mac);
		mb_out_ip(&o, cmd->ip);
		if (cmd->service == MBSTATE_SVC_L) {
			mb_out(&o, " %u", cmd->lb.type);
			mb_out_ip(&o, cmd->lb.src_ip);
			mb_out_ip(&o, cmd->lb.dst_ip);
			mb_out_backend_opts(&o, &cmd->backend);
		}
		if (cmd->vlan)
			mb_out(&o, " vlan %u", cmd->vlan);
		break;
	case MB_OP_ADD_BACKEND:
	case MB_OP_DEL_BACKEND:
		mb_out(&o, "%c", cmd->op == MB_OP_ADD_BACKEND ? 'A' : 'D');
		mb_out_mac(&o, cmd->mac);
		mb_out(&o, " L");
		mb_out_ip(&o, cmd->backend.ip);
		if (cmd->op == MB_OP_ADD_BACKEND)
			mb_out_backend_opts(&o, &cmd->backend);
		break;
	case MB_OP_ENABLE:
	case MB_OP_ADD_RULE:
		mb_out(&o, "A");
		mb_out_mac(&o, cmd->mac);
		if (cmd->op == MB_OP_ADD_RULE) {
			mb_out(&o, " ");
			/* every field of a rule to add has its value */
			bad = mb_out_rule(&o, &cmd->rule, cmd->rule.fields);
		}
		break;
	case MB_OP_DISABLE:
	case MB_OP_DEL_RULE:
		mb_out(&o, "D");
		mb_out_mac(&o, cmd->mac);
		if (cmd->op == MB_OP_DEL_RULE) {
			mb_out(&o, " ");
			bad = mb_out_rule(&o, &cmd->rule, cmd->rule.valued);
		}
		break;
	case MB_OP_UNREGISTER:
		mb_out(&o, "X");
		mb_out_mac(&o, cmd->mac);
		break;
	case MB_OP_QUERY:
		mb_out(&o, "Q");
		mb_out_mac(&o, cmd->mac);
		break;
	case MB_OP_NONE:
	default:
		bad = -1;
		break;
	}
	return mb_out_finish(&o, bad);
}
