#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Host-side tests of qemu/start-middlebox (no VM boots): the exact QEMU
# command lines it builds, the arguments it refuses (exit 2, naming the bad
# value), and that QEMU accepts its commands: each variant is started
# paused (-S) and asked over QMP for its PCI devices, the ivshmem-doorbell
# one with the test ivshmem server. Also validates the libvirt examples
# with virt-xml-validate.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
sm=$root/qemu/start-middlebox
work=$(mktemp -d /var/tmp/mbvisor-qemu-test.XXXXXX)
pids=()
passed=0
failed=0

# shellcheck disable=SC2317 # called by the EXIT trap
cleanup()
{
	local p

	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null
	done
	wait 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

pass() { passed=$((passed + 1)); echo "ok: $*"; }
fail() { failed=$((failed + 1)); echo "FAIL: $*"; }

# expect_args DESCRIPTION EXPECTED-LINES -- ARGS...: --dry-run prints exactly that
expect_args()
{
	local what=$1 want=$2 got

	shift 3
	got=$("$sm" --dry-run "$@" 2>&1)
	if [[ $got == "$want" ]]; then
		pass "$what"
	else
		fail "$what"
		diff <(echo "$want") <(echo "$got") | sed 's/^/    /'
	fi
}

# refuse WORD ARGS...: start-middlebox exits 2 and its message contains WORD
refuse()
{
	local word=$1 out rc=0

	shift
	out=$("$sm" --dry-run "$@" 2>&1) || rc=$?
	if [[ $rc -eq 2 && $out == *"$word"* ]]; then
		pass "refused ($word): $out"
	else
		fail "$* -> exit $rc, '$out' (expected exit 2 naming '$word')"
	fi
}

disk=$work/fw1.qcow2
kernel=$work/vmlinuz
: >"$disk"
: >"$kernel"

echo "# the command lines"
expect_args "plain, disk, bridge" "qemu-system-x86_64
-name
fw1
-machine
pc
-accel
tcg
-cpu
max
-m
1024M
-smp
2
-nodefaults
-nographic
-serial
mon:stdio
-drive
file=$disk,format=qcow2,if=virtio
-netdev
bridge,id=net0,br=br0
-device
virtio-net-pci,netdev=net0,mac=52:54:00:12:34:56
-object
memory-backend-file,id=mbshm,share=on,mem-path=/dev/shm/mbvisor-fw1,size=1048576
-device
ivshmem-plain,memdev=mbshm,id=mbshm0" -- \
	--name fw1 --disk "$disk" --bridge br0 --accel tcg --mac 52:54:00:12:34:56

expect_args "doorbell, kernel, tap, QMP, a comma in a path" "qemu-system-x86_64
-name
lb-2
-machine
pc
-accel
kvm
-cpu
host
-m
2048M
-smp
4
-nodefaults
-display
none
-serial
none
-monitor
none
-kernel
$kernel
-append
console=ttyS0 quiet
-netdev
tap,id=net0,ifname=tap7,script=no,downscript=no
-device
virtio-net-pci,netdev=net0,mac=02:00:00:00:00:07
-chardev
socket,id=mbshm,path=/run/a,,b.sock
-device
ivshmem-doorbell,chardev=mbshm,vectors=4,id=mbshm0
-qmp
unix:/run/q.sock,server=on,wait=off
-S" -- \
	--name lb-2 --kernel "$kernel" --append "console=ttyS0 quiet" --tap tap7 \
	--mac 02:00:00:00:00:07 --shm doorbell --server /run/a,b.sock --vectors 4 \
	--accel kvm --mem 2G --smp 4 --console none --qmp /run/q.sock --extra -S

mac=$("$sm" --dry-run --name fw1 --disk "$disk" --no-nic --accel tcg | grep -c mac=)
[[ $mac == 0 ]] && pass "--no-nic: no NIC" || fail "--no-nic still has a NIC"
m1=$("$sm" --dry-run --name fw1 --disk "$disk" --bridge br0 | grep -o 'mac=[0-9a-f:]*')
m2=$("$sm" --dry-run --name fw2 --disk "$disk" --bridge br0 | grep -o 'mac=[0-9a-f:]*')
[[ $m1 == mac=52:54:00:* && $m1 != "$m2" ]] && pass "default MACs: $m1, $m2" ||
	fail "default MACs: $m1, $m2"

echo "# refused arguments"
refuse "--name is required" --disk "$disk" --bridge br0
refuse "'Fw1'" --name Fw1 --disk "$disk" --bridge br0
refuse "'-fw'" --name -fw --disk "$disk" --bridge br0
refuse "not both" --name fw1 --disk "$disk" --kernel "$kernel" --bridge br0
refuse "give --disk" --name fw1 --bridge br0
refuse "'$work/none.img'" --name fw1 --disk "$work/none.img" --bridge br0
refuse "--initrd needs --kernel" --name fw1 --disk "$disk" --initrd "$kernel" --bridge br0
refuse "'1024'" --name fw1 --disk "$disk" --bridge br0 --mem 1024
refuse "'32M'" --name fw1 --disk "$disk" --bridge br0 --mem 32M
refuse "'0'" --name fw1 --disk "$disk" --bridge br0 --smp 0
refuse "'xen'" --name fw1 --disk "$disk" --bridge br0 --accel xen
refuse "only one" --name fw1 --disk "$disk" --bridge br0 --tap tap0
refuse "give --bridge" --name fw1 --disk "$disk"
refuse "'br0;x'" --name fw1 --disk "$disk" --bridge 'br0;x'
refuse "'01:00:00:00:00:01' is multicast" --name fw1 --disk "$disk" --bridge br0 --mac 01:00:00:00:00:01
refuse "'52:54:00:00:00'" --name fw1 --disk "$disk" --bridge br0 --mac 52:54:00:00:00
refuse "'3M' is not a power of two" --name fw1 --disk "$disk" --bridge br0 --shm-size 3M
refuse "'2K' is not a power of two" --name fw1 --disk "$disk" --bridge br0 --shm-size 2K
refuse "'lots'" --name fw1 --disk "$disk" --bridge br0 --shm-size lots
refuse "'ivshmem'" --name fw1 --disk "$disk" --bridge br0 --shm ivshmem
refuse "'0' (1-64)" --name fw1 --disk "$disk" --bridge br0 --shm doorbell --vectors 0
refuse "'65' (1-64)" --name fw1 --disk "$disk" --bridge br0 --shm doorbell --vectors 65
refuse "--shm-path is for" --name fw1 --disk "$disk" --bridge br0 --shm doorbell --shm-path /dev/shm/x
refuse "--server is for" --name fw1 --disk "$disk" --bridge br0 --server /run/x.sock
refuse "'serial'" --name fw1 --disk "$disk" --bridge br0 --console serial
refuse "'--frobnicate'" --name fw1 --disk "$disk" --bridge br0 --frobnicate
refuse "needs a value" --name
big=$work/big
truncate -s 2M "$big"
refuse "bigger than --shm-size" --name fw1 --disk "$disk" --bridge br0 --shm-path "$big"
# Without --dry-run the host's bridge, tap and server must exist.
out=$("$sm" --name fw1 --disk "$disk" --bridge lo 2>&1)
[[ $? -eq 2 && $out == *"'lo' is not a bridge"* ]] && pass "$out" || fail "lo as bridge: $out"
out=$("$sm" --name fw1 --disk "$disk" --no-nic --shm doorbell --server "$work/no.sock" 2>&1)
[[ $? -eq 2 && $out == *"no ivshmem server socket"* ]] && pass "$out" || fail "no server: $out"

echo "# QEMU accepts them (paused, asked over QMP)"
kv=$("$root/tests/vm/run" --print-kernel)
# qmp_pci SOCKET: print "VENDOR:DEVICE BAR2-SIZE" of each ivshmem device, quit QEMU
qmp_pci()
{
	python3 - "$1" <<'PY'
import json, socket, sys, time
for _ in range(300):
    try:
        s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); break
    except OSError:
        time.sleep(0.1)
f = s.makefile("rw")
def cmd(c):
    f.write(json.dumps({"execute": c}) + "\n"); f.flush()
    while True:
        m = json.loads(f.readline())
        if "return" in m or "error" in m:
            return m
f.readline()
cmd("qmp_capabilities")
for bus in cmd("query-pci")["return"]:
    for d in bus["devices"]:
        if d["id"]["vendor"] == 0x1af4 and d["id"]["device"] == 0x1110:
            bars = {b["bar"]: b["size"] for b in d["regions"]}
            print(f"1af4:1110 {bars.get(2)} msix={'yes' if 1 in bars else 'no'}")
cmd("quit")
PY
}
shm=/dev/shm/mbvisor-qemu-test-$$
"$sm" --name qtest --kernel "/boot/vmlinuz-$kv" --no-nic --accel tcg --mem 128M \
	--console none --shm-path "$shm" --shm-size 2M --qmp "$work/q1" --extra -S \
	2>"$work/q1.err" &
