#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The whole story, with a real middlebox VM: this guest plays the KVM host
# (bridge, mbstate/mbhook/mbfw, mbhostd) and starts a middlebox VM inside
# it (QEMU in QEMU, TCG: a minute or two to boot). In the VM, mbctl writes
# the report's commands into the ivshmem-doorbell device (mbshm.ko); here,
# mbhostd checks them and hands them to the registry; client 1's frames
# are then dropped at the bridge and the middlebox's NIC neither receives
# them nor takes an interrupt for them, while client 2's still arrive.
#
#   netns c1  02:00:00:00:00:01 10.0.0.1 --+
#   netns c2  02:00:00:00:00:02 10.0.0.2 --+-- br0 (mbhook, mbfw) -- mbvm-tap0
#   pg0 (pktgen, plays c1 or c2)         --+                              |
#                                                       middlebox VM eth0 |
#   mbhostd --vm mbvm --mac MB --socket S  <== ivshmem-doorbell ==> mbctl
#
# The middlebox VM's half is tests/vm/mbvm/middlebox-fw.sh; the two halves
# meet at the phases of tests/vm/mbvm/mbvm.sh (the VM reports its NIC's
# counters, this side sends the traffic of that phase).
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/mb.sh"
source "$(dirname "$0")/mbvm/mbvm.sh"

MB=$MBVM_MAC
C1=02:00:00:00:00:01
C2=02:00:00:00:00:02
OTHER=52:34:56:00:12:99
N=1000		# frames of client 1's flood (dropped at the bridge)
N2=200		# frames of client 2's (each costs the nested VM a receive)

mb_require_cmd mbadm mbhostd qemu-system-x86_64 jq
mb_fresh_registry

mb_add_host c1 $C1 10.0.0.1/24
mb_add_host c2 $C2 10.0.0.2/24
ip link add pg0 type veth peer name pg0p
mb_defer ip link del pg0
mb_no_ipv6 pg0
mb_no_ipv6 pg0p
ip link set pg0p master "$MB_BR" up
ip link set pg0 up

# flood MAC IP COUNT: frames from MAC and IP to the middlebox, 1000 a
# second (a rate the nested VM takes without loss)
flood()
{
	pg_flood pg0 "$1" $MB "$2" 10.0.0.100 "$3" 1000000
}

# get VAR COUNTERS: the value of VAR (rx or irq) in "rx=N irq=M"
get()
{
	tr ' ' '\n' <<<"$2" | sed -n "s/^$1=//p"
}

log "# mbhostd serves the middlebox VM's ivshmem-doorbell device, bound to $MB"
mbvm_hostd $MB || mb_test_end
mbvm_start "$MBVISOR_ROOT/tests/vm/mbvm/middlebox-fw.sh"
log "# the middlebox VM boots (QEMU inside this guest)"
c=$(mbvm_wait before "${MBVISOR_MBVM_BOOT_TIMEOUT:-1200}") || { mb_fail "the middlebox VM did not come up"; mb_test_end; }
log "middlebox VM up; its NIC: $c"
# the nested VM answers slowly: wait up to 10 s for the last reply
check_ok ping_ok c1 10.0.0.100 -c 5 -W 10
check_ok ping_ok c2 10.0.0.100 -c 5 -W 10
check_eq "" "$(mbadm show $MB 2>/dev/null)" "the registry before the VM spoke"
mbvm_go before

log "# in the VM, mbctl registers and offloads the report's filter"
c0=$(mbvm_wait offloaded 900) || { mb_fail "no offload phase"; mb_test_end; }
check_eq "M 5 s $C1 p ipv4" "$(rule_json $MB 0 .rule)" "the rule mbhostd installed"
check_eq "10.0.0.100 true" "$(mb_json $MB ' | .ip + " " + (.enabled | tostring)')" \
	"the middlebox as registered"
check_eq "" "$(mbadm show $OTHER 2>/dev/null)" "another VM's MAC was not registered"
check_ok grep -q "vm mbvm: doorbell rung" "$MBVM_DIR/hostd.log"
check_ok grep -q "refused: .* names $OTHER" "$MBVM_DIR/hostd.log"

log "# client 1's flood: dropped at the bridge"
flood $C1 10.0.0.1 $N
mbvm_go offloaded
c1=$(mbvm_wait flood1 900) || { mb_fail "no flood1 phase"; mb_test_end; }
log "middlebox NIC before: $c0, after: $c1"
check_eq 0 $(($(get rx "$c1") - $(get rx "$c0"))) \
	"frames of client 1's flood that the middlebox's NIC received"
check_eq 0 $(($(get irq "$c1") - $(get irq "$c0"))) \
	"NIC interrupts the middlebox took for them"
check_eq $N "$(rule_json $MB 0 .packets)" "frames the rule dropped at the bridge"

log "# client 2's flood: not filtered, it reaches the middlebox"
flood $C2 10.0.0.2 $N2
mbvm_go flood1
c2=$(mbvm_wait flood2 900) || { mb_fail "no flood2 phase"; mb_test_end; }
log "middlebox NIC before: $c1, after: $c2"
check_ge $((N2 / 10)) $(($(get rx "$c2") - $(get rx "$c1"))) \
	"frames of client 2's flood that the middlebox's NIC received"
check_ge 1 $(($(get irq "$c2") - $(get irq "$c1"))) \
	"NIC interrupts the middlebox took for them"

log "# pings: client 1's dropped at the bridge, client 2's answered"
check_fail ping_ok c1 10.0.0.100 -c 5 -W 10
check_ok ping_ok c2 10.0.0.100 -c 5 -W 10
mbvm_go flood2

mbvm_finish
log "# mbhostd's log"
sed 's/^/    /' "$MBVM_DIR/hostd.log"
mb_test_end
