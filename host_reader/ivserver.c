// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * ivserver.c - the ivshmem server protocol, server side, for mbhostd.
 *
 * Every message is one little-endian int64, possibly with one file
 * descriptor (SCM_RIGHTS). To a new client, in order:
 *   1. the protocol version (0);
 *   2. its peer ID;
 *   3. -1 with the shared memory's fd;
 *   4. for every other peer (the host first): that peer's ID, once per
 *      vector, each with the eventfd that rings the peer on that vector;
 *   5. its own ID, once per vector, with the eventfds it is rung on.
 * The other clients then get the new peer's ID once per vector with its
 * eventfds, and, when it leaves, its ID without a descriptor.
 *
 * A client never sends anything: data or EOF from it ends its connection.
 * Sends never block (MSG_DONTWAIT): a client that does not read is dropped.
 *
 * Admission (audit A4): the listener accepts at once, so that the backlog
 * never fills, and reads the client's SO_PEERCRED. A uid other than root
 * and QEMU's is closed. A VM has one QEMU, which makes one connection: with
 * a peer connected, a newcomer is refused, unless the peer is gone (EOF
 * not yet seen) or has not read all of its handshake (SIOCOUTQ: bytes we
 * sent that it has not read). QEMU reads the handshake while its device
 * starts; a client that never reads is a squatter, and the newcomer takes
 * its place. What remains open: a process running as QEMU's user that
 * connects first and reads its handshake keeps the place until it hangs
 * up; such a process can open QEMU's memory anyway.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <endian.h>
#include <linux/sockios.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include "ivserver.h"

static int send_msg(int fd, int64_t value, int passfd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	int64_t le = (int64_t)htole64((uint64_t)value);
	struct iovec iov = { &le, sizeof(le) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *c;
	ssize_t n;

	if (passfd >= 0) {
		memset(&ctl, 0, sizeof(ctl));
		msg.msg_control = ctl.buf;
		msg.msg_controllen = sizeof(ctl.buf);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &passfd, sizeof(int));
	}
	do {
		n = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
	} while (n < 0 && errno == EINTR);
	return n == (ssize_t)sizeof(le) ? 0 : -1;
}

/* The ID once per vector, each with its eventfd. */
static int send_peer(int fd, uint16_t id, const int *evfd,
		     unsigned int vectors)
{
	unsigned int v;

	for (v = 0; v < vectors; v++)
		if (send_msg(fd, id, evfd[v]))
			return -1;
	return 0;
}

static void close_evfds(int *evfd, unsigned int n)
{
	unsigned int v;

	for (v = 0; v < n; v++) {
		if (evfd[v] >= 0)
			close(evfd[v]);
		evfd[v] = -1;
	}
}

int ivserver_open(struct ivserver *s, const char *path, int shm_fd,
		  unsigned int vectors, mode_t mode, gid_t gid, uid_t peer_uid,
		  char *err, size_t errlen)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct stat st;
	unsigned int v, i;

	memset(s, 0, sizeof(*s));
	s->listen_fd = -1;
	s->shm_fd = shm_fd;
	s->next_id = 1;
	s->max_peers = 1;		/* QEMU's one connection */
	s->peer_uid = peer_uid;
	for (v = 0; v < IVSERVER_MAX_VECTORS; v++)
		s->host_evfd[v] = -1;
	for (i = 0; i < IVSERVER_MAX_PEERS; i++)
		s->peers[i].fd = -1;
	if (!vectors || vectors > IVSERVER_MAX_VECTORS) {
		snprintf(err, errlen, "vectors must be 1 to %d, not %u",
			 IVSERVER_MAX_VECTORS, vectors);
		return -1;
	}
	s->vectors = vectors;
	if (strlen(path) >= sizeof(sun.sun_path) ||
	    strlen(path) >= sizeof(s->path)) {
		snprintf(err, errlen, "socket path too long: `%s'", path);
		return -1;
	}
	strcpy(sun.sun_path, path);
	strcpy(s->path, path);

	for (v = 0; v < vectors; v++) {
		s->host_evfd[v] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (s->host_evfd[v] < 0) {
			snprintf(err, errlen, "eventfd: %s", strerror(errno));
			goto fail;
		}
	}
	s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC |
			      SOCK_NONBLOCK, 0);
	if (s->listen_fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		goto fail;
	}
	/* Replace a socket left by an earlier run, never another file. */
	if (!lstat(path, &st)) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen,
				 "`%s' exists and is not a socket", path);
			goto fail;
		}
		unlink(path);
	}
	if (bind(s->listen_fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		snprintf(err, errlen, "Unable to listen on `%s': %s", path,
			 strerror(errno));
		goto fail;
	}
	/*
	 * The group first, then the mode: until chmod() the socket has the
	 * umask's permissions, which let no one else connect (022 leaves no
	 * write bit to group and others).
	 */
	if ((gid != (gid_t)-1 && chown(path, (uid_t)-1, gid) < 0) ||
	    chmod(path, mode) < 0) {
		snprintf(err, errlen, "Unable to set group %ld and mode %04o on `%s': %s",
			 gid == (gid_t)-1 ? -1L : (long)gid, (unsigned int)mode,
			 path, strerror(errno));
		unlink(path);
		goto fail;
	}
	if (listen(s->listen_fd, 8) < 0) {
		snprintf(err, errlen, "Unable to listen on `%s': %s", path,
			 strerror(errno));
		unlink(path);
		goto fail;
	}
	return 0;
fail:
	ivserver_close(s);
	return -1;
}

