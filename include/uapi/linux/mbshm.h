/* SPDX-License-Identifier: (GPL-2.0 WITH Linux-syscall-note) OR MIT */
/*
 * mbshm: character devices for QEMU's ivshmem PCI device (1af4:1110,
 * revision 1), as seen from inside the guest. Driver: guest_driver/mbshm.c;
 * reference: docs/mbshm.md and docs/man/mbshm.4.
 *
 * One character device per ivshmem device, /dev/mbshm0, /dev/mbshm1, ...
 * (the number is the lowest one free when the device is probed). The
 * operations on an open file:
 *
 * mmap(2)
 *   MAP_SHARED only (MAP_PRIVATE is refused with EINVAL). Offset 0 is the
 *   start of the shared memory (PCI BAR2); offset plus length must stay
 *   inside it (EINVAL otherwise). The memory is mapped write-back cached:
 *   it is ordinary RAM of the host, so the usual C11 atomics and barriers
 *   order accesses between this guest, the host and other guests. After
 *   the device is unplugged, every access to the mapping raises SIGBUS.
 *
 * read(2)
 *   Interrupt counter, like UIO and eventfd: the buffer must hold at least
 *   8 bytes; read() stores one __u64, the number of MSI-X interrupts that
 *   the device has received since it was probed on the vectors this file
 *   watches (all of them unless MBSHM_IOC_WATCH_VECTORS said otherwise),
 *   and returns 8. It blocks until that number differs from the one this
 *   file last returned (or, for the first read, from the one at open);
 *   with O_NONBLOCK it fails with EAGAIN instead. A device without
 *   interrupts (ivshmem-plain) fails read() with EOPNOTSUPP. The race-free
 *   loop is: drain the shared memory, read(), drain, read(), ...
 *
 * poll(2), select(2), epoll(7)
 *   POLLIN | POLLRDNORM when read() would not block. POLLHUP | POLLERR once
 *   the device is gone (hot unplug, driver unbound).
 *
 * After the device is gone every call but close(2) fails with ENODEV
 * (mmap, read, ioctl) or SIGBUS (access to an existing mapping). The file
 * stays valid until closed; the module cannot be unloaded while a file is
 * open.
 *
 * ioctl(2), all with MBSHM_IOC_MAGIC:
 *
 * MBSHM_IOC_GET_IVPOSITION  (__u32, read)
 *   The IVPosition register: this guest's peer ID on an ivshmem-doorbell
 *   device (0..65535, handed out by the ivshmem server), 0 on
 *   ivshmem-plain.
 *
 * MBSHM_IOC_RING_DOORBELL  (struct mbshm_doorbell, write)
 *   Interrupt vector @vector of peer @peer (the Doorbell register). Any
 *   peer ID is accepted, this guest's own included; the device silently
 *   drops a doorbell for a peer that is not connected or has fewer vectors,
 *   and cannot report that. @vector must be below the number of MSI-X
 *   vectors of this device (struct mbshm_info.vectors; the ivshmem server
 *   gives every peer the same number) and below 256 (QEMU keeps only the
 *   low 8 bits of it): EINVAL otherwise. ivshmem-plain has no doorbell:
 *   EOPNOTSUPP.
 *
 * MBSHM_IOC_GET_INFO  (struct mbshm_info, read)
 *   The device's properties, see struct mbshm_info.
 *
 * MBSHM_IOC_WATCH_VECTORS  (__u64, write)
 *   Which interrupt vectors this file's read() and poll() count: bit N is
 *   vector N. Only vectors below struct mbshm_info.irq_vectors exist; a
 *   mask that is 0 or names another vector is refused with EINVAL. Also
 *   starts over: the next read() blocks until one of these vectors fires.
 *   EOPNOTSUPP on a device without interrupts.
 *
 * The same numbers are in sysfs, /sys/class/mbshm/mbshmN/: ivposition,
 * shm_size, vectors, irq_vectors, doorbell (0 or 1), interrupts (one count
 * per vector, space separated); "device" links to the PCI device.
 */
#ifndef _UAPI_LINUX_MBSHM_H
#define _UAPI_LINUX_MBSHM_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define MBSHM_IOC_MAGIC 'M'

/**
 * struct mbshm_doorbell - argument of MBSHM_IOC_RING_DOORBELL
 * @peer: ID of the peer to interrupt (its IVPosition)
 * @vector: interrupt vector of that peer
 */
struct mbshm_doorbell {
	__u16 peer;
	__u16 vector;
};

/* The device has a doorbell and MSI-X interrupts (ivshmem-doorbell). */
#define MBSHM_INFO_DOORBELL	(1U << 0)

/**
 * struct mbshm_info - argument of MBSHM_IOC_GET_INFO
 * @shm_size: bytes of shared memory (BAR2), the most that mmap() maps
 * @flags: MBSHM_INFO_* bits
 * @ivposition: the IVPosition register, as MBSHM_IOC_GET_IVPOSITION
 * @vectors: MSI-X vectors of the device (0 on ivshmem-plain); a doorbell
 *	     may name vectors 0..@vectors - 1 (and at most 255)
 * @irq_vectors: vectors whose interrupts this driver counts: the first
 *		 @irq_vectors of them (fewer than @vectors when the module
 *		 parameter max_vectors or the kernel allowed fewer)
 * @reserved: 0
 */
struct mbshm_info {
	__u64 shm_size;
	__u32 flags;
	__u32 ivposition;
	__u16 vectors;
	__u16 irq_vectors;
	__u32 reserved;
};

#define MBSHM_IOC_GET_IVPOSITION _IOR('M', 1, __u32)
#define MBSHM_IOC_RING_DOORBELL _IOW('M', 2, struct mbshm_doorbell)
#define MBSHM_IOC_GET_INFO _IOR('M', 3, struct mbshm_info)
#define MBSHM_IOC_WATCH_VECTORS _IOW('M', 4, __u64)

#endif /* _UAPI_LINUX_MBSHM_H */
