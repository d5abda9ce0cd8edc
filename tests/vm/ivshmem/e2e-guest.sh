#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Guest half of tests/host/ivshmem-e2e.sh: runs inside a QEMU guest that has
# two ivshmem devices, served by an mbhostd on the host (which has no
# mbstate registry: good commands come back "unavailable"). No mbshm.ko:
# mbctl finds the devices with libpci and uses the sysfs resource files.
#
#   plain    ivshmem-plain     MAC $MBVISOR_E2E_MAC_PLAIN   mbhostd polls
#   doorbell ivshmem-doorbell  MAC $MBVISOR_E2E_MAC_DB      mbhostd is the
#                                                           ivshmem server
set -euo pipefail
source "$(dirname "$0")/../../lib.sh"

A=$MBVISOR_E2E_MAC_PLAIN
B=$MBVISOR_E2E_MAC_DB
OTHER=52:34:56:00:99:99

mb_require_cmd mbctl lspci

log "$(lspci -nn -d 1af4:1110)"
mapfile -t bdfs < <(mbctl devices | awk '/BAR2/ {print $1}')
check_eq 2 "${#bdfs[@]}" "mbctl devices finds two ivshmem devices"
log "$(mbctl devices)"

# Which device is which: the host's header says whether it has a doorbell.
plain='' db=''
for d in "${bdfs[@]}"; do
	st=$(mbctl -d "$d" -r)
	log "$st"
	if [[ $st == *"host: doorbell"* ]]; then db=$d; else plain=$d; fi
done
[[ -n $plain && -n $db ]] && mb_pass "plain $plain, doorbell $db" ||
	mb_fail "could not tell the devices apart"

log "# ivshmem-plain through sysfs resource2"
expect_out 1 "unavailable" mbctl -d "$plain" -w "@R F $A 10.129.126.115@"
expect_out 1 "Permission denied: $OTHER is not a MAC address of VM \`plain'" \
	mbctl -d "$plain" register fw $OTHER 10.0.0.9
expect_out 1 "Permission denied: $B" mbctl -d "$plain" enable $B
expect_out 2 "Unable to parse mask" mbctl -d "$plain" rule add $A M 16
expect_out 0 "$A" mbctl -d "$plain" stats

log "# ivshmem-doorbell: BAR0 doorbell register through sysfs resource0"
expect_out 1 "unavailable" mbctl -d "$db" -w "@Q $B@"
expect_out 1 "Permission denied: $A is not a MAC address of VM \`db'" \
	mbctl -d "$db" disable $A
expect_out 0 "host: doorbell, peer 0 vector 0" mbctl -d "$db" -r

log "# without -d: the first device that holds a channel"
expect_out 1 "" mbctl enable $A

# The same through the guest driver, when there is one (guest_driver/,
# or MBVISOR_E2E_MBSHM_KO): /dev/mbshmN, the doorbell ioctl, interrupts.
ko=${MBVISOR_E2E_MBSHM_KO:-$MBVISOR_ROOT/guest_driver/mbshm.ko}
if [[ -e $ko ]]; then
	log "# through mbshm.ko ($ko)"
	insmod "$ko"
	mb_defer rmmod mbshm
	mb_wait_for 10 test -e /sys/bus/pci/devices/$db/mbshm
	log "$(mbctl devices)"
	expect_out 0 "/dev/mbshm" mbctl devices
	dbnode=/dev/$(basename /sys/bus/pci/devices/$db/mbshm/mbshm*)
	plainnode=/dev/$(basename /sys/bus/pci/devices/$plain/mbshm/mbshm*)
	irq_before=$(awk '{s += $1} END {print s}' "/sys/class/mbshm/${dbnode#/dev/}/interrupts")
	expect_out 1 "unavailable" mbctl -d "$db" -w "@Q $B@"
	expect_out 1 "Permission denied: $A" mbctl -d "$dbnode" disable $A
	irq_after=$(awk '{s += $1} END {print s}' "/sys/class/mbshm/${dbnode#/dev/}/interrupts")
	if ((irq_after >= irq_before + 2)); then
		mb_pass "mbhostd rang the guest after each answer (MSI-X interrupts $irq_before -> $irq_after)"
	else
		mb_fail "interrupts $irq_before -> $irq_after: mbhostd did not ring the guest twice"
	fi
	expect_out 0 "guest interrupts through mbshm.ko" mbctl -d "$dbnode" -r
	expect_out 1 "unavailable" mbctl -d "$plainnode" enable $A
	expect_out 1 "Permission denied" mbctl -d "$plain" enable $B
	expect_out 0 "($plain, mbshm.ko)" mbctl -d "$plain" -r
else
	log "# no mbshm.ko to test with ($ko)"
fi
mb_test_end