void ivserver_close(struct ivserver *s)
{
	unsigned int i;

	for (i = 0; i < IVSERVER_MAX_PEERS; i++)
		if (s->peers[i].fd >= 0)
			ivserver_drop(s, (int)i);
	close_evfds(s->host_evfd, IVSERVER_MAX_VECTORS);
	if (s->listen_fd >= 0) {
		close(s->listen_fd);
		unlink(s->path);
	}
	s->listen_fd = -1;
}

static bool id_used(const struct ivserver *s, uint16_t id)
{
	unsigned int i;

	if (id == IVSERVER_HOST_ID)
		return true;
	for (i = 0; i < IVSERVER_MAX_PEERS; i++)
		if (s->peers[i].fd >= 0 && s->peers[i].id == id)
			return true;
	return false;
}

/* Whether peer @p hung up (its EOF may still wait in epoll's queue). */
static bool peer_gone(const struct ivpeer *p)
{
	char c;

	return recv(p->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

/* Whether peer @p left bytes we sent it unread: not (yet) a QEMU. */
static bool peer_unread(const struct ivpeer *p)
{
	int n = 0;

	return ioctl(p->fd, SIOCOUTQ, &n) || n > 0;
}

/* Makes room for one more peer if the limit allows: -1 if it does not. */
static int make_room(struct ivserver *s, uint16_t *replaced)
{
	unsigned int i;

	if (s->npeers < s->max_peers)
		return 0;
	for (i = 0; i < IVSERVER_MAX_PEERS; i++) {
		struct ivpeer *o = &s->peers[i];

		if (o->fd < 0 || (!peer_gone(o) && !peer_unread(o)))
			continue;
		*replaced = o->id;
		ivserver_drop(s, (int)i);
		if (s->npeers < s->max_peers)
			return 0;
	}
	return -1;
}

int ivserver_accept(struct ivserver *s, uint16_t *replaced, char *err,
		    size_t errlen)
{
	uint16_t gone = IVSERVER_HOST_ID;
	struct ivpeer *p = NULL;
	struct ucred cred;
	socklen_t len = sizeof(cred);
	unsigned int i, v;
	int fd, idx = -1;

	*replaced = IVSERVER_HOST_ID;
	fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return -2;
		snprintf(err, errlen, "accept: %s", strerror(errno));
		return -1;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) ||
	    len != sizeof(cred)) {
		snprintf(err, errlen, "refused a client: SO_PEERCRED: %s",
			 strerror(errno));
		close(fd);
		return -1;
	}
	if (cred.uid != 0 && (s->peer_uid == IVSERVER_ROOT_ONLY ||
			      cred.uid != s->peer_uid)) {
		if (s->peer_uid == IVSERVER_ROOT_ONLY)
			snprintf(err, errlen,
				 "refused a client with uid %u (pid %d): only root may connect (QEMU's user: --qemu-user)",
				 (unsigned int)cred.uid, (int)cred.pid);
		else
			snprintf(err, errlen,
				 "refused a client with uid %u (pid %d): only root and QEMU's user, uid %u, may connect",
				 (unsigned int)cred.uid, (int)cred.pid,
				 (unsigned int)s->peer_uid);
		close(fd);
		return -1;
	}
	if (make_room(s, &gone)) {
		snprintf(err, errlen,
			 "refused a client with uid %u (pid %d): a peer is connected, and a VM has one QEMU",
			 (unsigned int)cred.uid, (int)cred.pid);
		close(fd);
		return -1;
	}
	for (i = 0; i < IVSERVER_MAX_PEERS; i++) {
		if (s->peers[i].fd < 0) {
			p = &s->peers[i];
			idx = (int)i;
			break;
		}
	}
	if (!p) {
		snprintf(err, errlen, "refused a client: %d peers already",
			 IVSERVER_MAX_PEERS);
		close(fd);
		return -1;
	}
	/* IDs are not reused at once, so that a late ring of a peer that left
	 * does not reach its successor; 16 bits wrap, skipping IDs in use. */
	while (id_used(s, s->next_id))
		s->next_id++;
	p->id = s->next_id++;
	for (v = 0; v < IVSERVER_MAX_VECTORS; v++)
		p->evfd[v] = -1;
	for (v = 0; v < s->vectors; v++) {
		p->evfd[v] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (p->evfd[v] < 0) {
			snprintf(err, errlen, "eventfd: %s", strerror(errno));
			goto fail;
		}
	}

	if (send_msg(fd, IVSERVER_PROTOCOL_VERSION, -1) ||
	    send_msg(fd, p->id, -1) ||
	    send_msg(fd, -1, s->shm_fd) ||
	    send_peer(fd, IVSERVER_HOST_ID, s->host_evfd, s->vectors))
		goto fail_send;
	for (i = 0; i < IVSERVER_MAX_PEERS; i++) {
		struct ivpeer *o = &s->peers[i];

		if (o == p || o->fd < 0)
			continue;
		if (send_peer(fd, o->id, o->evfd, s->vectors))
			goto fail_send;
	}
	if (send_peer(fd, p->id, p->evfd, s->vectors))
		goto fail_send;
	p->fd = fd;
	s->npeers++;
	*replaced = gone;

	/* The others learn of the newcomer; one that cannot is dropped. */
	for (i = 0; i < IVSERVER_MAX_PEERS; i++) {
		struct ivpeer *o = &s->peers[i];

		if (o == p || o->fd < 0)
			continue;
		if (send_peer(o->fd, p->id, p->evfd, s->vectors))
			ivserver_drop(s, (int)i);
	}
	return idx;

fail_send:
	snprintf(err, errlen, "client went away during the handshake: %s",
		 strerror(errno));
fail:
	if (gone != IVSERVER_HOST_ID) {
		size_t n = strlen(err);

		snprintf(err + n, errlen - n,
			 " (peer %u, which had not read its handshake, was dropped for it)",
			 gone);
	}
	close_evfds(p->evfd, IVSERVER_MAX_VECTORS);
	p->fd = -1;
	close(fd);
	return -1;
}

