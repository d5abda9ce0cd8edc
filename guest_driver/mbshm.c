// SPDX-License-Identifier: GPL-2.0
/*
 * mbshm: a character device for each QEMU ivshmem PCI device (1af4:1110,
 * revision 1: ivshmem-plain and ivshmem-doorbell), for the middlebox guest.
 *
 * The device (QEMU docs/specs/ivshmem-spec.rst):
 *   BAR0  256 bytes of registers: IntrMask, IntrStatus (both reserved in
 *         revision 1), IVPosition (this peer's ID), Doorbell (write
 *         peer << 16 | vector to interrupt another peer);
 *   BAR1  MSI-X table and PBA, ivshmem-doorbell only;
 *   BAR2  the shared memory.
 * The user interface (mmap of BAR2, read/poll of an interrupt counter,
 * ioctls) is documented in include/uapi/linux/mbshm.h and docs/mbshm.md.
 *
 * DOC: Lifetime
 *
 * struct mbshm_dev is reference counted by its embedded struct device: the
 * PCI driver holds one reference from probe to remove, every open file one
 * more (taken in open, dropped in release), and the cdev one while a file
 * is open (cdev_device_add() makes the device the parent of the cdev, and
 * the VFS drops the cdev only after ->release). The last put frees it in
 * mbshm_dev_release(). Open files therefore outlive the PCI device safely;
 * they keep the module loaded too (fops.owner).
 *
 * DOC: Locking
 *
 * mdev->lock (rw_semaphore) guards mdev->dead and, through it, the
 * hardware: whoever touches BAR0 or inserts a BAR2 page into a user mapping
 * holds it for reading and checks !dead first. remove() sets dead under the
 * write lock, so once it has the lock no access is in flight and none will
 * start; only then does it zap the user mappings and unmap the BARs. Paths
 * that only look at dead (read, poll, open) use READ_ONCE() and may race
 * with remove harmlessly: they then see ENODEV one call later.
 *
 * Every mapping lives in one address space per device (mdev->inode, an
 * inode of a small internal pseudo file system, which open() installs as
 * file->f_mapping, as DRM and VFIO do), so unmap_mapping_range() finds all
 * of them whichever device node or fork they came from. Pages are inserted
 * by the fault handler, never in ->mmap: a PTE set up in ->mmap would exist
 * before the VMA is linked into that address space, where a concurrent
 * remove could not find it.
 *
 * Interrupt counters are atomic64_t, incremented in the hard IRQ handler,
 * which then wakes mdev->wait.
 */
#include <linux/cdev.h>
#include <linux/device.h>
#include <linux/fs.h>
#include <linux/idr.h>
#include <linux/interrupt.h>
#include <linux/io.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mount.h>
#include <linux/pci.h>
#include <linux/poll.h>
#include <linux/pseudo_fs.h>
#include <linux/rwsem.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/version.h>
#include <linux/wait.h>
#include <linux/mbshm.h>

#define MBSHM_MAX_DEVICES	256
/* Bits in the MBSHM_IOC_WATCH_VECTORS mask. */
#define MBSHM_MAX_VECTORS	64
/* The Doorbell register has 16 bits for the vector; QEMU keeps 8. */
#define MBSHM_MAX_DOORBELL_VECTOR 255
#define MBSHM_FS_MAGIC		0x6d627368	/* "mbsh" */

/* BAR0 registers */
#define IVSHMEM_REG_IVPOSITION	0x08
#define IVSHMEM_REG_DOORBELL	0x0c
#define IVSHMEM_REG_SIZE	0x10

static unsigned int max_vectors = 16;
module_param(max_vectors, uint, 0444);
MODULE_PARM_DESC(max_vectors,
		 "MSI-X vectors counted per device, the first ones, 1-64 (16)");

struct mbshm_dev;

struct mbshm_vector {
	struct mbshm_dev *mdev;
	atomic64_t count;
	char name[32];
};

struct mbshm_dev {
	struct device dev;		/* the reference count, see Lifetime */
	struct cdev cdev;
	struct pci_dev *pdev;		/* referenced until release */
	struct inode *inode;		/* address space of all mappings */
	int minor;

