# SPDX-License-Identifier: GPL-2.0
#
# make            build every kernel module and userspace program
# make check      install what is missing, then run every test (unit, unit
#                 under ASan/UBSan, a short fuzz run, host, VM, ivshmem, qemu/)
# make fuzz       libFuzzer targets, FUZZ_SECONDS (60) each; see tests/fuzz/run
# make unit-asan  the unit tests built with clang -fsanitize=address,undefined
# make test-fast  the tests that need no VM (unit + host-check)
# make demo       the story end to end in a QEMU guest: mbadm, then a
#                 middlebox VM inside it (mbctl, mbhostd, the bridge)
# make bench      benchmarks in a QEMU guest (docs/BENCHMARKS.md; not a test)
# make W=1        kernel build with extra warnings (kept at zero)
#
# make modules-running  the modules also for the running kernel, if it has
#                 headers and is not the test kernel, in build/running/
#
# KDIR defaults to the headers of the Debian kernel that the VM tests boot;
# KDIR=/lib/modules/$(uname -r)/build builds for the running kernel instead.

KVER ?= $(shell tests/vm/run --print-kernel 2>/dev/null)
KDIR ?= /lib/modules/$(KVER)/build
# The release KDIR builds for (its modules' vermagic): where install-modules
# puts the modules, and so where uninstall removes them from. Not
# include/config/kernel.release, which in Debian's headers is the upstream
# version (6.1.192 for 6.1.0-57-amd64).
KDIR_KVER = $(shell sed -n 's/^\#define UTS_RELEASE "\(.*\)"$$/\1/p' \
	$(KDIR)/include/generated/utsrelease.h 2>/dev/null)

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
UNIT_TESTS := bin/test_cmd bin/test_classifier bin/test_shmproto bin/test_maglev

.PHONY: all modules modules-running tools clean check unit vm-check demo deps help lint \
	install install-modules install-tools install-host install-guest uninstall dkms-source deb \
	unit-asan fuzz fuzz-build vm-check-shm vm-check-faults vm-check-nested qemu-check \
	host-check test-fast e2e-ivshmem known-failing bench

all: modules tools

help:
	@sed -n '3,17p' Makefile

modules:
	$(MAKE) -C $(KDIR) M=$(CURDIR) modules

# The same modules for the kernel this machine runs, from a copy of their
# sources in build/running/ (the tree's own objects stay the test kernel's).
# Nothing to do, and success, if that kernel has no headers or is the one
# KDIR builds for.
RUNNING_KVER ?= $(shell uname -r)
RUNNING_KDIR ?= /lib/modules/$(RUNNING_KVER)/build
RUNNING_OUT := build/running

