/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * mbshm: the guest's character device for the ivshmem PCI device
 * (1af4:1110) that carries the mbvisor command channel.
 *
 * /dev/mbshm0..N, one per device:
 *   mmap     offset 0 maps BAR2, the shared memory
 *   ioctl    MBSHM_IOC_GET_IVPOSITION: this device's peer ID (IVPosition)
 *   ioctl    MBSHM_IOC_RING_DOORBELL: interrupt vector @vector of @peer
 *   read     8 bytes: the number of interrupts received so far (__u64)
 *   poll     readable when interrupts arrived since the last read
 *
 * This is the channel programs' copy of the interface; the guest driver
 * (guest_driver/, branch shm) owns the header and the lead reconciles them.
 */
#ifndef _UAPI_LINUX_MBSHM_H
#define _UAPI_LINUX_MBSHM_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define MBSHM_IOC_MAGIC 'M'

struct mbshm_doorbell {
	__u16 peer;
	__u16 vector;
};

#define MBSHM_IOC_GET_IVPOSITION _IOR('M', 1, __u32)
#define MBSHM_IOC_RING_DOORBELL _IOW('M', 2, struct mbshm_doorbell)

#endif /* _UAPI_LINUX_MBSHM_H */