	struct rw_semaphore lock;	/* see Locking */
	bool dead;
	void __iomem *regs;		/* BAR0 */
	void *shm;			/* BAR2, write-back; see mbshm_map_shm() */
	phys_addr_t shm_start;
	resource_size_t shm_size;
	unsigned long shm_pages;	/* whole pages of BAR2: what mmap maps */

	bool doorbell;			/* has MSI-X, hence is ivshmem-doorbell */
	u16 vectors;			/* MSI-X table size */
	u16 nirq;			/* vectors with a handler: vec[0..nirq) */
	wait_queue_head_t wait;
	struct mbshm_vector vec[];
};

/* One per open file. */
struct mbshm_file {
	struct mbshm_dev *mdev;
	struct mutex lock;		/* serializes read and WATCH_VECTORS */
	u64 watch;			/* vectors counted, bit N = vector N */
	u64 seen;			/* the count read() returned last */
};

static dev_t mbshm_devt;
static DEFINE_IDA(mbshm_ida);

static u64 mbshm_count(struct mbshm_dev *mdev, u64 mask)
{
	u64 sum = 0;
	unsigned int i;

	for (i = 0; i < mdev->nirq; i++)
		if (mask & BIT_ULL(i))
			sum += atomic64_read(&mdev->vec[i].count);
	return sum;
}

static u64 mbshm_all_vectors(struct mbshm_dev *mdev)
{
	return mdev->nirq ? GENMASK_ULL(mdev->nirq - 1, 0) : 0;
}

/*
 * The pseudo file system that holds one inode per device, whose address
 * space collects the device's user mappings. It is mounted (internally,
 * never in the namespace) while any device exists. No .owner: a mount
 * would otherwise pin the module as long as a device is bound, and every
 * user of the mount is this module's own code, which drops it before the
 * module can go (see Lifetime).
 */
static struct vfsmount *mbshm_mnt;
static int mbshm_mnt_count;

static int mbshm_init_fs_context(struct fs_context *fc)
{
	return init_pseudo(fc, MBSHM_FS_MAGIC) ? 0 : -ENOMEM;
}

static struct file_system_type mbshm_fs_type = {
	.name = "mbshm",
	.init_fs_context = mbshm_init_fs_context,
	.kill_sb = kill_anon_super,
};

static struct inode *mbshm_inode_new(void)
{
	struct inode *inode;
	int ret;

	ret = simple_pin_fs(&mbshm_fs_type, &mbshm_mnt, &mbshm_mnt_count);
	if (ret)
		return ERR_PTR(ret);
	inode = alloc_anon_inode(mbshm_mnt->mnt_sb);
	if (IS_ERR(inode))
		simple_release_fs(&mbshm_mnt, &mbshm_mnt_count);
	return inode;
}

static void mbshm_inode_free(struct inode *inode)
{
	iput(inode);
	simple_release_fs(&mbshm_mnt, &mbshm_mnt_count);
}

/* ---- the character device ---- */

static int mbshm_open(struct inode *inode, struct file *file)
{
	struct mbshm_dev *mdev = container_of(inode->i_cdev, struct mbshm_dev,
					      cdev);
	struct mbshm_file *f;

	/*
	 * An inode that found this cdev before remove keeps it in i_cdev
	 * while any file holds the cdev: refuse new opens through it.
	 */
	if (READ_ONCE(mdev->dead))
		return -ENODEV;
	f = kzalloc(sizeof(*f), GFP_KERNEL);
	if (!f)
		return -ENOMEM;
	get_device(&mdev->dev);
	f->mdev = mdev;
	mutex_init(&f->lock);
	f->watch = mbshm_all_vectors(mdev);
	f->seen = mbshm_count(mdev, f->watch);
	file->private_data = f;
	file->f_mapping = mdev->inode->i_mapping;
	return stream_open(inode, file);
}

static int mbshm_release(struct inode *inode, struct file *file)
{
	struct mbshm_file *f = file->private_data;

	put_device(&f->mdev->dev);
	mutex_destroy(&f->lock);
	kfree(f);
	return 0;
}

static bool mbshm_readable(struct mbshm_file *f)
{
	return mbshm_count(f->mdev, READ_ONCE(f->watch)) != READ_ONCE(f->seen);
}

