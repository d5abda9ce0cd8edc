// SPDX-License-Identifier: GPL-2.0
/*
 * mbslowput.ko - a test module, never installed: it makes every
 * mbstate_lb_backend_put() of mblb's flow collector (the work item mblb_gc)
 * wait @delay_us before it runs, through a kprobe.
 *
 * Audit finding A8 (docs/SECURITY.md) is a race: mblb's collector unlinks
 * idle flows, waits for a grace period and then gives back their backend
 * references, which write into the namespace's registry; a namespace
 * whose exit ran in between had its registry freed already. Under TCG the
 * window is too short to be hit by chance, so t13-netns-gc.sh widens it
 * with this module: each put of a collector pass then takes @delay_us (up
 * to half a second a second), a pass over a thousand flows takes that
 * long, and a namespace deleted meanwhile exits inside the window unless
 * mblb waits for the pass.
 *
 * The handler busy-waits (kprobe handlers may not sleep), at most half a
 * second in every second: a test guest only.
 */
#include <linux/delay.h>
#include <linux/kallsyms.h>
#include <linux/kprobes.h>
#include <linux/module.h>
#include <linux/string.h>
#include <linux/workqueue.h>

static unsigned int delay_us = 2000;
module_param(delay_us, uint, 0644);
MODULE_PARM_DESC(delay_us, "Microseconds each backend put of the collector waits (2000)");

static atomic_long_t mbslowput_hits = ATOMIC_LONG_INIT(0);

static int mbslowput_hits_get(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%ld\n", atomic_long_read(&mbslowput_hits));
}

static const struct kernel_param_ops mbslowput_hits_ops = {
	.get = mbslowput_hits_get,
};
module_param_cb(hits, &mbslowput_hits_ops, NULL, 0444);
MODULE_PARM_DESC(hits, "Puts of the collector delayed so far");

/* Whether the work item @current runs is mblb's collector (mblb_gc). */
static bool mbslowput_in_gc(void)
{
	struct work_struct *w = current_work();
	char name[KSYM_SYMBOL_LEN];

	if (!w)
		return false;
	sprint_symbol_no_offset(name, (unsigned long)w->func);
	/* "mblb_gc [mblb]" */
	return !strncmp(name, "mblb_gc", 7) && (!name[7] || name[7] == ' ');
}

/*
 * The handler runs with preemption disabled: at most half of each second
 * is spent in it, or RCU would see no quiescent state on this CPU and
 * report a stall. Only the collector calls it, one pass at a time.
 */
static unsigned long mbslowput_window;
static unsigned int mbslowput_spent_us;

static int mbslowput_pre(struct kprobe *kp, struct pt_regs *regs)
{
	unsigned int us = READ_ONCE(delay_us);

	/* only the collector: not netlink requests, not a namespace's exit */
	if (!us || !mbslowput_in_gc())
		return 0;
	if (time_after(jiffies, mbslowput_window + HZ)) {
		mbslowput_window = jiffies;
		mbslowput_spent_us = 0;
	}
	if (mbslowput_spent_us >= USEC_PER_SEC / 2)
		return 0;
	mbslowput_spent_us += us;
	atomic_long_inc(&mbslowput_hits);
	while (us >= 1000) {
		mdelay(1);
		us -= 1000;
	}
	udelay(us);
	return 0;
}

static struct kprobe mbslowput_kp = {
	.symbol_name = "mbstate_lb_backend_put",
	.pre_handler = mbslowput_pre,
};

static int __init mbslowput_init(void)
{
	return register_kprobe(&mbslowput_kp);
}

static void __exit mbslowput_exit(void)
{
	unregister_kprobe(&mbslowput_kp);
}

module_init(mbslowput_init);
module_exit(mbslowput_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("mbvisor test: widen the window of audit finding A8");
