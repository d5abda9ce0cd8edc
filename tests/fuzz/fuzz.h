/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/* What every fuzz target shares. */
#ifndef _MBVISOR_FUZZ_H
#define _MBVISOR_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Stops the run: libFuzzer saves the input that got here as a crash. */
#define CHECK(cond)							\
	do {								\
		if (!(cond)) {						\
			fprintf(stderr, "%s:%d: check failed: %s\n",	\
				__FILE__, __LINE__, #cond);		\
			abort();					\
		}							\
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif /* _MBVISOR_FUZZ_H */
