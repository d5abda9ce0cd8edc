// SPDX-License-Identifier: GPL-2.0
/*
 * The classifier builder is shared with userspace (unit tests, fuzzing);
 * its one source lives in common/.
 */
#include "../common/classifier.c"