static ssize_t mbshm_read(struct file *file, char __user *buf, size_t len,
			  loff_t *ppos)
{
	struct mbshm_file *f = file->private_data;
	struct mbshm_dev *mdev = f->mdev;
	ssize_t ret;
	u64 now;

	if (len < sizeof(now))
		return -EINVAL;
	if (READ_ONCE(mdev->dead))
		return -ENODEV;
	if (!mdev->nirq)
		return -EOPNOTSUPP;

	for (;;) {
		if (mutex_lock_interruptible(&f->lock))
			return -ERESTARTSYS;
		if (READ_ONCE(mdev->dead)) {
			ret = -ENODEV;
			break;
		}
		now = mbshm_count(mdev, f->watch);
		if (now != f->seen) {
			if (copy_to_user(buf, &now, sizeof(now))) {
				ret = -EFAULT;
				break;
			}
			WRITE_ONCE(f->seen, now);
			ret = sizeof(now);
			break;
		}
		mutex_unlock(&f->lock);

		if (file->f_flags & O_NONBLOCK)
			return -EAGAIN;
		ret = wait_event_interruptible(mdev->wait,
					       READ_ONCE(mdev->dead) ||
					       mbshm_readable(f));
		if (ret)
			return ret;
	}
	mutex_unlock(&f->lock);
	return ret;
}

static __poll_t mbshm_poll(struct file *file, poll_table *wait)
{
	struct mbshm_file *f = file->private_data;
	struct mbshm_dev *mdev = f->mdev;

	poll_wait(file, &mdev->wait, wait);
	if (READ_ONCE(mdev->dead))
		return EPOLLHUP | EPOLLERR;
	if (mdev->nirq && mbshm_readable(f))
		return EPOLLIN | EPOLLRDNORM;
	return 0;
}

static int mbshm_ivposition(struct mbshm_dev *mdev, u32 *pos)
{
	int ret = 0;

	down_read(&mdev->lock);
	if (mdev->dead)
		ret = -ENODEV;
	else
		*pos = ioread32(mdev->regs + IVSHMEM_REG_IVPOSITION);
	up_read(&mdev->lock);
	return ret;
}

static long mbshm_ring_doorbell(struct mbshm_dev *mdev, void __user *uarg)
{
	struct mbshm_doorbell db;
	long ret = 0;

	if (copy_from_user(&db, uarg, sizeof(db)))
		return -EFAULT;
	if (READ_ONCE(mdev->dead))
		return -ENODEV;
	if (!mdev->doorbell)
		return -EOPNOTSUPP;
	/*
	 * Any peer ID can be valid: the device does not say which peers are
	 * connected (it drops doorbells for absent ones). A vector beyond
	 * 255 would ring vector & 0xff in QEMU: refuse it.
	 */
	if (db.vector >= mdev->vectors || db.vector > MBSHM_MAX_DOORBELL_VECTOR)
		return -EINVAL;

	down_read(&mdev->lock);
	if (mdev->dead)
		ret = -ENODEV;
	else
		iowrite32((u32)db.peer << 16 | db.vector,
			  mdev->regs + IVSHMEM_REG_DOORBELL);
	up_read(&mdev->lock);
	return ret;
}

static long mbshm_get_info(struct mbshm_dev *mdev, void __user *uarg)
{
	struct mbshm_info info;
	int ret;

	memset(&info, 0, sizeof(info));
	ret = mbshm_ivposition(mdev, &info.ivposition);
	if (ret)
		return ret;
	info.shm_size = mdev->shm_size;
	info.flags = mdev->doorbell ? MBSHM_INFO_DOORBELL : 0;
	info.vectors = mdev->vectors;
	info.irq_vectors = mdev->nirq;
	return copy_to_user(uarg, &info, sizeof(info)) ? -EFAULT : 0;
}

