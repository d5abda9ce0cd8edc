#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Bridge ports and bridges added, removed and renamed under traffic, with a
# middlebox registered and its rules active: no oops (tests/vm/run checks
# the kernel log and taint), and afterwards the filtering is still exactly
# right (every frame of the drop rule counted and dropped, the others
# delivered), wherever the ports ended up.
#
#   pg0 (pktgen) -- pg0p --+                       +-- mb-mb -- netns mb (MB)
#                          br0 (renamed, recreated)
#   h1 -- mb-h1 -----------+  + extra ports, br1 (added, moved, renamed,
#                                deleted; VLAN filtering switched)
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/mb.sh"

MB=52:34:56:00:67:22
PG=/proc/net/pktgen
ROUNDS=${MBVISOR_CHURN_ROUNDS:-5}

mb_require_cmd mbadm nft jq
mb_fresh_registry
modprobe pktgen
mb_add_host mb $MB 10.0.0.100/24
mb_add_host h1 02:00:00:00:00:01 10.0.0.1/24
arrivals_setup mb
ip link add pg0 type veth peer name pg0p
mb_defer ip link del pg0
ip link set pg0p master "$MB_BR" up
ip link set pg0 address 02:00:00:00:00:99 up
sysctl -qw net.ipv6.conf.pg0.disable_ipv6=1 net.ipv6.conf.pg0p.disable_ipv6=1
mb_defer sh -c 'for d in br1 brx brz; do ip link del $d; done 2>/dev/null'
mb_defer sh -c 'for i in $(seq 0 7) r1; do ip link del xp$i; done 2>/dev/null'

check_ok mbadm cmd "R F $MB 10.0.0.100"
check_ok mbadm cmd "A $MB T 9 d 5000 p udp"
check_ok mbadm cmd "A $MB I 4 s 10.0.0.66"

# pktgen_setup COUNT PORT: UDP frames from pg0 to the middlebox
pktgen_setup()
{
	echo rem_device_all >$PG/kpktgend_0
	echo add_device pg0 >$PG/kpktgend_0
	for line in "count $1" "pkt_size 60" "delay ${3:-0}" "dst_mac $MB" \
		"dst_min 10.0.0.100" "dst_max 10.0.0.100" "src_min 10.0.0.9" \
		"src_max 10.0.0.9" "udp_dst_min $2" "udp_dst_max $2"; do
		echo "$line" >$PG/pg0
	done
}

# filtering_right TAG: 2000 frames to 5000 all dropped and counted, 500 to
# 5001 all delivered, h1 reaches the middlebox; counters from zero
filtering_right()
{
	local r0 d0

	reset_arrivals mb
	r0=$(mbadm -j show $MB | jq '.[0].rules[0].packets')
	d0=$(mb_json $MB .stats.fw_drop_packets)
	pktgen_setup 2000 5000
	echo start >$PG/pgctrl
	mb_wait_for 30 sh -c "[ \$(mbadm -j show $MB | jq '.[0].rules[0].packets') -ge $((r0 + 2000)) ]" || true
	check_eq $((r0 + 2000)) "$(mbadm -j show $MB | jq '.[0].rules[0].packets')" "$1: frames to 5000 counted by the rule"
	check_eq $((d0 + 2000)) "$(mb_json $MB .stats.fw_drop_packets)" "$1: middlebox drops"
	check_eq 0 "$(arrivals mb udp_5000)" "$1: frames to 5000 that reached the middlebox"
	pktgen_setup 500 5001
	echo start >$PG/pgctrl
	mb_wait_for 30 sh -c "[ \$(ip netns exec mb nft -j list counter netdev arrivals udp_5001 | jq '.nftables[] | select(.counter) | .counter.packets') -ge 500 ]" || true
	check_eq 500 "$(arrivals mb udp_5001)" "$1: frames to 5001 delivered"
	check_ok ping_ok h1 10.0.0.100
}

filtering_right before

log "# $ROUNDS rounds of bridge changes under a flood and pings"
pktgen_setup 0 5000 200000	# 5,000 frames a second at most
echo start >$PG/pgctrl &
pg=$!
ip netns exec h1 ping -q -i 0.05 10.0.0.100 >"/run/t67-ping.$$" 2>&1 &
pinger=$!
mb_defer rm -f "/run/t67-ping.$$"

t0=$SECONDS
ops=0
op()
{
	ops=$((ops + 1))
	"$@" 2>/dev/null || true
}
for ((r = 0; r < ROUNDS; r++)); do
	# extra ports come and go on br0
	for i in 0 1 2 3; do
		op ip link add xp$i type veth peer name xq$i
		op ip link set xp$i master br0 up
		op ip link set xq$i up
	done
	# a second bridge, with VLAN filtering some rounds
	op ip link add br1 type bridge stp_state 0 vlan_filtering $((r % 2))
	op ip link set br1 up
	# ports move between the bridges, the middlebox's and pktgen's too
	op ip link set xp1 master br1
	op ip link set xp2 nomaster
	if ((r % 3 == 0)); then
		op ip link set mb-mb master br1
		op ip link set pg0p master br1
		op ip link set mb-mb master br0
		op ip link set pg0p master br0
	fi
	# renames: a bridge with ports, a port, both while down
	op ip link set br1 down
	op ip link set br1 name brx
	op ip link set brx up
	op ip link set xp1 down
	op ip link set xp1 name xpr1
	op ip link set xpr1 up
	op ip link set xpr1 down
	op ip link set xpr1 name xp1
	if ((r % 4 == 1)); then
		# br0 itself, with the middlebox on it
		op ip link set br0 down
		op ip link set br0 name brz
		op ip link set brz up
		op ip link set brz down
		op ip link set brz name br0
		op ip link set br0 up
	fi
	if ((r % 5 == 2)); then
		# br0 deleted and made again: every port leaves at once
		op ip link del br0
		op ip link add br0 type bridge stp_state 0
		mb_no_ipv6 br0
		op ip link set br0 up
		op ip link set mb-mb master br0
		op ip link set mb-h1 master br0
		op ip link set pg0p master br0
	fi
	# a port deleted while enslaved, a bridge deleted with ports
	op ip link del xp0
	op ip link del brx
	for i in 1 2 3; do
		op ip link del xp$i
	done
done
secs=$((SECONDS - t0))
echo stop >$PG/pgctrl
wait $pg 2>/dev/null || true
kill $pinger
wait $pinger 2>/dev/null || true
log "$(tail -n 2 "/run/t67-ping.$$" | head -n 1)"

# where everything is now
check_eq br0 "$(basename "$(readlink /sys/class/net/mb-mb/master)")" "middlebox port on br0"
check_eq br0 "$(basename "$(readlink /sys/class/net/pg0p/master)")" "pktgen port on br0"
check_eq br0 "$(basename "$(readlink /sys/class/net/mb-h1/master)")" "h1 port on br0"
check_eq "" "$(ip -br link show type bridge | awk '$1 != "br0"')" "no other bridge left"
check_eq "true 2" "$(mb_json $MB .enabled) $(mb_json $MB .nrules)" "middlebox enabled, its 2 rules"
sleep 1
filtering_right after
log "FIGURES: $ROUNDS rounds, $ops bridge and port operations under traffic in ${secs} s, filtering right afterwards"
mb_test_end
