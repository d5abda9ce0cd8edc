// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * domain.c - a libvirt domain's MAC addresses and <shmem> device, for
 * mbhostd --domain and --domain-xml. The XML is libvirt's domain format
 * (https://libvirt.org/formatdomain.html): <devices><interface><mac
 * address='52:54:00:..'/></interface> and
 *
 *   <shmem name='mbvisor-vm1'>
 *     <model type='ivshmem-plain'/>          (or ivshmem-doorbell)
 *     <size unit='M'>1</size>
 *     <server path='/var/lib/libvirt/shmem/mbvisor-vm1-sock'/>  (doorbell)
 *   </shmem>
 *
 * and, in the domain's <metadata>, what the host allows the VM to name
 * (docs/deploy.md; the same as mbhostd's --allow-backend and --allow-ip):
 *
 *   <mbvisor:config xmlns:mbvisor='urn:mbvisor:domain:1'>
 *     <mbvisor:backend address='10.0.0.9' mac='52:54:00:00:00:09'/>
 *     <mbvisor:backend address='10.0.1.0/24'/>
 *     <mbvisor:address address='10.0.0.100'/>
 *   </mbvisor:config>
 */

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <libxml/parser.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>
#include <mbvisor/cmd.h>
#include "domain.h"

/* libvirt's default socket for a doorbell shmem device without <server>. */
#define LIBVIRT_SHMEM_DIR	"/var/lib/libvirt/shmem"

static xmlXPathObjectPtr xpath(xmlXPathContextPtr ctx, const char *expr,
			       xmlNodePtr node)
{
	ctx->node = node;
	return xmlXPathEvalExpression((const xmlChar *)expr, ctx);
}

/* The string value of @expr relative to @node, into @buf ("" if none).
 * Returns -1 if it does not fit. */
static int xpath_str(xmlXPathContextPtr ctx, const char *expr,
		     xmlNodePtr node, char *buf, size_t len)
{
	xmlXPathObjectPtr o;
	xmlChar *s;
	int ret = 0;

	buf[0] = '\0';
	o = xpath(ctx, expr, node);
	if (!o)
		return 0;
	s = xmlXPathCastToString(o);
	if (s) {
		if (strlen((const char *)s) >= len)
			ret = -1;
		else
			strcpy(buf, (const char *)s);
		xmlFree(s);
	}
	xmlXPathFreeObject(o);
	return ret;
}

/* libvirt's <size unit=...>: b, bytes, k, KiB, KB, M, MiB, MB, G, ...;
 * no unit means bytes, as for libvirt's other scaled values. */
static int size_bytes(const char *num, const char *unit,
		      unsigned long long *out)
{
	static const struct {
		const char *name;
		unsigned long long mult;
	} units[] = {
		{ "", 1 }, { "b", 1 }, { "bytes", 1 },
		{ "k", 1024ULL }, { "KiB", 1024ULL }, { "KB", 1000ULL },
		{ "M", 1ULL << 20 }, { "MiB", 1ULL << 20 },
		{ "MB", 1000000ULL },
		{ "G", 1ULL << 30 }, { "GiB", 1ULL << 30 },
		{ "GB", 1000000000ULL },
	};
	unsigned long long v;
	char *end;
	size_t i;

	errno = 0;
	v = strtoull(num, &end, 10);
	if (errno || end == num || *end)
		return -1;
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(unit, units[i].name))
			continue;
		if (v > ~0ULL / units[i].mult)
			return -1;
		*out = v * units[i].mult;
		return 0;
	}
	return -1;
}

/* --- Addresses the host allows ------------------------------------------ */

static __be32 plen_mask(unsigned int plen)
{
	return plen ? htonl(~0U << (32 - plen)) : 0;
}