static long mbshm_watch_vectors(struct mbshm_file *f, u64 __user *uarg)
{
	struct mbshm_dev *mdev = f->mdev;
	u64 mask;

	if (get_user(mask, uarg))
		return -EFAULT;
	if (READ_ONCE(mdev->dead))
		return -ENODEV;
	if (!mdev->nirq)
		return -EOPNOTSUPP;
	if (!mask || (mask & ~mbshm_all_vectors(mdev)))
		return -EINVAL;

	if (mutex_lock_interruptible(&f->lock))
		return -ERESTARTSYS;
	WRITE_ONCE(f->watch, mask);
	WRITE_ONCE(f->seen, mbshm_count(mdev, mask));
	mutex_unlock(&f->lock);
	/* A read() of this file waiting on the old mask looks again. */
	wake_up_interruptible_all(&mdev->wait);
	return 0;
}

static long mbshm_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct mbshm_file *f = file->private_data;
	struct mbshm_dev *mdev = f->mdev;
	void __user *uarg = (void __user *)arg;
	u32 pos;
	int ret;

	switch (cmd) {
	case MBSHM_IOC_GET_IVPOSITION:
		ret = mbshm_ivposition(mdev, &pos);
		if (ret)
			return ret;
		return put_user(pos, (u32 __user *)uarg);
	case MBSHM_IOC_RING_DOORBELL:
		return mbshm_ring_doorbell(mdev, uarg);
	case MBSHM_IOC_GET_INFO:
		return mbshm_get_info(mdev, uarg);
	case MBSHM_IOC_WATCH_VECTORS:
		return mbshm_watch_vectors(f, uarg);
	default:
		return -ENOTTY;
	}
}

static vm_fault_t mbshm_vm_fault(struct vm_fault *vmf)
{
	struct mbshm_dev *mdev = vmf->vma->vm_private_data;
	vm_fault_t ret = VM_FAULT_SIGBUS;

	down_read(&mdev->lock);
	if (!mdev->dead && vmf->pgoff < mdev->shm_pages)
		ret = vmf_insert_pfn(vmf->vma, vmf->address,
				     PHYS_PFN(mdev->shm_start) + vmf->pgoff);
	up_read(&mdev->lock);
	return ret;
}

static const struct vm_operations_struct mbshm_vm_ops = {
	.fault = mbshm_vm_fault,
};

static int mbshm_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct mbshm_file *f = file->private_data;
	struct mbshm_dev *mdev = f->mdev;
	unsigned long pages = vma_pages(vma);

	if (READ_ONCE(mdev->dead))
		return -ENODEV;
	/* A PFN mapping cannot be copied on write: MAP_SHARED only. */
	if (is_cow_mapping(vma->vm_flags))
		return -EINVAL;
	if (vma->vm_pgoff >= mdev->shm_pages ||
	    pages > mdev->shm_pages - vma->vm_pgoff)
		return -EINVAL;

	/*
	 * vm_page_prot stays as it is: cacheable. On x86 with PAT,
	 * vmf_insert_pfn() takes the memory type of the range that
	 * mbshm_map_shm() reserved (write-back), see there.
	 */
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 3, 0)
	vma->vm_flags |= VM_IO | VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP;
#else
	vm_flags_set(vma, VM_IO | VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP);
#endif
	vma->vm_ops = &mbshm_vm_ops;
	vma->vm_private_data = mdev;
	return 0;
}

static const struct file_operations mbshm_fops = {
	.owner = THIS_MODULE,
	.open = mbshm_open,
	.release = mbshm_release,
	.read = mbshm_read,
	.poll = mbshm_poll,
	.unlocked_ioctl = mbshm_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.mmap = mbshm_mmap,
	/* No .llseek: stream_open() makes lseek fail with ESPIPE. */
};

/* ---- sysfs: /sys/class/mbshm/mbshmN/ ---- */

static ssize_t ivposition_show(struct device *dev,
			       struct device_attribute *attr, char *buf)
{
	struct mbshm_dev *mdev = dev_get_drvdata(dev);
	u32 pos;
	int ret;

	ret = mbshm_ivposition(mdev, &pos);
	if (ret)
		return ret;
	return sysfs_emit(buf, "%u\n", pos);
}
static DEVICE_ATTR_RO(ivposition);

static ssize_t shm_size_show(struct device *dev,
			     struct device_attribute *attr, char *buf)
{
	struct mbshm_dev *mdev = dev_get_drvdata(dev);

	return sysfs_emit(buf, "%llu\n", (unsigned long long)mdev->shm_size);
}
static DEVICE_ATTR_RO(shm_size);

