# SPDX-License-Identifier: GPL-2.0
#
# make            build every kernel module and userspace program
# make check      install what is missing, then run every test (unit, host, VM)
# make test-fast  the tests that need no VM (unit + host-check)
# make demo       the host side shown end to end in a QEMU guest
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
VIRT_CFLAGS = $(shell $(PKG_CONFIG) --cflags libvirt libxml-2.0 2>/dev/null || echo -I/usr/include/libxml2)
VIRT_LIBS = $(shell $(PKG_CONFIG) --libs libvirt libxml-2.0 2>/dev/null || echo -lvirt -lxml2)
PCI_CFLAGS = $(shell $(PKG_CONFIG) --cflags libpci 2>/dev/null)
PCI_LIBS = $(shell $(PKG_CONFIG) --libs libpci 2>/dev/null || echo -lpci)

HDRS := $(wildcard include/mbvisor/*.h include/uapi/linux/*.h)
COMMON_CMD := common/cmd.c
COMMON_NL := common/mbnl.c
COMMON_SHM := common/shmproto.c

PROGS := bin/mbadm bin/mbhostd bin/mbctl
UNIT_TESTS := bin/test_cmd bin/test_classifier bin/test_shmproto

.PHONY: all modules tools clean check unit host-check test-fast e2e-ivshmem vm-check demo deps help

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

MBHOSTD_SRCS := host_reader/mbhostd.c host_reader/domain.c host_reader/ivserver.c \
	$(COMMON_CMD) $(COMMON_NL) $(COMMON_SHM)

bin/mbhostd: $(MBHOSTD_SRCS) host_reader/domain.h host_reader/ivserver.h $(HDRS) | bin
	$(CC) $(CFLAGS) $(MNL_CFLAGS) $(VIRT_CFLAGS) -pthread -o $@ $(MBHOSTD_SRCS) $(MNL_LIBS) $(VIRT_LIBS)

MBCTL_SRCS := guest_cli/mbctl.c $(COMMON_CMD) $(COMMON_SHM)

bin/mbctl: $(MBCTL_SRCS) $(HDRS) | bin
	$(CC) $(CFLAGS) $(PCI_CFLAGS) -o $@ $(MBCTL_SRCS) $(PCI_LIBS)

bin/test_cmd: tests/unit/test_cmd.c $(COMMON_CMD) $(HDRS) | bin
	$(CC) $(CFLAGS) -o $@ tests/unit/test_cmd.c $(COMMON_CMD) $(CMOCKA_LIBS)

bin/test_classifier: tests/unit/test_classifier.c common/classifier.c $(COMMON_CMD) $(HDRS) | bin
	$(CC) $(CFLAGS) -o $@ tests/unit/test_classifier.c common/classifier.c $(COMMON_CMD) $(CMOCKA_LIBS)

bin/test_shmproto: tests/unit/test_shmproto.c $(COMMON_SHM) $(COMMON_CMD) $(HDRS) | bin
	$(CC) $(CFLAGS) -pthread -o $@ tests/unit/test_shmproto.c $(COMMON_SHM) $(COMMON_CMD) $(CMOCKA_LIBS)

bin/fakeguest: tests/host/fakeguest.c $(COMMON_SHM) $(COMMON_CMD) $(HDRS) | bin
	$(CC) $(CFLAGS) -pthread -o $@ tests/host/fakeguest.c $(COMMON_SHM) $(COMMON_CMD)

deps:
	scripts/install-deps

unit: $(UNIT_TESTS)
	@set -e; for t in $(UNIT_TESTS); do echo "== $$t"; ./$$t; done

# mbhostd and mbctl against /dev/shm files, without a VM or kernel modules.
host-check: tools bin/fakeguest
	tests/host/run.sh

test-fast: unit host-check

# mbctl in a QEMU guest against mbhostd here, through ivshmem-plain and
# ivshmem-doorbell devices (one more boot; not part of check).
e2e-ivshmem: all bin/fakeguest
	tests/host/ivshmem-e2e.sh

VM_TESTS ?= tests/vm/selftest.sh $(sort $(wildcard tests/vm/t[0-9]*.sh))

vm-check: all
	tests/vm/run $(VM_TESTS)

check: deps
	$(MAKE) all W=1
	$(MAKE) unit
	$(MAKE) host-check
	$(MAKE) vm-check

demo: deps
	$(MAKE) all
	tests/vm/run tests/demo.sh

clean:
	$(MAKE) -C $(KDIR) M=$(CURDIR) clean || true
	rm -rf bin
