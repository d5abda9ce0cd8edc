# SPDX-License-Identifier: GPL-2.0
#
# make            build every kernel module and userspace program
# make check      install what is missing, then run every test (unit + VM)
# make demo       the host side shown end to end in a QEMU guest
# make bench      benchmarks in a QEMU guest (docs/BENCHMARKS.md; not a test)
# make W=1        kernel build with extra warnings (kept at zero)
#
# KDIR defaults to the headers of the Debian kernel that the VM tests boot;
# KDIR=/lib/modules/$(uname -r)/build builds for the running kernel instead.

KVER ?= $(shell tests/vm/run --print-kernel 2>/dev/null)
KDIR ?= /lib/modules/$(KVER)/build

CC ?= gcc
PKG_CONFIG ?= pkg-config
CFLAGS ?= -O2 -g
CFLAGS += -std=gnu11 -Wall -Wextra -Wshadow -Wstrict-prototypes \
	  -Wmissing-prototypes -Wformat=2 -Werror=implicit-function-declaration \
	  -D_GNU_SOURCE -Iinclude -Iinclude/uapi
MNL_CFLAGS = $(shell $(PKG_CONFIG) --cflags libmnl 2>/dev/null)
MNL_LIBS = $(shell $(PKG_CONFIG) --libs libmnl 2>/dev/null || echo -lmnl)
CMOCKA_LIBS = $(shell $(PKG_CONFIG) --libs cmocka 2>/dev/null || echo -lcmocka)
JSON_CFLAGS = $(shell $(PKG_CONFIG) --cflags json-c 2>/dev/null)
JSON_LIBS = $(shell $(PKG_CONFIG) --libs json-c 2>/dev/null || echo -ljson-c)

HDRS := $(wildcard include/mbvisor/*.h include/uapi/linux/*.h)
COMMON_CMD := common/cmd.c
COMMON_NL := common/mbnl.c

PROGS := bin/mbadm
UNIT_TESTS := bin/test_cmd bin/test_classifier

.PHONY: all modules tools clean check unit vm-check demo deps help bench

all: modules tools

help:
	@sed -n '3,11p' Makefile

modules:
	$(MAKE) -C $(KDIR) M=$(CURDIR) modules

tools: $(PROGS)

bin:
	mkdir -p bin

bin/mbadm: host_reader/mbadm.c $(COMMON_CMD) $(COMMON_NL) $(HDRS) | bin
	$(CC) $(CFLAGS) $(MNL_CFLAGS) $(JSON_CFLAGS) -o $@ host_reader/mbadm.c $(COMMON_CMD) $(COMMON_NL) $(MNL_LIBS) $(JSON_LIBS)

bin/test_cmd: tests/unit/test_cmd.c $(COMMON_CMD) $(HDRS) | bin
	$(CC) $(CFLAGS) -o $@ tests/unit/test_cmd.c $(COMMON_CMD) $(CMOCKA_LIBS)

bin/test_classifier: tests/unit/test_classifier.c common/classifier.c $(COMMON_CMD) $(HDRS) | bin
	$(CC) $(CFLAGS) -o $@ tests/unit/test_classifier.c common/classifier.c $(COMMON_CMD) $(CMOCKA_LIBS)

deps:
	scripts/install-deps

unit: $(UNIT_TESTS)
	@set -e; for t in $(UNIT_TESTS); do echo "== $$t"; ./$$t; done

VM_TESTS ?= tests/vm/selftest.sh $(sort $(wildcard tests/vm/t[0-9]*.sh))

vm-check: all
	tests/vm/run $(VM_TESTS)

check: deps
	$(MAKE) all W=1
	$(MAKE) unit
	$(MAKE) vm-check

demo: deps
	$(MAKE) all
	tests/vm/run tests/demo.sh

# Benchmarks, never tests: nothing in `make check` depends on them. gnuplot
# draws the plots; only this target needs it. Options: bench/run --help.
bench:
	scripts/install-deps gnuplot-nox
	$(MAKE) all
	bench/run

clean:
	$(MAKE) -C $(KDIR) M=$(CURDIR) clean || true
	rm -rf bin