static ssize_t vectors_show(struct device *dev, struct device_attribute *attr,
			    char *buf)
{
	struct mbshm_dev *mdev = dev_get_drvdata(dev);

	return sysfs_emit(buf, "%u\n", mdev->vectors);
}
static DEVICE_ATTR_RO(vectors);

static ssize_t irq_vectors_show(struct device *dev,
				struct device_attribute *attr, char *buf)
{
	struct mbshm_dev *mdev = dev_get_drvdata(dev);

	return sysfs_emit(buf, "%u\n", mdev->nirq);
}
static DEVICE_ATTR_RO(irq_vectors);

static ssize_t doorbell_show(struct device *dev, struct device_attribute *attr,
			     char *buf)
{
	struct mbshm_dev *mdev = dev_get_drvdata(dev);

	return sysfs_emit(buf, "%d\n", mdev->doorbell);
}
static DEVICE_ATTR_RO(doorbell);

static ssize_t interrupts_show(struct device *dev,
			       struct device_attribute *attr, char *buf)
{
	struct mbshm_dev *mdev = dev_get_drvdata(dev);
	unsigned int i;
	int n = 0;

	/* At most 64 numbers of at most 20 digits: fits in a page. */
	for (i = 0; i < mdev->nirq; i++)
		n += sysfs_emit_at(buf, n, "%s%lld", i ? " " : "",
				   (long long)atomic64_read(&mdev->vec[i].count));
	n += sysfs_emit_at(buf, n, "\n");
	return n;
}
static DEVICE_ATTR_RO(interrupts);

static struct attribute *mbshm_attrs[] = {
	&dev_attr_ivposition.attr,
	&dev_attr_shm_size.attr,
	&dev_attr_vectors.attr,
	&dev_attr_irq_vectors.attr,
	&dev_attr_doorbell.attr,
	&dev_attr_interrupts.attr,
	NULL
};
ATTRIBUTE_GROUPS(mbshm);

static struct class mbshm_class = {
	.name = "mbshm",
};

/* ---- PCI ---- */

static irqreturn_t mbshm_irq(int irq, void *data)
{
	struct mbshm_vector *v = data;

	atomic64_inc(&v->count);
	wake_up_interruptible_all(&v->mdev->wait);
	return IRQ_HANDLED;
}

static void mbshm_dev_release(struct device *dev)
{
	struct mbshm_dev *mdev = container_of(dev, struct mbshm_dev, dev);

	if (mdev->inode)
		mbshm_inode_free(mdev->inode);
	ida_free(&mbshm_ida, mdev->minor);
	pci_dev_put(mdev->pdev);
	kfree(mdev);
}

/*
 * BAR2 is RAM of the host (a memory-backend-file, or the ivshmem server's
 * shared memory object) that the host, mbhostd and other guests access
 * write-back cached. The guest maps it write-back too: reads are cached,
 * and ordering between the two sides is the ordinary one of cacheable
 * memory, which the ring code's atomics and barriers assume. Uncached
 * would make every access a trap-free but slow bus access, and
 * write-combining would let x86 reorder plain stores (a release store of a
 * ring index would no longer order the data stores before it). Under KVM
 * the host's memory type wins anyway (EPT ignores the guest's PAT unless a
 * device does non-coherent DMA), so write-back is also what the guest gets.
 *
 * The kernel mapping made here is what fixes the type: on x86 it reserves
 * the range as write-back in the PAT memtype tree, and vmf_insert_pfn()
 * gives user mappings the type reserved for their range (uncached-minus
 * when none is). If the firmware's MTRRs make the range uncached, PAT
 * records uncached-minus instead and user mappings follow that.
 */
static int mbshm_map_shm(struct mbshm_dev *mdev)
{
	mdev->shm = memremap(mdev->shm_start, mdev->shm_size, MEMREMAP_WB);
	return mdev->shm ? 0 : -ENOMEM;
}

