#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# pktgen traffic into the bridge: a drop rule counts every frame exactly and
# none reaches the middlebox; then the modules are unloaded and reloaded,
# with registered state, while pktgen floods the bridge and netlink changes
# run. tests/vm/run fails the script on any oops, warning or new taint.
#
#   pg0 (pktgen, root ns) -- pg0p --+
#                                   br0 -- mb-mb -- netns mb (52:...:22)
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/mb.sh"

MB=52:34:56:00:12:22
PG=/proc/net/pktgen

mb_require_cmd mbadm nft jq
mb_fresh_registry
modprobe pktgen
mb_add_host mb $MB 10.0.0.100/24
arrivals_setup mb
ip link add pg0 type veth peer name pg0p
mb_defer ip link del pg0
ip link set pg0p master "$MB_BR" up
ip link set pg0 address 02:00:00:00:00:99 up
sysctl -qw net.ipv6.conf.pg0.disable_ipv6=1 net.ipv6.conf.pg0p.disable_ipv6=1

# pktgen_setup COUNT PORT: UDP frames of 64 bytes from pg0 to the middlebox
pktgen_setup()
{
	echo rem_device_all >$PG/kpktgend_0
	echo add_device pg0 >$PG/kpktgend_0
	{
		echo "count $1"
		echo "pkt_size 60"
		echo "delay 0"
		echo "dst_mac $MB"
		echo "dst_min 10.0.0.100"
		echo "dst_max 10.0.0.100"
		echo "src_min 10.0.0.9"
		echo "src_max 10.0.0.9"
		echo "udp_dst_min $2"
		echo "udp_dst_max $2"
	} | while read -r line; do echo "$line" >$PG/pg0; done
}

log "# every frame counted, none delivered"
check_ok mbadm cmd "R F $MB 10.0.0.100"
check_ok mbadm cmd "A $MB T 9 d 5000 p udp"
reset_arrivals mb
pktgen_setup 20000 5000
echo start >$PG/pgctrl
# pktgen returns once it has sent; the bridge may still be receiving (a
# busy machine): wait, bounded, for the count to reach what was sent
rule_count_is()
{
	[[ $(rule_json $MB 0 .packets) == "$1" ]]
}
mb_wait_for 60 rule_count_is 20000 || true
check_eq 20000 "$(rule_json $MB 0 .packets)" "frames dropped by the rule"
check_eq 20000 "$(mb_json $MB .stats.fw_drop_packets)" "middlebox drops"
check_eq 0 "$(arrivals mb udp_5000)" "frames that reached the middlebox"
log "# frames the rule does not match are delivered"
pktgen_setup 1000 5001
echo start >$PG/pgctrl
check_eq 1000 "$(arrivals mb udp_5001)" "frames to 5001 delivered"

log "# unload and reload under a flood, with state and netlink changes"
pktgen_setup 0 5000
echo start >$PG/pgctrl &
pg=$!
churn()
{
	local i=0

	while :; do
		mbadm cmd "A $MB T 9 d $((6000 + i % 50)) p udp" || true
		mbadm cmd "D $MB T 9 d $((6000 + (i + 25) % 50))" || true
		i=$((i + 1))
	done >/dev/null 2>&1
}
churn &
churner=$!
for cycle in 1 2 3 4 5; do
	sleep 1
	if [[ -e /sys/module/mblb ]]; then
		check_ok rmmod mblb
	fi
	check_ok rmmod mbfw
	check_ok rmmod mbhook
	check_ok rmmod mbstate
	sleep 0.5
	mb_load_modules
	check_ok mbadm cmd "R F $MB 10.0.0.100"
	check_ok mbadm cmd "A $MB T 9 d 5000 p udp"
	log "cycle $cycle done"
done
kill $churner
wait $churner 2>/dev/null || true
echo stop >$PG/pgctrl
wait $pg 2>/dev/null || true
check_ge 1 "$(mbadm -j show $MB |
	jq '[.[0].rules[] | select(.rule | endswith("d 5000 p udp"))][0].packets')" \
	"rule counting after the reloads"
mb_unload_modules
check_fail grep -q '^mb' /proc/modules
mb_test_end
