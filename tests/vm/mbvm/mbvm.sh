# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# A middlebox VM inside the test VM (QEMU in QEMU, both TCG), for the tests
# that need the whole story: the host-role guest runs the bridge, the
# modules and mbhostd; the middlebox VM has a virtio NIC on that bridge
# (a tap) and an ivshmem-doorbell device whose server is mbhostd.
#
#   host-role guest (this script)                 middlebox VM
#   ----------------------------                  ------------
#   br0 --- mbvm-tap0 <== -netdev tap ==========> eth0   $MBVM_MAC
#   mbhostd --socket S <== ivshmem-doorbell ====> /dev/mbshm0 (mbshm.ko)
#   $MBVM_RES (results dir, shared read-write) <> the same path
#
# The VM is started with tests/vm/run, so it boots the same Debian kernel
# with this guest's root file system (9p, read-only, tmpfs overlay) and
# runs MBVM_SCRIPT there with guest_driver/mbshm.ko loaded. The two sides
# talk through files in the results dir, which both mount without caching:
#
#	mbvm_start SCRIPT [QEMU-ARGS]	boot the VM in the background; it may
#					take MBVISOR_MBVM_BOOT_TIMEOUT seconds
#					(1200) to boot, 900 more to run SCRIPT
#	mbvm_wait NAME [SECS]		wait until the VM wrote NAME.ready, print
#					its content (the VM's counters then)
#	mbvm_go NAME			let the VM past NAME (it waits in mbvm_phase)
#	mbvm_finish			wait for the VM to end; its output and
#					verdict become one check of this script
#
# and, in the middlebox VM (source this file there too):
#
#	mbvm_phase NAME [SECS]		write NAME.ready with mbvm_counters, then
#					wait for the host's NAME.go
#	mbvm_counters			"rx=<packets> irq=<interrupts> sirq=<ticks>
#					netrx=<softirqs>": eth0's rx_packets, the
#					sum of its virtio input queues' interrupts
#					in /proc/interrupts, the softirq time of
#					all CPUs in /proc/stat (USER_HZ ticks, 10
#					ms; sampled at the timer tick unless the
#					kernel has CONFIG_IRQ_TIME_ACCOUNTING) and
#					the NET_RX softirqs run (/proc/softirqs)

MBVM_MAC=${MBVM_MAC:-52:34:56:00:12:22}
MBVM_TAP=${MBVM_TAP:-mbvm-tap0}
# On this guest's own results share when there is one, so that the VM's
# console and output can be watched from outside while it runs.
MBVM_RES=${MBVM_RES:-${MBVISOR_RESULTS:-/var/tmp}/mbvm}
MBVM_DIR=${MBVM_DIR:-/run/mbvm}
MBVM_PID=

# ---- host-role side ----

# mbvm_hostd MAC...: mbhostd serving VM "mbvm", bound to MAC..., as the
# ivshmem server on $MBVM_DIR/sock (its log: $MBVM_DIR/hostd.log)
mbvm_hostd()
{
	local macs=() m

	for m in "$@"; do
		macs+=(--mac "$m")
	done
	mkdir -p "$MBVM_DIR"
	setsid mbhostd --verbose --state-dir "$MBVM_DIR/state" --vm mbvm \
		--shm /dev/shm/mbvm --size 1048576 "${macs[@]}" \
		--socket "$MBVM_DIR/sock" </dev/null >>"$MBVM_DIR/hostd.log" 2>&1 &
	echo $! >"$MBVM_DIR/hostd.pid"
	mb_defer sh -c "kill \$(cat '$MBVM_DIR/hostd.pid') 2>/dev/null; sleep 0.2"
	if ! mb_wait_for 20 test -S "$MBVM_DIR/sock"; then
		sed 's/^/    hostd| /' "$MBVM_DIR/hostd.log"
		mb_fail "mbhostd did not start its ivshmem server"
		return 1
	fi
}