int allow_parse(const char *cidr, const char *mac, struct allow *a,
		char *err, size_t errlen)
{
	char ip[16];
	const char *slash = strchr(cidr, '/');
	size_t n = slash ? (size_t)(slash - cidr) : strlen(cidr);
	unsigned long plen = 32;
	char *end;

	memset(a, 0, sizeof(*a));
	if (n >= sizeof(ip))
		goto bad;
	memcpy(ip, cidr, n);
	ip[n] = '\0';
	if (mb_parse_ipv4(ip, &a->ip))
		goto bad;
	if (slash) {
		if (slash[1] < '0' || slash[1] > '9')
			goto bad;
		errno = 0;
		plen = strtoul(slash + 1, &end, 10);
		if (errno || *end || plen > 32 ||
		    (slash[1] == '0' && slash[2]))
			goto bad;
	}
	a->plen = (__u8)plen;
	if (a->ip & ~plen_mask(a->plen)) {
		snprintf(err, errlen,
			 "`%s': the bits past the prefix length must be zero",
			 cidr);
		return -1;
	}
	if (mac && *mac) {
		if (mb_parse_mac(mac, a->mac)) {
			snprintf(err, errlen,
				 "Unable to parse MAC address: `%s'", mac);
			return -1;
		}
		if ((a->mac[0] & 1) ||
		    !memcmp(a->mac, "\0\0\0\0\0\0", MB_ETH_ALEN)) {
			snprintf(err, errlen,
				 "MAC address `%s' is not a unicast address",
				 mac);
			return -1;
		}
		if (a->plen != 32) {
			snprintf(err, errlen,
				 "`%s=%s': a MAC belongs to one address, not to a prefix",
				 cidr, mac);
			return -1;
		}
		a->has_mac = 1;
	}
	return 0;
bad:
	snprintf(err, errlen,
		 "Unable to parse address: `%s' (IPv4 address, optionally /0 to /32)",
		 cidr);
	return -1;
}

int allow_add(struct allow_list *l, const struct allow *a)
{
	size_t i;

	for (i = 0; i < l->n; i++) {
		const struct allow *o = &l->a[i];

		if (o->ip != a->ip || o->plen != a->plen)
			continue;
		if (o->has_mac == a->has_mac &&
		    !memcmp(o->mac, a->mac, MB_ETH_ALEN))
			return 0;
		return -2;
	}
	if (l->n == DOMAIN_MAX_ALLOW)
		return -1;
	l->a[l->n++] = *a;
	return 0;
}

const struct allow *allow_match(const struct allow_list *l, __be32 ip)
{
	const struct allow *best = NULL;
	size_t i;

	for (i = 0; i < l->n; i++) {
		const struct allow *a = &l->a[i];

		if ((ip & plen_mask(a->plen)) != a->ip)
			continue;
		if (!best || a->plen > best->plen)
			best = a;
	}
	return best;
}

void allow_format(const struct allow_list *l, size_t max, char *buf,
		  size_t len)
{
	size_t i, off = 0;
	char ip[16], mac[18];
	int r;

	if (!len)
		return;
	buf[0] = '\0';
	if (!l->n) {
		snprintf(buf, len, "nothing");
		return;
	}
	for (i = 0; i < l->n && i < max && off < len; i++) {
		const struct allow *a = &l->a[i];

		mb_format_ipv4(a->ip, ip);
		if (a->has_mac)
			mb_format_mac(a->mac, mac);
		r = snprintf(buf + off, len - off, "%s%s", i ? ", " : "", ip);
		if (r > 0)
			off += (size_t)r;
		if (a->plen != 32 && off < len) {
			r = snprintf(buf + off, len - off, "/%u", a->plen);
			if (r > 0)
				off += (size_t)r;
		}
		if (a->has_mac && off < len) {
			r = snprintf(buf + off, len - off, " (mac %s)", mac);
			if (r > 0)
				off += (size_t)r;
		}
	}
	if (i < l->n && off < len)
		snprintf(buf + off, len - off, ", and %zu more", l->n - i);
}

/*
 * <mbvisor:backend> or <mbvisor:address> elements (@what) of the
 * domain's mbvisor metadata into @l.
 */
