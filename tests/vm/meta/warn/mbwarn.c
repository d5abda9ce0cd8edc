// SPDX-License-Identifier: GPL-2.0
/* Harness self-test: a module whose init hits WARN_ON (tests/vm/meta). */
#include <linux/bug.h>
#include <linux/module.h>

static int __init mbwarn_init(void)
{
	WARN_ON(1);
	return 0;
}

static void __exit mbwarn_exit(void)
{
}

module_init(mbwarn_init);
module_exit(mbwarn_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("mbvisor test harness self-test: WARN_ON at load");