# mbvm_vmlinux: print the path of the guest's kernel uncompressed (made
# once, in $MBVM_DIR): an ELF vmlinux with a PVH entry, which QEMU boots
# directly. Debian's bzImage decompresses 66 MB of XZ itself, and at the
# nested VM's speed that was most of its boot (tens of minutes on a loaded
# machine with the bench's icount clock).
mbvm_vmlinux()
{
	local kv out

	kv=$("$MBVISOR_ROOT/tests/vm/run" --print-kernel) || return 1
	out=$MBVM_DIR/vmlinux-$kv
	if [[ ! -s $out ]]; then
		mkdir -p "$MBVM_DIR"
		python3 - "/boot/vmlinuz-$kv" "$out.tmp" <<-'EOF' || return 1
			import lzma, sys
			d = open(sys.argv[1], "rb").read()
			i = d.find(b"\xfd7zXZ\x00")
			if i < 0:
			    sys.exit("no XZ payload in " + sys.argv[1])
			elf = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(d[i:])
			if elf[:4] != b"\x7fELF":
			    sys.exit("the XZ payload of %s is not an ELF file" % sys.argv[1])
			open(sys.argv[2], "wb").write(elf)
		EOF
		mv "$out.tmp" "$out"
	fi
	echo "$out"
}

mbvm_start()
{
	local script=$1 img

	shift
	# The bzImage if the kernel cannot be had uncompressed.
	img=$(mbvm_vmlinux) || img=
	modprobe tun
	ip tuntap add dev "$MBVM_TAP" mode tap
	mb_defer ip link del "$MBVM_TAP"
	mb_no_ipv6 "$MBVM_TAP"
	ip link set "$MBVM_TAP" master "$MB_BR" up
	rm -rf "$MBVM_RES"
	mkdir -p "$MBVM_RES"
	# The VM inherits MBVISOR_* (tests/vm/run passes them on): the MAC
	# and the module to load there. 768 MiB: the host-role guest has 2.
	# Emulation inside emulation runs the kernel some 100 times slower
	# than a real machine would: one CPU (no SMP bring-up, no second
	# vCPU thread fighting this guest's two), no mitigations (retpolines
	# and buffer clearing on every kernel entry) and a quiet console (each
	# byte is an emulated UART write inside an emulated UART write); no
	# self-tests of every crypto algorithm at boot (cryptomgr.notests),
	# no clocksource watchdog that could fall back from the TSC to the
	# HPET, whose every read is an emulated MMIO (tsc=reliable), no
	# lockup detectors (nowatchdog).
	MBVISOR_VM_KERNEL_IMAGE=$img \
	MBVISOR_MODULES=guest_driver/mbshm.ko MBVISOR_VM_MEM=768 \
	MBVISOR_VM_SMP=1 \
	MBVISOR_VM_APPEND="mitigations=off quiet cryptomgr.notests tsc=reliable nowatchdog" \
	MBVISOR_VM_RESULTS=$MBVM_RES MBVISOR_VM_CONSOLE=0 \
	MBVISOR_TEST_TIMEOUT=900 MBVISOR_MBVM_MAC=$MBVM_MAC \
	MBVISOR_VM_TIMEOUT=$((${MBVISOR_MBVM_BOOT_TIMEOUT:-1200} + 900)) \
	MBVISOR_QEMU_EXTRA="-netdev tap,id=mbn,ifname=$MBVM_TAP,script=no,downscript=no -device virtio-net-pci,netdev=mbn,mac=$MBVM_MAC -chardev socket,path=$MBVM_DIR/sock,id=mbc -device ivshmem-doorbell,chardev=mbc,vectors=1 $*" \
		"$MBVISOR_ROOT/tests/vm/run" "$script" >"$MBVM_DIR/run.log" 2>&1 &
	MBVM_PID=$!
	mb_defer sh -c "kill $MBVM_PID 2>/dev/null; pkill -f 'mbvm-tap0' 2>/dev/null; true"
}