modules-running:
	@if [ ! -d $(RUNNING_KDIR) ]; then \
		echo "modules-running: the running kernel $(RUNNING_KVER) has no headers ($(RUNNING_KDIR) is missing): nothing built"; \
		echo "modules-running: install them (apt install linux-headers-$(RUNNING_KVER)) to build for it"; \
		exit 0; \
	fi; \
	if [ "$$(realpath $(RUNNING_KDIR))" = "$$(realpath $(KDIR) 2>/dev/null)" ]; then \
		echo "modules-running: the running kernel $(RUNNING_KVER) is the one KDIR builds for: make modules"; \
		exit 0; \
	fi; \
	set -e; rm -rf $(RUNNING_OUT); mkdir -p $(RUNNING_OUT); \
	cp -r --parents Kbuild VERSION include $(foreach m,$(MODULES),$(word 2,$(subst :, ,$(m)))) \
		$(KERNEL_COMMON) $(RUNNING_OUT)/; \
	find $(RUNNING_OUT) \( -name '*.o' -o -name '*.ko' -o -name '*.mod*' \
		-o -name '.*.cmd' -o -name '.*.d' -o -name modules.order \) -delete; \
	$(MAKE) -C $(RUNNING_KDIR) M=$(CURDIR)/$(RUNNING_OUT) modules; \
	echo "modules-running: modules for $(RUNNING_KVER) in $(RUNNING_OUT)/:"; \
	cd $(RUNNING_OUT) && ls */*.ko

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

bin/test_classifier: tests/unit/test_classifier.c common/classifier.c $(COMMON_CMD) $(HDRS) tests/naive_classifier.h | bin
	$(CC) $(CFLAGS) -o $@ tests/unit/test_classifier.c common/classifier.c $(COMMON_CMD) $(CMOCKA_LIBS)

bin/test_shmproto: tests/unit/test_shmproto.c $(COMMON_SHM) $(COMMON_CMD) $(HDRS) | bin
	$(CC) $(CFLAGS) -pthread -o $@ tests/unit/test_shmproto.c $(COMMON_SHM) $(COMMON_CMD) $(CMOCKA_LIBS)

bin/fakeguest: tests/host/fakeguest.c $(COMMON_SHM) $(COMMON_CMD) $(HDRS) | bin
	$(CC) $(CFLAGS) -pthread -o $@ tests/host/fakeguest.c $(COMMON_SHM) $(COMMON_CMD)

bin/swapper: tests/vm/swapper.c $(COMMON_CMD) $(COMMON_NL) $(HDRS) | bin
	$(CC) $(CFLAGS) $(MNL_CFLAGS) -o $@ tests/vm/swapper.c $(COMMON_CMD) $(COMMON_NL) $(MNL_LIBS)

bin/test_maglev: tests/unit/test_maglev.c common/maglev.c $(HDRS) | bin
	$(CC) $(CFLAGS) -o $@ tests/unit/test_maglev.c common/maglev.c $(CMOCKA_LIBS)

deps:
	scripts/install-deps

unit: $(UNIT_TESTS)
	@set -e; for t in $(UNIT_TESTS); do echo "== $$t"; ./$$t; done

# ---- Sanitizers and fuzzing (clang; docs/SECURITY.md has the figures) ----

FUZZ_CC ?= clang-14
SAN_WARN := -std=gnu11 -Wall -Wextra -Wshadow -Wstrict-prototypes \
	    -Wmissing-prototypes -Wformat=2 -D_GNU_SOURCE -Iinclude -Iinclude/uapi
ASAN_CFLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
	       -fno-sanitize-recover=all
ASAN_ENV := ASAN_OPTIONS=detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

# The unit tests of UNIT_TESTS, built by their own rules above with clang and
# the sanitizers, in bin/asan/ (a tree of links to the sources, so that each
# test needs no second rule).
unit-asan:
	@mkdir -p bin/asan
	@for f in $(filter-out bin,$(wildcard *)); do ln -sfn ../../$$f bin/asan/$$f; done
	$(ASAN_ENV) CFLAGS="$(ASAN_CFLAGS)" $(MAKE) -C bin/asan CC=$(FUZZ_CC) KVER=none unit

# libFuzzer targets: tests/fuzz/fuzz_NAME.c, seeds in tests/fuzz/corpus/NAME
# (docs/SECURITY.md section 2). "shm" is the host side of the shared-memory
# ring (common/shmproto.c) driven as mbhostd drives it, by a hostile guest.
FUZZ_TARGETS := cmd classifier frame shm
FUZZ_SECONDS ?= 60
CHECK_FUZZ_SECONDS ?= 10
FUZZ_CFLAGS := -g -O1 -fsanitize=fuzzer,address,undefined \
	       -fno-sanitize-recover=all $(SAN_WARN)
FUZZ_BINS := $(FUZZ_TARGETS:%=bin/fuzz/fuzz_%)

bin/fuzz/fuzz_cmd: tests/fuzz/fuzz_cmd.c $(COMMON_CMD) $(HDRS)
bin/fuzz/fuzz_classifier: tests/fuzz/fuzz_classifier.c common/classifier.c \
	tests/naive_classifier.h $(HDRS)
bin/fuzz/fuzz_frame: tests/fuzz/fuzz_frame.c common/classifier.c \
	tests/naive_classifier.h $(HDRS)
bin/fuzz/fuzz_shm: tests/fuzz/fuzz_shm.c $(COMMON_SHM) $(COMMON_CMD) $(HDRS)
$(FUZZ_BINS): tests/fuzz/fuzz.h
	@mkdir -p bin/fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(filter %.c,$^)

fuzz-build: $(FUZZ_BINS)

fuzz: fuzz-build
	tests/fuzz/run -t $(FUZZ_SECONDS) -s bin/fuzz/summary.txt $(FUZZ_TARGETS)

# mbhostd and mbctl against /dev/shm files, without a VM or kernel modules.
host-check: tools bin/fakeguest
	tests/host/run.sh
	tests/host/libvirt-hook.sh
	tests/host/modules-running.sh

test-fast: unit host-check

# mbctl in a QEMU guest against mbhostd here, through ivshmem-plain and
# ivshmem-doorbell devices, with libpci and sysfs and then with mbshm.ko.
e2e-ivshmem: all bin/fakeguest
	tests/host/ivshmem-e2e.sh

# The faults and load tests of the reliability issue (docs/SECURITY.md
# section 4), part of vm-check; `make vm-check-faults` runs them alone.
FAULT_TESTS := tests/vm/t65-sigkill-stream.sh tests/vm/t66-reload50.sh \
	tests/vm/t67-bridge-churn.sh tests/vm/t68-atomic-swap.sh
# The middlebox VM inside the test VM (QEMU in QEMU): its own boot, so that
# its long nested boot has the guest to itself (11 minutes on an idle
# 2-core machine). Part of check.
NESTED_TESTS := tests/vm/t90-middlebox-vm.sh
VM_TESTS ?= tests/vm/selftest.sh $(filter-out $(NESTED_TESTS),$(sort $(wildcard tests/vm/t[0-9]*.sh)))

# t80-deploy builds the modules with DKMS inside the guest: minutes under TCG
vm-check: all deb bin/fakeguest bin/swapper
	MBVISOR_TEST_TIMEOUT=$${MBVISOR_TEST_TIMEOUT:-1500} tests/vm/run $(VM_TESTS)

# MBVISOR_MBVM_BOOT_TIMEOUT: seconds the middlebox VM may take to boot
vm-check-nested: all
	MBVISOR_TEST_TIMEOUT=$${MBVISOR_TEST_TIMEOUT:-3000} tests/vm/run $(NESTED_TESTS)

vm-check-faults: all bin/fakeguest bin/swapper
	MBVISOR_TEST_TIMEOUT=$${MBVISOR_TEST_TIMEOUT:-600} tests/vm/run $(FAULT_TESTS)

# W=1 and sparse (C=2) over every module; any warning fails.
lint:
	@out=$$($(MAKE) -s -C $(KDIR) M=$(CURDIR) W=1 C=2 modules 2>&1); \
	echo "$$out"; \
	if echo "$$out" | grep -qE 'warning:|error:'; then \
		echo "lint: the kernel build is not warning-free"; exit 1; fi

# mbshm.ko needs a guest with ivshmem devices and their host side running.
SHM_TESTS ?= $(sort $(wildcard tests/vm/shm/[0-9]*.sh))

vm-check-shm: all
	tests/vm/run-ivshmem $(SHM_TESTS)

# Tests of bugs that are known and not fixed yet: each fails today and says
# why in its header. Not part of check. (None at the moment: W7's became
# tests/vm/t75-vlan.sh.)
known-failing: all
	-@set -- $(wildcard tests/vm/known-failing/*.sh); \
	if [ $$# -gt 0 ]; then tests/vm/run "$$@"; \
	else echo "known-failing: no known-failing tests"; fi

qemu-check:
	tests/qemu/start-middlebox.sh

check: deps
	$(MAKE) lint
	$(MAKE) all
	$(MAKE) unit
	$(MAKE) host-check
	$(MAKE) unit-asan
	$(MAKE) fuzz FUZZ_SECONDS=$(CHECK_FUZZ_SECONDS)
	$(MAKE) vm-check
	$(MAKE) vm-check-nested
	$(MAKE) vm-check-shm
	$(MAKE) e2e-ivshmem
	$(MAKE) qemu-check

# Part 1: the host side with mbadm; part 2: a middlebox VM inside the test
# VM, mbctl in it, frames dropped at the host's bridge (QEMU in QEMU).
demo: deps
	$(MAKE) all
	MBVISOR_TEST_TIMEOUT=$${MBVISOR_TEST_TIMEOUT:-3000} \
		tests/vm/run tests/demo.sh tests/vm/t90-middlebox-vm.sh

# Installation: DESTDIR for staging, PREFIX for the programs.
VERSION := $(shell cat VERSION)
PREFIX ?= /usr/local
SBINDIR ?= $(PREFIX)/sbin
MANDIR ?= $(PREFIX)/share/man
INCLUDEDIR ?= $(PREFIX)/include
SYSCONFDIR ?= /etc
# module name:folder, in load order
MODULES := mbstate:mbstate mbhook:bridge_hook mbfw:offload_fw mblb:offload_lb mbshm:guest_driver
DKMS_SRC := $(DESTDIR)/usr/src/mbvisor-$(VERSION)
# the common/ sources the modules #include (shared with userspace)
KERNEL_COMMON := $(shell sed -n 's|^\#include "\.\./\(common/[a-z_]*\.c\)"|\1|p' \
	$(foreach m,$(MODULES),$(word 2,$(subst :, ,$(m)))/*.c) | sort -u)

install: install-modules install-tools

install-modules: modules
	$(MAKE) -C $(KDIR) M=$(CURDIR) INSTALL_MOD_PATH=$(DESTDIR) \
		INSTALL_MOD_DIR=updates/mbvisor CONFIG_MODULE_SIG_ALL= modules_install

HOST_MAN := $(wildcard docs/man/mbadm.8 docs/man/mbhostd.8)
GUEST_MAN := $(wildcard docs/man/mbctl.8 docs/man/mbshm.4)
SYSTEMDUNITDIR ?= /lib/systemd/system
LIBVIRT_HOOK := $(SYSCONFDIR)/libvirt/hooks/qemu.d/mbvisor
INSTALLED := $(SBINDIR)/mbadm $(SBINDIR)/mbhostd $(SBINDIR)/mbctl \
	$(INCLUDEDIR)/linux/mbstate.h $(INCLUDEDIR)/linux/mbshm.h \
	$(SYSCONFDIR)/modules-load.d/mbvisor.conf \
	$(SYSTEMDUNITDIR)/mbhostd@.service $(LIBVIRT_HOOK) \
	$(foreach m,$(HOST_MAN) $(GUEST_MAN),$(MANDIR)/man$(subst .,,$(suffix $(m)))/$(notdir $(m)))

install-tools: install-host install-guest

# The KVM host: the admin tool, the channel daemon, its unit and hook.
install-host: tools
	install -D -m 0755 bin/mbadm $(DESTDIR)$(SBINDIR)/mbadm
	install -D -m 0755 bin/mbhostd $(DESTDIR)$(SBINDIR)/mbhostd
	install -D -m 0644 include/uapi/linux/mbstate.h \
		$(DESTDIR)$(INCLUDEDIR)/linux/mbstate.h
	install -D -m 0644 packaging/mbvisor.modules-load.conf \
		$(DESTDIR)$(SYSCONFDIR)/modules-load.d/mbvisor.conf
	install -D -m 0644 packaging/mbhostd@.service \
		$(DESTDIR)$(SYSTEMDUNITDIR)/mbhostd@.service
	install -D -m 0755 packaging/libvirt-hook-qemu $(DESTDIR)$(LIBVIRT_HOOK)
	for m in $(HOST_MAN); do s=$${m##*.}; \
		install -D -m 0644 $$m $(DESTDIR)$(MANDIR)/man$$s/$${m##*/}; done