void ivserver_drop(struct ivserver *s, int idx)
{
	struct ivpeer *p = &s->peers[idx];
	unsigned int i;

	if (p->fd < 0)
		return;
	close(p->fd);
	p->fd = -1;
	close_evfds(p->evfd, IVSERVER_MAX_VECTORS);
	s->npeers--;
	for (i = 0; i < IVSERVER_MAX_PEERS; i++) {
		struct ivpeer *o = &s->peers[i];

		if (o->fd >= 0 && send_msg(o->fd, p->id, -1))
			ivserver_drop(s, (int)i);
	}
}

void ivserver_ring_all(struct ivserver *s, unsigned int vector)
{
	uint64_t one = 1;
	unsigned int i;

	if (vector >= s->vectors)
		return;
	for (i = 0; i < IVSERVER_MAX_PEERS; i++) {
		struct ivpeer *p = &s->peers[i];

		/* The counter saturates rather than block: a guest that does
		 * not read still gets its interrupt. */
		if (p->fd >= 0 && write(p->evfd[vector], &one, sizeof(one)) < 0)
			continue;
	}
}

uint64_t ivserver_drain(struct ivserver *s, unsigned int vector)
{
	uint64_t n;

	if (vector >= s->vectors || s->host_evfd[vector] < 0)
		return 0;
	return read(s->host_evfd[vector], &n, sizeof(n)) == sizeof(n) ? n : 0;
}