# _mbvm_until SECS CMD...: retry CMD every half second until it succeeds,
# like mb_wait_for but without a fork per try: both sides wait like this
# for minutes, and a fork and exec of sleep(1) ten times a second, under
# emulation (inside emulation, for the VM), took a good part of the CPU
# that the nested VM needs to boot, and that it is measured on.
_mbvm_until()
{
	local secs=$1 deadline=$(($1 + SECONDS)) fd

	shift
	exec {fd}<> <(:)
	until "$@"; do
		if ((SECONDS >= deadline)); then
			exec {fd}>&-
			echo "mbvm: gave up after ${secs}s: $*" >&2
			return 1
		fi
		read -r -t 0.5 -u "$fd" _ || true
	done
	exec {fd}>&-
}

# _mbvm_ready_or_gone NAME: NAME.ready is there, or the VM's tests/vm/run
# has exited (a zombie counts as exited); builtins only
_mbvm_ready_or_gone()
{
	local st=

	[[ -e $MBVM_RES/$1.ready ]] && return 0
	[[ -n $MBVM_PID ]] || return 0
	read -r _ _ st _ 2>/dev/null <"/proc/$MBVM_PID/stat" || return 0
	[[ $st == Z ]]
}

mbvm_wait()
{
	local name=$1 secs=${2:-900}

	# Not the whole timeout when the VM is gone already (QEMU refused its
	# arguments, the nested guest panicked or finished).
	if ! _mbvm_until "$secs" _mbvm_ready_or_gone "$name" ||
		[[ ! -e $MBVM_RES/$name.ready ]]; then
		echo "mbvm_wait: the middlebox VM did not reach '$name' in ${secs}s" \
			"($(_mbvm_ready_or_gone "$name" && echo "it has exited" || echo "still running"))" >&2
		mbvm_tail >&2
		return 1
	fi
	cat "$MBVM_RES/$name.ready"
}

mbvm_go()
{
	touch "$MBVM_RES/$1.go"
}

# What the VM and its tests/vm/run printed so far
mbvm_tail()
{
	tail -n 40 "$MBVM_DIR/run.log" 2>/dev/null | sed 's/^/    vm run| /'
	tail -n 60 "$MBVM_RES/console.log" 2>/dev/null | tr -d '\r' |
		sed 's/^/    vm console| /'
	tail -n 40 "$MBVM_RES/1.out" 2>/dev/null | sed 's/^/    vm out| /'
}

mbvm_finish()
{
	local rc=0

	wait "$MBVM_PID" || rc=$?
	sed 's/^/    vm| /' "$MBVM_DIR/run.log"
	if [[ $rc -eq 0 ]]; then
		mb_pass "the middlebox VM's own checks (tests/vm/run exit 0)"
	else
		mb_fail "the middlebox VM's own checks: tests/vm/run exit $rc"
	fi
}

# ---- middlebox VM side ----

# Builtins only: in the nested VM a fork and an exec of cat or awk take
# a good fraction of a second, and it reads these at every phase.
mbvm_counters()
{
	local ifc=${1:-eth0} rx irq=0 sirq=0 netrx=0 f i n

	read -r rx <"/sys/class/net/$ifc/statistics/rx_packets"
	while read -r -a f; do
		n=${#f[@]}
		((n > 1)) || continue
		[[ ${f[n - 1]} =~ ^virtio[0-9]+-input\. ]] || continue
		for ((i = 1; i < n; i++)); do
			[[ ${f[i]} =~ ^[0-9]+$ ]] || break
			irq=$((irq + f[i]))
		done
	done </proc/interrupts
	read -r -a f </proc/stat	# cpu user nice system idle iowait irq softirq ...
	sirq=${f[7]}
	while read -r -a f; do
		[[ ${f[0]} == NET_RX: ]] || continue
		for ((i = 1; i < ${#f[@]}; i++)); do
			netrx=$((netrx + f[i]))
		done
	done </proc/softirqs
	echo "rx=$rx irq=$irq sirq=$sirq netrx=$netrx"
}

mbvm_phase()
{
	local name=$1 secs=${2:-600} res=$MBVISOR_RESULTS

	mbvm_counters >"$res/$name.tmp"
	mv "$res/$name.tmp" "$res/$name.ready"
	if ! _mbvm_until "$secs" test -e "$res/$name.go"; then
		mb_fail "the host never let the VM past '$name' (${secs}s)"
		mb_test_end
	fi
}