static int parse_allow_elems(xmlXPathContextPtr ctx, const char *what,
			     bool macs, struct allow_list *l,
			     const char *dom, char *err, size_t errlen)
{
	char expr[256], addr[64], mac[64], why[256];
	xmlXPathObjectPtr o;
	struct allow a;
	int i, n, ret = 0;

	/* The children in mbvisor's namespace or in none: libvirt's API
	 * (virsh metadata --key) puts only the top element into it. */
	snprintf(expr, sizeof(expr),
		 "/domain/metadata/mbv:config/*[local-name() = '%s' and "
		 "(namespace-uri() = '' or namespace-uri() = '%s')]",
		 what, DOMAIN_MBVISOR_NS);
	o = xpath(ctx, expr, NULL);
	n = o && o->nodesetval ? o->nodesetval->nodeNr : 0;
	for (i = 0; i < n && !ret; i++) {
		xmlNodePtr node = o->nodesetval->nodeTab[i];

		if (xpath_str(ctx, "string(@address)", node, addr,
			      sizeof(addr)) ||
		    xpath_str(ctx, "string(@mac)", node, mac, sizeof(mac))) {
			snprintf(err, errlen,
				 "domain %s: <mbvisor:%s>: attribute too long",
				 dom, what);
			ret = -1;
		} else if (!macs && mac[0]) {
			snprintf(err, errlen,
				 "domain %s: <mbvisor:%s> takes no mac", dom,
				 what);
			ret = -1;
		} else if (allow_parse(addr, mac, &a, why, sizeof(why))) {
			snprintf(err, errlen, "domain %s: <mbvisor:%s>: %s",
				 dom, what, why);
			ret = -1;
		} else if (allow_add(l, &a)) {
			snprintf(err, errlen,
				 "domain %s: <mbvisor:%s address='%s'>: given twice with different MACs, or more than %d",
				 dom, what, addr, DOMAIN_MAX_ALLOW);
			ret = -1;
		}
	}
	if (o)
		xmlXPathFreeObject(o);
	return ret;
}

int domain_parse_xml(const char *xml, size_t len, const char *shm_name,
		     struct domain_info *d, char *err, size_t errlen)
{
	xmlXPathContextPtr ctx = NULL;
	xmlXPathObjectPtr macs = NULL, shmems = NULL;
	xmlNodePtr shm = NULL;
	char buf[256], unit[32];
	xmlDocPtr doc;
	int ret = -1, i, n;

	memset(d, 0, sizeof(*d));
	if (len > 64 * 1024 * 1024) {
		snprintf(err, errlen, "domain XML too large");
		return -1;
	}
	doc = xmlReadMemory(xml, (int)len, "domain.xml", NULL,
			    XML_PARSE_NONET | XML_PARSE_NOERROR |
			    XML_PARSE_NOWARNING);
	if (!doc) {
		snprintf(err, errlen, "domain XML does not parse");
		return -1;
	}
	ctx = xmlXPathNewContext(doc);
	if (!ctx) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if (xmlXPathRegisterNs(ctx, (const xmlChar *)"mbv",
			       (const xmlChar *)DOMAIN_MBVISOR_NS)) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if (xpath_str(ctx, "string(/domain/name)", NULL, d->name,
		      sizeof(d->name)) || !d->name[0]) {
		snprintf(err, errlen, "domain XML has no <name> (or it is too long)");
		goto out;
	}

	macs = xpath(ctx, "/domain/devices/interface/mac/@address", NULL);
	n = macs && macs->nodesetval ? macs->nodesetval->nodeNr : 0;
	for (i = 0; i < n; i++) {
		xmlChar *s = xmlNodeGetContent(macs->nodesetval->nodeTab[i]);
		int bad = !s || mb_parse_mac((const char *)s,
					    d->macs[d->nmacs]);

		if (bad) {
			snprintf(err, errlen,
				 "domain %s: Unable to parse MAC address: `%s'",
				 d->name, s ? (const char *)s : "");
			xmlFree(s);
			goto out;
		}
		xmlFree(s);
		if (++d->nmacs == DOMAIN_MAX_MACS && i + 1 < n) {
			snprintf(err, errlen,
				 "domain %s has more than %d interfaces",
				 d->name, DOMAIN_MAX_MACS);
			goto out;
		}
	}
	if (!d->nmacs) {
		snprintf(err, errlen,
			 "domain %s has no <interface> with a <mac address=...>",
			 d->name);
		goto out;
	}

