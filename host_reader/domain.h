/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * What mbhostd needs to know of a libvirt domain: the MAC addresses of its
 * interfaces (the middleboxes it may speak for) and its <shmem> device (the
 * channel). Read from libvirt (virDomainGetXMLDesc) or from an XML file.
 */
#ifndef _MBHOSTD_DOMAIN_H
#define _MBHOSTD_DOMAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>
#include <mbvisor/rule.h>

#define DOMAIN_MAX_MACS		64
#define DOMAIN_NAME_LEN		128

struct domain_info {
	char name[DOMAIN_NAME_LEN];	/* <name> */
	size_t nmacs;
	__u8 macs[DOMAIN_MAX_MACS][MB_ETH_ALEN];
	char shm_name[DOMAIN_NAME_LEN];	/* <shmem name=...> */
	bool doorbell;			/* <model type='ivshmem-doorbell'/> */
	char server_path[256];		/* <server path=...>, doorbell only */
	unsigned long long shm_size;	/* <size unit=...>, bytes; 0 if unset */
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