# The middlebox VM: mbctl (mbshm.ko comes with the DKMS sources).
install-guest: tools
	install -D -m 0755 bin/mbctl $(DESTDIR)$(SBINDIR)/mbctl
	install -D -m 0644 include/uapi/linux/mbshm.h \
		$(DESTDIR)$(INCLUDEDIR)/linux/mbshm.h
	for m in $(GUEST_MAN); do s=$${m##*.}; \
		install -D -m 0644 $$m $(DESTDIR)$(MANDIR)/man$$s/$${m##*/}; done

uninstall:
	@[ -n "$(KDIR_KVER)" ] || { echo "uninstall: no kernel release in $(KDIR)/include/generated/utsrelease.h: set KDIR as for install"; exit 1; }
	rm -f $(foreach m,$(MODULES),$(DESTDIR)/lib/modules/$(KDIR_KVER)/updates/mbvisor/$(word 2,$(subst :, ,$(m)))/$(word 1,$(subst :, ,$(m))).ko)
	-rmdir -p $(foreach m,$(MODULES),$(DESTDIR)/lib/modules/$(KDIR_KVER)/updates/mbvisor/$(word 2,$(subst :, ,$(m)))) 2>/dev/null
	$(if $(DESTDIR),,-depmod $(KDIR_KVER))
	rm -f $(foreach f,$(INSTALLED),$(DESTDIR)$(f))

# The module sources as DKMS wants them, in /usr/src/mbvisor-VERSION.
dkms-source:
	install -d $(DKMS_SRC)
	cp -r --parents Kbuild VERSION include $(foreach m,$(MODULES),$(word 2,$(subst :, ,$(m)))) \
		$(KERNEL_COMMON) $(DKMS_SRC)/
	find $(DKMS_SRC) \( -name '*.o' -o -name '*.ko' -o -name '*.mod*' \
		-o -name '.*.cmd' -o -name '.*.d' -o -name modules.order \) -delete
	i=0; mods=""; for m in $(MODULES); do \
		mods="$$mods\nBUILT_MODULE_NAME[$$i]=\"$${m%%:*}\"\nBUILT_MODULE_LOCATION[$$i]=\"$${m#*:}/\"\nDEST_MODULE_LOCATION[$$i]=\"/updates/dkms\""; \
		i=$$((i + 1)); done; \
	sed -e 's/@VERSION@/$(VERSION)/' -e "s|@MODULES@|$$mods|" \
		packaging/dkms.conf.in | sed 's/\\n/\n/g' >$(DKMS_SRC)/dkms.conf

# Debian packages (mbvisor-dkms, mbvisor-host) into dist/, built from a
# clean copy of the committed tree.
deb:
	rm -rf build/deb && mkdir -p build/deb dist
	git archive --format=tar HEAD | tar -x -C build/deb
	cd build/deb && dpkg-buildpackage -b -us -uc
	mv build/*.deb dist/
	rm -rf build

# Benchmarks, never tests: nothing in `make check` depends on them. gnuplot
# draws the plots; iperf3, ab (apache2-utils) and ipvsadm are the
# throughput experiment's; only this target needs them. Options: bench/run --help.
bench:
	scripts/install-deps gnuplot-nox iperf3 apache2-utils ipvsadm
	$(MAKE) all
	bench/run

clean:
	$(MAKE) -C $(KDIR) M=$(CURDIR) clean || true
	rm -rf bin build dist