pids+=($!)
got=$(qmp_pci "$work/q1")
[[ $got == "1af4:1110 2097152 msix=no" ]] && pass "plain: $got" ||
	fail "plain: '$got' $(cat "$work/q1.err")"
[[ $(stat -c %s "$shm" 2>/dev/null) == 2097152 ]] && pass "QEMU made $shm of 2M" ||
	fail "no $shm of 2M"
rm -f "$shm"

python3 "$root/tests/vm/ivshmem_server.py" --socket "$work/ivs.sock" \
	--control "$work/ivs.ctl" --shm "$shm" --size 1M --vectors 3 2>"$work/server.log" &
pids+=($!)
for _ in $(seq 100); do [[ -S $work/ivs.sock ]] && break; sleep 0.1; done
"$sm" --name qtest --kernel "/boot/vmlinuz-$kv" --no-nic --accel tcg --mem 128M \
	--console none --shm doorbell --server "$work/ivs.sock" --vectors 3 \
	--qmp "$work/q2" --extra -S 2>"$work/q2.err" &
pids+=($!)
got=$(qmp_pci "$work/q2")
[[ $got == "1af4:1110 1048576 msix=yes" ]] && pass "doorbell: $got" ||
	fail "doorbell: '$got' $(cat "$work/q2.err")"
rm -f "$shm"

echo "# libvirt examples"
if command -v virt-xml-validate >/dev/null; then
	for x in "$root"/qemu/*.xml; do
		out=$(virt-xml-validate "$x" domain 2>&1) && pass "$out" || fail "$x: $out"
	done
else
	fail "virt-xml-validate not found (scripts/install-deps installs libvirt-clients)"
fi

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
