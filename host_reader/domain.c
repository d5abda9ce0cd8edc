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
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <libxml/parser.h>
#include <libxml/xpath.h>
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
