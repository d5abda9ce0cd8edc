#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Regression test of audit finding 8 (docs/SECURITY.md, A8): mblb's flow
# collector against a namespace's teardown.
#
#   netns lbN (created and destroyed ROUNDS times)     netns cN
#   +-------------------------------------------+     +---------------+
#   | br0 -- c0p  <======= veth =======>  c0     |     | udpflood.py:  |
#   |  \--- m0p -- m0 (MB, 10.0.0.100: the VIP) |     | a new source  |
#   | mbstate: R L MB 10.0.0.100 -> 10.0.0.11   |     | port for each |
#   |   (static backend MAC)                    |     | datagram      |
#   +-------------------------------------------+     +---------------+
#
# Each datagram is a new flow, and with udp_timeout=0 each flow is ended by
# the collector's next run: it unlinks flows, waits a grace period and only
# then gives back their backend references (mbstate_lb_backend_put(), which
# writes into the namespace's registry). lbN is deleted while the flood
# runs. Before the fix mblb_net_exit() did not see the flows the collector
# had unlinked and not yet released, so the namespace's registry could be
# freed under the collector. The test then has SLUB check every cache
# (/sys/kernel/slab/*/validate: a write to freed, poisoned memory is
# reported as "BUG ... Poison overwritten", which fails the script), and
# checks that every backend object and flow went (mblb unloads cleanly,
# nothing leaked in the root namespace).
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/mb.sh"

MB=52:34:56:00:12:22
BE=02:00:00:00:00:11
ROUNDS=${MBVISOR_T13_ROUNDS:-10}
P=/sys/module/mblb/parameters

mb_require_cmd mbadm jq python3
mb_fresh_registry
old_timeout=$(cat $P/udp_timeout)
mb_defer sh -c "echo $old_timeout >$P/udp_timeout"
echo 0 >$P/udp_timeout

dir=$(mktemp -d /run/mbvisor-t13.XXXXXX)
mb_defer rm -rf "$dir"
cat >"$dir/udpflood.py" <<'EOF'
import socket, sys, time
# a new socket (a new ephemeral source port: a new flow) per datagram
end = time.monotonic() + float(sys.argv[2])
n = 0
while time.monotonic() < end:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.sendto(b"x", (sys.argv[1], 5000))
        n += 1
    except OSError:
        time.sleep(0.01)	# the veth went with its namespace
    s.close()
print(n)
EOF

new_flows()
{
	ip netns exec "$1" mbadm -j show $MB | jq '.[0].lb.stats.new_flows // 0'
}

total=0
for ((r = 1; r <= ROUNDS; r++)); do
	ns=lb$r c=c$r
	ip netns add $ns
	ip netns add $c
	ip -n $ns link add br0 type bridge stp_state 0
	ip -n $ns link add c0p type veth peer name c0 netns $c
	# the middlebox: lbN's own stack on m0, answering ARP for the VIP
	ip -n $ns link add m0p type veth peer name m0
	ip -n $ns link set m0 address $MB
	ip -n $ns addr add 10.0.0.100/24 dev m0
	for p in c0p m0p; do
		ip -n $ns link set $p master br0
		ip -n $ns link set $p up
	done
	ip -n $ns link set m0 up
	ip -n $ns link set br0 up
	ip -n $c link set lo up
	ip -n $c addr add 10.0.0.1/24 dev c0
	ip -n $c link set c0 up
	ip netns exec $ns mbadm cmd "R L $MB 10.0.0.100 0 0.0.0.0 10.0.0.11 mac $BE" ||
		mb_fail "round $r: R L in $ns"
	ip netns exec $c python3 "$dir/udpflood.py" 10.0.0.100 30 >"$dir/flood.$r" &
	flood=$!
	# flows are being created and collected: the namespace goes now
	mb_wait_for 20 sh -c "[ \$(ip netns exec $ns mbadm -j show $MB | jq '.[0].lb.stats.new_flows // 0') -ge 50 ]" ||
		mb_fail "round $r: no flows created"
	total=$((total + $(new_flows $ns)))
	ip netns del $ns
	sleep 0.$((RANDOM % 10))
	kill $flood 2>/dev/null || true
	wait $flood 2>/dev/null || true
	ip netns del $c
done
log "$total flows created in $ROUNDS namespaces deleted under traffic"
check_ge $((ROUNDS * 50)) "$total" "flows created"

# every namespace's cleanup has run (they are asynchronous)
gone()
{
	! ip netns list | grep -q '^lb' && (($(awk '{ print $1 }' /sys/module/mblb/refcnt) == 0))
}
mb_wait_for 60 gone || mb_fail "namespaces or mblb references left"
sleep 3	# two more collector runs
for v in /sys/kernel/slab/*/validate; do
	echo 1 >"$v" 2>/dev/null || true
done
check_eq "[]" "$(mbadm -j show | jq -c .)" "root namespace's registry untouched"
check_ok rmmod mblb
mb_load_modules
mb_test_end