static int mbshm_setup_irqs(struct mbshm_dev *mdev, unsigned int want)
{
	struct pci_dev *pdev = mdev->pdev;
	int n, i, ret;

	n = pci_alloc_irq_vectors(pdev, 1, want, PCI_IRQ_MSIX);
	if (n < 0) {
		/* The doorbell still rings other peers; reads will fail. */
		pci_warn(pdev, "no MSI-X interrupts (%d): read() and poll() will not see any\n",
			 n);
		return 0;
	}
	for (i = 0; i < n; i++) {
		struct mbshm_vector *v = &mdev->vec[i];

		v->mdev = mdev;
		snprintf(v->name, sizeof(v->name), "mbshm%d-%d", mdev->minor, i);
		ret = request_irq(pci_irq_vector(pdev, i), mbshm_irq, 0,
				  v->name, v);
		if (ret)
			goto err_free;
	}
	mdev->nirq = n;
	return 0;

err_free:
	while (--i >= 0)
		free_irq(pci_irq_vector(pdev, i), &mdev->vec[i]);
	pci_free_irq_vectors(pdev);
	return ret;
}

static void mbshm_free_irqs(struct mbshm_dev *mdev)
{
	unsigned int i;

	for (i = 0; i < mdev->nirq; i++)
		free_irq(pci_irq_vector(mdev->pdev, i), &mdev->vec[i]);
	pci_free_irq_vectors(mdev->pdev);
}

static int mbshm_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct mbshm_dev *mdev;
	unsigned int want;
	int nvec, minor, ret;

	if (pdev->revision != 1) {
		/* Revision 0 (QEMU < 2.6) may have no BAR2 until later. */
		pci_err(pdev, "ivshmem revision %u is not supported (only 1)\n",
			pdev->revision);
		return -ENODEV;
	}
	if (!(pci_resource_flags(pdev, 0) & IORESOURCE_MEM) ||
	    pci_resource_len(pdev, 0) < IVSHMEM_REG_SIZE ||
	    !(pci_resource_flags(pdev, 2) & IORESOURCE_MEM) ||
	    !pci_resource_len(pdev, 2)) {
		pci_err(pdev, "BAR0 or BAR2 missing or too small: not an ivshmem device\n");
		return -ENODEV;
	}

	nvec = pci_msix_vec_count(pdev);
	if (nvec < 0)
		nvec = 0;	/* no MSI-X capability: ivshmem-plain */
	want = min_t(unsigned int, nvec, max_vectors);

	mdev = kzalloc(struct_size(mdev, vec, want), GFP_KERNEL);
	if (!mdev)
		return -ENOMEM;
	minor = ida_alloc_max(&mbshm_ida, MBSHM_MAX_DEVICES - 1, GFP_KERNEL);
	if (minor < 0) {
		kfree(mdev);
		return minor == -ENOSPC ? -EBUSY : minor;
	}
	mdev->minor = minor;
	mdev->pdev = pci_dev_get(pdev);
	init_rwsem(&mdev->lock);
	init_waitqueue_head(&mdev->wait);
	mdev->doorbell = nvec > 0;
	mdev->vectors = nvec;
	mdev->shm_start = pci_resource_start(pdev, 2);
	mdev->shm_size = pci_resource_len(pdev, 2);
	mdev->shm_pages = mdev->shm_size >> PAGE_SHIFT;

	/* From here on, mbshm_dev_release() frees mdev and what it holds. */
	device_initialize(&mdev->dev);
	mdev->dev.class = &mbshm_class;
	mdev->dev.parent = &pdev->dev;
	mdev->dev.devt = MKDEV(MAJOR(mbshm_devt), minor);
	mdev->dev.groups = mbshm_groups;
	mdev->dev.release = mbshm_dev_release;
	dev_set_drvdata(&mdev->dev, mdev);
	ret = dev_set_name(&mdev->dev, "mbshm%d", minor);
	if (ret)
		goto err_put;

	mdev->inode = mbshm_inode_new();
	if (IS_ERR(mdev->inode)) {
		ret = PTR_ERR(mdev->inode);
		mdev->inode = NULL;
		goto err_put;
	}

	ret = pci_enable_device(pdev);
	if (ret)
		goto err_put;
	ret = pci_request_regions(pdev, KBUILD_MODNAME);
	if (ret)
		goto err_disable;
	mdev->regs = pci_iomap(pdev, 0, IVSHMEM_REG_SIZE);
	if (!mdev->regs) {
		ret = -ENOMEM;
		goto err_regions;
	}
	ret = mbshm_map_shm(mdev);
	if (ret)
		goto err_iounmap;
	if (want) {
		/* MSI-X messages are memory writes by the device. */
		pci_set_master(pdev);
		ret = mbshm_setup_irqs(mdev, want);
		if (ret)
			goto err_memunmap;
	}

	pci_set_drvdata(pdev, mdev);
	cdev_init(&mdev->cdev, &mbshm_fops);
	mdev->cdev.owner = THIS_MODULE;
	ret = cdev_device_add(&mdev->cdev, &mdev->dev);
	if (ret)
		goto err_irqs;

	pci_info(pdev, "%s: %llu bytes of shared memory, IVPosition %u, %s, %u of %u MSI-X vectors\n",
		 dev_name(&mdev->dev), (unsigned long long)mdev->shm_size,
		 ioread32(mdev->regs + IVSHMEM_REG_IVPOSITION),
		 mdev->doorbell ? "doorbell" : "no doorbell (ivshmem-plain)",
		 mdev->nirq, mdev->vectors);
	return 0;

