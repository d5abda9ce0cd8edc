// SPDX-License-Identifier: GPL-2.0
/*
 * The Maglev table builder is shared with userspace (unit tests); its one
 * source lives in common/.
 */
#include "../common/maglev.c"
