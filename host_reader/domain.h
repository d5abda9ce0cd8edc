/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * What mbhostd needs to know of a libvirt domain: the MAC addresses of its
 * interfaces (the middleboxes it may speak for), its <shmem> device (the
 * channel), and the addresses the host allows it to name (load-balancer
 * backends, its own middlebox addresses) from the domain's <metadata>.
 * Read from libvirt (virDomainGetXMLDesc) or from an XML file.
 */
#ifndef _MBHOSTD_DOMAIN_H
#define _MBHOSTD_DOMAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>
#include <mbvisor/rule.h>

#define DOMAIN_MAX_MACS		64
#define DOMAIN_NAME_LEN		128
#define DOMAIN_MAX_ALLOW	256	/* of each kind, per VM */

/* The XML namespace of mbvisor's element in a domain's <metadata>. */
#define DOMAIN_MBVISOR_NS	"urn:mbvisor:domain:1"

/*
 * An address or prefix the host allows a VM to name: a backend
 * (--allow-backend, <mbvisor:backend>) or a middlebox address (--allow-ip,
 * <mbvisor:address>). A backend of one address may have its MAC pinned.
 */
struct allow {
	__be32 ip;		/* network order, the bits past plen zero */
	__u8 plen;		/* 0 to 32 */
	__u8 has_mac;
	__u8 mac[MB_ETH_ALEN];
};

struct allow_list {
	size_t n;
	struct allow a[DOMAIN_MAX_ALLOW];
};

/*
 * Parses "IP[/LEN]" and, if @mac is not NULL, a MAC address ("" or NULL:
 * none) into @a. A MAC needs a single address (/32). Returns 0, or -1 with
 * a sentence quoting the bad token in @err.
 */
int allow_parse(const char *cidr, const char *mac, struct allow *a,
		char *err, size_t errlen);

/* Appends @a to @l unless it has it; -1 when @l is full. A second entry
 * for the same prefix with another MAC is refused too (-2). */
int allow_add(struct allow_list *l, const struct allow *a);

/* The most specific entry of @l that contains @ip, or NULL. */
const struct allow *allow_match(const struct allow_list *l, __be32 ip);

/* "10.0.0.9 (mac 52:54:00:00:00:09), 10.0.1.0/24": at most @max entries,
 * then ", and N more"; "nothing" for an empty list. Truncated to @len. */
void allow_format(const struct allow_list *l, size_t max, char *buf,
		  size_t len);

struct domain_info {
	char name[DOMAIN_NAME_LEN];	/* <name> */
	size_t nmacs;
	__u8 macs[DOMAIN_MAX_MACS][MB_ETH_ALEN];
	char shm_name[DOMAIN_NAME_LEN];	/* <shmem name=...> */
	bool doorbell;			/* <model type='ivshmem-doorbell'/> */
	char server_path[256];		/* <server path=...>, doorbell only */
	unsigned long long shm_size;	/* <size unit=...>, bytes; 0 if unset */
	/* <metadata><mbvisor:config xmlns:mbvisor=DOMAIN_MBVISOR_NS> */
	struct allow_list backends;	/* <mbvisor:backend address= mac=> */
	struct allow_list addrs;	/* <mbvisor:address address=> */
};

/*
 * Parses a domain's XML. @shm_name selects the <shmem> device when the
 * domain has several (NULL: the only one). Returns 0, or -1 with a sentence
 * in @err.
 */
int domain_parse_xml(const char *xml, size_t len, const char *shm_name,
		     struct domain_info *d, char *err, size_t errlen);

/* Reads the XML of domain @name through libvirt (@uri may be NULL for the
 * default connection) and parses it. */
int domain_from_libvirt(const char *uri, const char *name,
			const char *shm_name, struct domain_info *d,
			char *err, size_t errlen);

#endif /* _MBHOSTD_DOMAIN_H */
