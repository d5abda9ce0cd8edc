#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The middlebox VM's half of tests/vm/t90-middlebox-vm.sh (started there
# with mbvm_start; runs inside the nested guest, mbshm.ko loaded): the
# firewall middlebox registers through its ivshmem device, offloads the
# report's filter (section 4.2.1: IPv4 from client 1's MAC, M 5 s ... p 8)
# and reports its NIC's counters at each phase of the host's traffic.
set -euo pipefail
source "$(dirname "$0")/../../lib.sh"
source "$(dirname "$0")/mbvm.sh"

MB=$MBVISOR_MBVM_MAC
C1=02:00:00:00:00:01
OTHER=52:34:56:00:12:99

mb_require_cmd mbctl ip

log "# the middlebox VM: its NIC and its ivshmem device"
modprobe virtio_net
ifc=$(ip -o link | awk -v m="$MB" 'tolower($0) ~ m { sub(":", "", $2); print $2; exit }')
[[ -n $ifc ]] || { mb_fail "no NIC with MAC $MB"; mb_test_end; }
[[ $ifc == eth0 ]] || ip link set "$ifc" name eth0
sysctl -qw net.ipv6.conf.eth0.disable_ipv6=1
ip addr add 10.0.0.100/24 dev eth0
ip link set eth0 up
log "$(ip -br link show eth0)"
mb_wait_for 30 sh -c 'ls /dev/mbshm* >/dev/null 2>&1'
check_ok test -c /dev/mbshm0
log "$(mbctl devices)"
expect_out 0 "host: doorbell" mbctl -r

log "# ready for the host's traffic before any offload"
mbvm_phase before

log "# register for the firewall service and offload the report's filter"
expect_out 0 "" mbctl -w "@R F $MB 10.0.0.100@"
expect_out 0 "" mbctl -w "@A $MB M 5 s $C1 p 8@"
expect_out 1 "Permission denied: $OTHER is not a MAC address of VM \`mbvm'" \
	mbctl -w "@R F $OTHER 10.0.0.101@"
expect_out 0 "M 5 s $C1 p ipv4" mbctl show "$MB"
mbvm_phase offloaded

log "# the host sent client 1's flood"
mbvm_phase flood1
log "# the host sent client 2's flood"
mbvm_phase flood2

log "# the host's counters, as this VM sees them"
expect_out 0 "$MB" mbctl stats
mb_test_end
