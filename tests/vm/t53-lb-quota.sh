#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Regression test of audit finding 7 (docs/SECURITY.md, A7), the flow
# table: it is shared by every namespace and VM, so each middlebox gets its
# own quota of it (mblb's max_flows_per_mb); one middlebox opening flows as
# fast as it can leaves the others theirs.
#
#   c1 02:..:01 10.0.0.1 (client)     mb1 52:..:22 10.0.0.100 -> backend b1
#                                     mb2 52:..:23 10.0.0.101 -> backend b1
#   b1 02:..:11 10.0.0.11
#        \            \            /
#         +------------+-- br0 --+
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/mb.sh"

MB1=52:34:56:00:12:22
MB2=52:34:56:00:12:23
C1=02:00:00:00:00:01
B1=02:00:00:00:00:11
P=/sys/module/mblb/parameters
RAW="python3 $MBVISOR_ROOT/tests/vm/rawframe.py"

mb_require_cmd mbadm jq python3
mb_fresh_registry
check_eq 16384 "$(cat $P/max_flows_per_mb)" "default quota"
mb_defer sh -c "echo 16384 >$P/max_flows_per_mb; echo 60 >$P/udp_timeout"
echo 4 >$P/max_flows_per_mb

mb_add_host c1 $C1 10.0.0.1/24
mb_add_host mb1 $MB1 10.0.0.100/24
mb_add_host mb2 $MB2 10.0.0.101/24
mb_add_host b1 $B1 10.0.0.11/24

flows()
{
	mbadm -j flows "$1" | jq length
}
lbstat()
{
	mbadm -j show "$1" | jq -r ".[0].lb.stats.$2"
}
# send MB VIP FIRST N: N UDP flows from c1 (source ports FIRST..)
send()
{
	local i

	for ((i = 0; i < $4; i++)); do
		ip netns exec c1 $RAW udp eth0 $C1 "$1" 10.0.0.1 "$2" $(($3 + i)) 5000
	done
	sleep 0.5
}

check_ok mbadm cmd "R L $MB1 10.0.0.100 0 0.0.0.0 10.0.0.11 mac $B1"
check_ok mbadm cmd "R L $MB2 10.0.0.101 0 0.0.0.0 10.0.0.11 mac $B1"
# the middleboxes' ports are known from their answers to the host's probe
send $MB1 10.0.0.100 4000 6
check_eq 0 "$(lbstat $MB1 mb_port_unknown)" "frames before mb1's port was known"
check_eq 4 "$(flows $MB1)" "mb1's flows, at its quota"
check_eq 2 "$(lbstat $MB1 over_quota)" "mb1's frames counted over quota"
# other source ports: the same ones would collide with mb1's flows at b1
send $MB2 10.0.0.101 6000 3
check_eq 3 "$(flows $MB2)" "mb2's flows while mb1 is at its quota"
check_eq 0 "$(lbstat $MB2 over_quota)" "mb2 over quota"
check_eq 0 "$(lbstat $MB1 table_full)" "table full"

log "# flows that end give their share back"
echo 1 >$P/udp_timeout
no_flows()
{
	(($(flows $MB1) == 0))
}
mb_wait_for 20 no_flows || mb_fail "mb1's flows did not end"
# long enough again for the new flows to outlive sending them
echo 60 >$P/udp_timeout
send $MB1 10.0.0.100 5000 2
check_eq 2 "$(flows $MB1)" "mb1's new flows once the old ones ended"
check_ok mbadm cmd "X $MB1"
check_ok mbadm cmd "X $MB2"
mb_test_end
