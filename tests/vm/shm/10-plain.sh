#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# mbshm.ko with two ivshmem-plain devices: one character device each, the
# sysfs and ioctl views, mmap bounds, what plain devices refuse, the memory
# really shared with the host's files, its memory type, and rmmod while a
# process has a mapping.
#
#   host (tests/vm/run-ivshmem)            guest
#   /dev/shm/...-plain0  (1 MiB) -- ivs0 ivshmem-plain -- /dev/mbshmA
#   /dev/shm/...-plain1  (2 MiB) -- ivs1 ivshmem-plain -- /dev/mbshmB
#   host_agent.py reads and writes those files when the guest asks.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../../lib.sh
source "$(dirname "$0")/../../lib.sh"
# shellcheck source-path=SCRIPTDIR source=shm.sh
source "$(dirname "$0")/shm.sh"

MiB=1048576
shm_load
d0=$(shm_dev "$MBVISOR_SHM_PCI_PLAIN0")
d1=$(shm_dev "$MBVISOR_SHM_PCI_PLAIN1")
s0=$(shm_sys "$d0")
s1=$(shm_sys "$d1")
log "# plain0 is $d0, plain1 is $d1"
check_ok test -c "$d0"
check_ok test -c "$d1"
check_fail test "$d0" = "$d1"
check_eq "$(realpath "/sys/bus/pci/devices/$MBVISOR_SHM_PCI_PLAIN0")" \
	"$(realpath "$s0/device")" "sysfs device link of $d0"

log "# sysfs and MBSHM_IOC_GET_INFO"
check_eq $MiB "$(<"$s0/shm_size")" "$s0/shm_size"
check_eq $((2 * MiB)) "$(<"$s1/shm_size")" "$s1/shm_size"
for s in "$s0" "$s1"; do
	check_eq 0 "$(<"$s/doorbell")" "$s/doorbell"
	check_eq 0 "$(<"$s/vectors")" "$s/vectors"
	check_eq 0 "$(<"$s/irq_vectors")" "$s/irq_vectors"
	check_eq 0 "$(<"$s/ivposition")" "$s/ivposition"
	check_eq "" "$(<"$s/interrupts")" "$s/interrupts"
done
check_eq "shm_size=$MiB flags=0 ivposition=0 vectors=0 irq_vectors=0 reserved=0" \
	"$(mbshm info "$d0" | paste -sd ' ')" "GET_INFO of $d0"
check_eq "shm_size=$((2 * MiB)) flags=0 ivposition=0 vectors=0 irq_vectors=0 reserved=0" \
	"$(mbshm info "$d1" | paste -sd ' ')" "GET_INFO of $d1"
check_eq 0 "$(mbshm ivposition "$d0")" "GET_IVPOSITION"

log "# what a device without doorbell and interrupts refuses"
check_eq EOPNOTSUPP "$(mbshm doorbell "$d0" 0 0)" "doorbell on ivshmem-plain"
check_eq EOPNOTSUPP "$(mbshm count "$d0")" "read() on ivshmem-plain"
check_eq EOPNOTSUPP "$(mbshm watch "$d0" 1)" "WATCH_VECTORS on ivshmem-plain"
check_eq EINVAL "$(mbshm count "$d0" --len 4)" "read() of 4 bytes"
check_eq ENOTTY "$(mbshm ioctl-raw "$d0" 99)" "unknown ioctl"
check_eq none "$(mbshm poll "$d0" 0)" "poll() on an idle device"

log "# mmap bounds"
check_eq ok "$(mbshm mmap "$d0" 0 $MiB)" "map all of $d0"
check_eq ok "$(mbshm mmap "$d1" 0 $((2 * MiB)))" "map all of $d1"
check_eq EINVAL "$(mbshm mmap "$d0" 0 $((MiB + 4096)))" "map a page past the end"
check_eq EINVAL "$(mbshm mmap "$d0" $MiB 4096)" "map at the end"
check_eq EINVAL "$(mbshm mmap "$d0" $((MiB - 4096)) 8192)" "map across the end"
check_eq ok "$(mbshm mmap "$d0" $((MiB - 4096)) 4096)" "map the last page"
check_eq EINVAL "$(mbshm mmap "$d0" 0 4096 --private)" "MAP_PRIVATE"
check_eq ok "$(mbshm mmap "$d0" 0 4096 --rdonly)" "read-only MAP_SHARED"

