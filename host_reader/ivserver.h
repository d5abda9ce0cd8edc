/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * The ivshmem server protocol (QEMU docs/specs/ivshmem-spec.rst) as mbhostd
 * serves it for one VM: QEMU's ivshmem-doorbell device connects to a UNIX
 * socket and receives the protocol version, its peer ID, the shared memory
 * file descriptor, and eventfds. mbhostd is the server and also a peer,
 * peer 0: guests ring it on vector 0 and it rings them on vector 0.
 *
 * Who may be a peer: a client whose SO_PEERCRED uid is root or the one
 * user given to ivserver_open() (QEMU's), and one client at a time, as a
 * VM has one QEMU. A client that has not read its whole handshake yet
 * (QEMU reads it at once, while it starts) holds its place only until
 * another acceptable client comes: idle connections cannot lock QEMU out.
 */
#ifndef _MBHOSTD_IVSERVER_H
#define _MBHOSTD_IVSERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define IVSERVER_ROOT_ONLY		((uid_t)-1)	/* peer_uid: none */

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
	unsigned int npeers, max_peers;
	uid_t peer_uid;			/* besides root; -1: root only */
	uint16_t next_id;
};

/*
 * Binds and listens on @path (a stale socket file is replaced) and creates
 * the host's eventfds. Returns 0 or -1 with @err set.
 *
 * The socket gets permissions @mode and, unless @gid is (gid_t)-1, group
 * @gid: QEMU connects as the user libvirt runs it as, and connect() needs
 * write permission on the socket. Of those who can connect, only root and
 * @peer_uid (unless IVSERVER_ROOT_ONLY: root only) are served.
 */
int ivserver_open(struct ivserver *s, const char *path, int shm_fd,
		  unsigned int vectors, mode_t mode, gid_t gid, uid_t peer_uid,
		  char *err, size_t errlen);
void ivserver_close(struct ivserver *s);

/*
 * Accepts one client, checks who it is and runs the connect sequence.
 * Returns the new peer's index, -1 on failure or refusal (@err set;
 * nothing kept), -2 if there was nothing to accept. When the new peer took
 * the place of one that had not read its handshake, *@replaced is that
 * peer's ID (else 0, the host's); a newcomer whose handshake fails
 * reports it in @err instead. The caller stops watching a peer's fd
 * before ivserver_drop(); one dropped here was closed, which ends epoll's
 * interest in it (the fd is ours alone).
 */
int ivserver_accept(struct ivserver *s, uint16_t *replaced, char *err,
		    size_t errlen);

/* Drops peer @idx and tells the others. */
void ivserver_drop(struct ivserver *s, int idx);

/* Rings vector @vector of every connected peer. */
void ivserver_ring_all(struct ivserver *s, unsigned int vector);

/* Drains the host's eventfd of @vector: how often peers rang it since. */
uint64_t ivserver_drain(struct ivserver *s, unsigned int vector);

#endif /* _MBHOSTD_IVSERVER_H */