	shmems = xpath(ctx, "/domain/devices/shmem", NULL);
	n = shmems && shmems->nodesetval ? shmems->nodesetval->nodeNr : 0;
	for (i = 0; i < n; i++) {
		xmlNodePtr node = shmems->nodesetval->nodeTab[i];

		if (xpath_str(ctx, "string(@name)", node, buf, sizeof(buf)))
			continue;
		if (shm_name ? !strcmp(buf, shm_name) : n == 1) {
			shm = node;
			break;
		}
	}
	if (!shm) {
		if (!n)
			snprintf(err, errlen, "domain %s has no <shmem> device",
				 d->name);
		else if (shm_name)
			snprintf(err, errlen,
				 "domain %s has no <shmem name='%s'>", d->name,
				 shm_name);
		else
			snprintf(err, errlen,
				 "domain %s has %d <shmem> devices: say which with --shm-name",
				 d->name, n);
		goto out;
	}
	if (xpath_str(ctx, "string(@name)", shm, d->shm_name,
		      sizeof(d->shm_name)) || !d->shm_name[0] ||
	    strchr(d->shm_name, '/') || d->shm_name[0] == '.') {
		snprintf(err, errlen, "domain %s: bad <shmem name=...>",
			 d->name);
		goto out;
	}
	xpath_str(ctx, "string(model/@type)", shm, buf, sizeof(buf));
	if (!buf[0] || !strcmp(buf, "ivshmem-plain") || !strcmp(buf, "ivshmem")) {
		d->doorbell = false;
	} else if (!strcmp(buf, "ivshmem-doorbell")) {
		d->doorbell = true;
	} else {
		snprintf(err, errlen, "domain %s: unknown <shmem> model `%s'",
			 d->name, buf);
		goto out;
	}
	if (d->doorbell) {
		if (xpath_str(ctx, "string(server/@path)", shm, d->server_path,
			      sizeof(d->server_path))) {
			snprintf(err, errlen, "domain %s: <server path> too long",
				 d->name);
			goto out;
		}
		if (!d->server_path[0] &&
		    snprintf(d->server_path, sizeof(d->server_path),
			     "%s/%s-sock", LIBVIRT_SHMEM_DIR, d->shm_name) >=
		    (int)sizeof(d->server_path)) {
			snprintf(err, errlen, "domain %s: socket path too long",
				 d->name);
			goto out;
		}
	}
	xpath_str(ctx, "normalize-space(size)", shm, buf, sizeof(buf));
	xpath_str(ctx, "string(size/@unit)", shm, unit, sizeof(unit));
	if (buf[0] && size_bytes(buf, unit, &d->shm_size)) {
		snprintf(err, errlen, "domain %s: bad <size unit='%s'>%s</size>",
			 d->name, unit, buf);
		goto out;
	}
	if (parse_allow_elems(ctx, "backend", true, &d->backends, d->name,
			      err, errlen) ||
	    parse_allow_elems(ctx, "address", false, &d->addrs, d->name,
			      err, errlen))
		goto out;
	ret = 0;
out:
	if (shmems)
		xmlXPathFreeObject(shmems);
	if (macs)
		xmlXPathFreeObject(macs);
	if (ctx)
		xmlXPathFreeContext(ctx);
	xmlFreeDoc(doc);
	return ret;
}

static void quiet_libvirt(void *data, virErrorPtr e)
{
	(void)data;
	(void)e;
}

int domain_from_libvirt(const char *uri, const char *name,
			const char *shm_name, struct domain_info *d,
			char *err, size_t errlen)
{
	virConnectPtr conn;
	virDomainPtr dom;
	virErrorPtr e;
	char *xml;
	int ret;

	virSetErrorFunc(NULL, quiet_libvirt);
	conn = virConnectOpenReadOnly(uri);
	if (!conn) {
		e = virGetLastError();
		snprintf(err, errlen, "Unable to connect to libvirt%s%s: %s",
			 uri ? " at " : "", uri ? uri : "",
			 e && e->message ? e->message : "unknown error");
		return -1;
	}
	dom = virDomainLookupByName(conn, name);
	if (!dom) {
		e = virGetLastError();
		snprintf(err, errlen, "libvirt domain `%s': %s", name,
			 e && e->message ? e->message : "not found");
		virConnectClose(conn);
		return -1;
	}
	/* The persistent definition would miss hot-plugged interfaces; the
	 * live one is what the VM has (inactive domains give their config). */
	xml = virDomainGetXMLDesc(dom, 0);
	if (!xml) {
		e = virGetLastError();
		snprintf(err, errlen, "libvirt domain `%s': %s", name,
			 e && e->message ? e->message : "no XML description");
		virDomainFree(dom);
		virConnectClose(conn);
		return -1;
	}
	ret = domain_parse_xml(xml, strlen(xml), shm_name, d, err, errlen);
	free(xml);
	virDomainFree(dom);
	virConnectClose(conn);
	return ret;
}