log "# guest writes, the host's file has it (and only that device's file)"
p0=$(random_hex 64)
p1=$(random_hex 64)
check_eq ok "$(mbshm write "$d0" 4096 "$p0")" "write through the mapping of $d0"
check_eq ok "$(mbshm write "$d1" $((2 * MiB - 64)) "$p1")" "write the last bytes of $d1"
check_eq "$p0" "$(host_req shm-read plain0 4096 64)" "host file plain0 at 4096"
check_eq "$p1" "$(host_req shm-read plain1 $((2 * MiB - 64)) 64)" "host file plain1 at its end"
check_eq "$(printf '0%.0s' {1..128})" "$(host_req shm-read plain1 4096 64)" \
	"host file plain1 at 4096 (untouched)"

log "# host writes, the guest's mapping has it"
h0=$(random_hex 32)
h1=$(random_hex 32)
check_ok host_req shm-write plain0 $((MiB - 32)) "$h0"
check_ok host_req shm-write plain1 123457 "$h1"
check_eq "$h0" "$(mbshm dump "$d0" $((MiB - 32)) 32)" "$d0 sees the host's bytes at its end"
check_eq "$h1" "$(mbshm dump "$d1" 123457 32)" "$d1 sees the host's bytes at 123457"
check_eq "$h1" "$(host_req shm-read plain1 123457 32)" "and the host reads them back"

log "# two open files map the same memory"
t=$(random_hex 16)
check_eq "$t" "$(mbshm twofiles "$d0" 65536 "$t")" "written through one file, read through another"

log "# memory type: write-back (see mbshm_map_shm), unless an MTRR forbids it"
# What x86 PAT grants a write-back request (pat_x_mtrr_type()): uncached-minus
# inside a range that a variable MTRR makes uncachable (the firmware does
# that for the 32-bit PCI window), write-back elsewhere.
pat_expected()
{
	local start=$1 end=$2 base size unit

	while read -r base size unit; do
		case $unit in
		K) size=$((size << 10)) ;;
		M) size=$((size << 20)) ;;
		esac
		if ((start >= base && end <= base + size)); then
			echo uncached-minus
			return
		fi
	done < <(sed -n 's/.*base=\(0x[0-9a-f]*\).*size= *\([0-9]*\)\([KM]\)B.*uncachable.*/\1 \2 \3/p' \
		/proc/mtrr 2>/dev/null)
	echo write-back
}
read -r start end _ < <(sed -n 3p "/sys/bus/pci/devices/$MBVISOR_SHM_PCI_PLAIN0/resource")
end=$((end + 1))
range=$(printf '[mem 0x%016x-0x%016x]' "$start" "$end")
pat=$(grep -F "$range" /sys/kernel/debug/x86/pat_memtype_list || true)
log "PAT: ${pat:-no entry for $range}; /proc/mtrr:"
cat /proc/mtrr 2>/dev/null || true
check_eq "$(pat_expected "$start" "$end")" "${pat##* }" "PAT memory type of BAR2 $range"

log "# rmmod while a process has a mapping (file closed) or a file open"
for how in --mapped-only ""; do
	out=$(mktemp)
	# shellcheck disable=SC2086 # $how: no option or one
	python3 "$SHM_PY" hold "$d0" "$out" $how &
	holder=$!
	mb_wait_for 30 grep -qsx ready "$out"
	check_fail rmmod mbshm
	check_ok test -e /sys/module/mbshm
	check_ok test -e "$s0/doorbell"
	check_eq ok "$(mbshm mmap "$d0" 0 4096)" "the device still works"
	kill "$holder"
	wait "$holder" || true
	check_ok rmmod mbshm
	check_fail test -e "$d0"
	check_fail test -e /sys/class/mbshm
	check_ok insmod "$SHM_KO"
	d0=$(shm_dev "$MBVISOR_SHM_PCI_PLAIN0")
	s0=$(shm_sys "$d0")
	check_eq "68656c64$p0" "$(mbshm dump "$d0" 0 4)$(mbshm dump "$d0" 4096 64)" \
		"after reload: the holder's 'held' and the earlier bytes"
	rm -f "$out"
done

log "# module parameter bounds"
check_ok rmmod mbshm
check_fail insmod "$SHM_KO" max_vectors=0
check_fail insmod "$SHM_KO" max_vectors=65
check_ok insmod "$SHM_KO" max_vectors=64

mb_test_end