err_irqs:
	mbshm_free_irqs(mdev);
	pci_clear_master(pdev);
err_memunmap:
	memunmap(mdev->shm);
err_iounmap:
	pci_iounmap(pdev, mdev->regs);
err_regions:
	pci_release_regions(pdev);
err_disable:
	pci_disable_device(pdev);
err_put:
	put_device(&mdev->dev);
	return ret;
}

static void mbshm_remove(struct pci_dev *pdev)
{
	struct mbshm_dev *mdev = pci_get_drvdata(pdev);

	/* No new opens through devtmpfs; the sysfs attributes go. */
	cdev_device_del(&mdev->cdev, &mdev->dev);

	down_write(&mdev->lock);
	WRITE_ONCE(mdev->dead, true);
	up_write(&mdev->lock);

	/* Blocked readers and pollers return ENODEV / POLLHUP. */
	wake_up_interruptible_all(&mdev->wait);
	/* Any later access to a mapping faults, and gets SIGBUS. */
	unmap_mapping_range(mdev->inode->i_mapping, 0, 0, 1);

	mbshm_free_irqs(mdev);
	pci_clear_master(pdev);
	memunmap(mdev->shm);
	pci_iounmap(pdev, mdev->regs);
	pci_release_regions(pdev);
	pci_disable_device(pdev);
	put_device(&mdev->dev);
}

static const struct pci_device_id mbshm_ids[] = {
	{ PCI_DEVICE(PCI_VENDOR_ID_REDHAT_QUMRANET, 0x1110) },
	{ }
};
MODULE_DEVICE_TABLE(pci, mbshm_ids);

static struct pci_driver mbshm_driver = {
	.name = KBUILD_MODNAME,
	.id_table = mbshm_ids,
	.probe = mbshm_probe,
	.remove = mbshm_remove,
};

static int __init mbshm_init(void)
{
	int ret;

	if (!max_vectors || max_vectors > MBSHM_MAX_VECTORS) {
		pr_err("max_vectors=%u: must be 1 to %u\n", max_vectors,
		       MBSHM_MAX_VECTORS);
		return -EINVAL;
	}
	ret = alloc_chrdev_region(&mbshm_devt, 0, MBSHM_MAX_DEVICES,
				  KBUILD_MODNAME);
	if (ret)
		return ret;
	ret = class_register(&mbshm_class);
	if (ret)
		goto err_chrdev;
	ret = pci_register_driver(&mbshm_driver);
	if (ret)
		goto err_class;
	return 0;

err_class:
	class_unregister(&mbshm_class);
err_chrdev:
	unregister_chrdev_region(mbshm_devt, MBSHM_MAX_DEVICES);
	return ret;
}

static void __exit mbshm_exit(void)
{
	pci_unregister_driver(&mbshm_driver);
	class_unregister(&mbshm_class);
	unregister_chrdev_region(mbshm_devt, MBSHM_MAX_DEVICES);
	ida_destroy(&mbshm_ida);
}

module_init(mbshm_init);
module_exit(mbshm_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Character devices for QEMU ivshmem (shared memory, doorbell, MSI-X)");
MODULE_AUTHOR("mbvisor developers");
