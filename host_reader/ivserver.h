/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * The ivshmem server protocol (QEMU docs/specs/ivshmem-spec.rst) as mbhostd
 * serves it for one VM: QEMU's ivshmem-doorbell device connects to a UNIX
 * socket and receives the protocol version, its peer ID, the shared memory
 * file descriptor, and eventfds. mbhostd is the server and also a peer,
 * peer 0: guests ring it on vector 0 and it rings them on vector 0.
 */
#ifndef _MBHOSTD_IVSERVER_H
#define _MBHOSTD_IVSERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define IVSERVER_PROTOCOL_VERSION	0
#define IVSERVER_MAX_VECTORS		8
#define IVSERVER_MAX_PEERS		8
#define IVSERVER_HOST_ID		0

struct ivpeer {
	int fd;				/* -1: free */
	uint16_t id;
	int evfd[IVSERVER_MAX_VECTORS];	/* ring the peer on vector v */
};

struct ivserver {
	int listen_fd;
	char path[108];
	int shm_fd;
	unsigned int vectors;
	int host_evfd[IVSERVER_MAX_VECTORS];	/* peers ring the host here */
	struct ivpeer peers[IVSERVER_MAX_PEERS];
	unsigned int npeers;
	uint16_t next_id;
};

/* Binds and listens on @path (a stale socket file is replaced) and creates
 * the host's eventfds. Returns 0 or -1 with @err set. */
/*
 * Listens on @path with permissions @mode and, unless @gid is (gid_t)-1,
 * group @gid: QEMU connects as the user libvirt runs it as, and connect()
 * needs write permission on the socket.
 */
int ivserver_open(struct ivserver *s, const char *path, int shm_fd,
		  unsigned int vectors, mode_t mode, gid_t gid, char *err,
		  size_t errlen);
void ivserver_close(struct ivserver *s);

/* Accepts one client and runs the connect sequence. Returns the new peer's
 * index, -1 on failure (@err set; nothing kept), -2 if there was nothing
 * to accept. */
int ivserver_accept(struct ivserver *s, char *err, size_t errlen);

/* Drops peer @idx and tells the others. */
void ivserver_drop(struct ivserver *s, int idx);

/* Rings vector @vector of every connected peer. */
void ivserver_ring_all(struct ivserver *s, unsigned int vector);

/* Drains the host's eventfd of @vector; true if a peer had rung it. */
bool ivserver_drain(struct ivserver *s, unsigned int vector);

#endif /* _MBHOSTD_IVSERVER_H */
