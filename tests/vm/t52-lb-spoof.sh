#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Regression tests of audit findings 2 (b, c) and 3 (docs/SECURITY.md, A2
# and A3): the load balancer against spoofing neighbours, in the kernel.
#
#   c1 02:..:01 10.0.0.1 (client)        b1 02:..:11 10.0.0.11 (backend)
#   mb 52:34:56:00:12:22 10.0.0.100      b2 02:..:12 10.0.0.12 (backend,
#      (the middlebox, hostile here)        silent until probed)
#   x  02:..:66 10.0.0.66 (a hostile neighbour)
#        \        \        \        /        /
#         +--------+--------+ br0 +--------+
#
# 1. prompt learning: right after `R L ... 10.0.0.12', b2 having sent
#    nothing, the first connection to the VIP is served by b2 (the host
#    probes for the backend's MAC at registration).
# 2. poisoning: x's ARP claiming b1's address (with its own MAC, with b1's
#    MAC as the ARP sender, and with b1's MAC as both the sender and the
#    frame's source) does not change b1's learned MAC, and new flows still
#    go to b1.
# 3. a frame from the middlebox's own port never opens a flow, whatever
#    source it claims (c1's MAC and address here).
# 4. the return path rewrites only the backend's own frames: x sending as
#    b1 (b1's address, then b1's address and MAC) gets nothing rewritten to
#    look like the VIP's; for a learned MAC and for a static one.
# 5. the middlebox's port, once known, is not moved by a frame with its MAC
#    from another port; a backend re-created on a new port (a restarted VM)
#    is learned and served there.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/mb.sh"

MB=52:34:56:00:12:22
VIP=10.0.0.100
C1=02:00:00:00:00:01
B1=02:00:00:00:00:11
B2=02:00:00:00:00:12
X=02:00:00:00:00:66
PEER="python3 $MBVISOR_ROOT/tests/vm/lbpeer.py"
RAW="python3 $MBVISOR_ROOT/tests/vm/rawframe.py"

mb_require_cmd mbadm nft jq python3
mb_fresh_registry

mb_add_host c1 $C1 10.0.0.1/24
mb_add_host mb $MB $VIP/24
mb_add_host b1 $B1 10.0.0.11/24
mb_add_host b2 $B2 10.0.0.12/24
mb_add_host x $X 10.0.0.66/24
for b in b1 b2; do
	ip netns exec $b $PEER serve $b 80 5000 >/dev/null 2>&1 &
	mb_defer kill $!
done
for b in b1 b2; do
	mb_wait_for 20 ip netns exec $b sh -c "ss -Hltn 'sport = :80' | grep -q ." ||
		mb_fail "$b's server did not start"
done

# What c1 receives as from the VIP (rewritten by mblb_post) and as from
# b1's address (not rewritten), on UDP port 5555.
ip netns exec c1 nft -f - <<EOF
table netdev cin {
	counter as_vip { }
	counter as_b1 { }
	chain in {
		type filter hook ingress device eth0 priority 0;
		ether saddr $MB ip saddr $VIP udp dport 5555-5556 counter name as_vip
		ip saddr 10.0.0.11 udp dport 5555-5556 counter name as_b1
	}
}
EOF
cin()
{
	ip netns exec c1 nft -j list counter netdev cin "$1" |
		jq '.nftables[] | select(.counter) | .counter.packets'
}
be()
{
	mbadm -j show $MB | jq -r ".[0].lb.backends[] | select(.ip == \"$1\") | $2"
}
lbstat()
{
	mbadm -j show $MB | jq -r ".[0].lb.stats.$1"
}
flows_from()
{
	mbadm -j flows $MB | jq "[.[] | select(.client_ip == \"$1\" and .client_port == $2)] | length"
}

log "# A3: the first connection after R L reaches a backend that never spoke"
check_ok mbadm cmd "R L $MB $VIP 0 0.0.0.0 10.0.0.12"
check_eq "b2 10.0.0.1" "$(ip netns exec c1 $PEER connect $VIP 80 1)" \
	"the first connection, served by"
check_eq learned "$(be 10.0.0.12 .mac_source)" "b2's MAC source"
check_eq $B2 "$(be 10.0.0.12 .mac)" "b2's MAC"
check_eq 0 "$(lbstat mac_unknown)" "connections passed to the middlebox: MAC unknown"
check_ok mbadm cmd "X $MB"

check_ok mbadm cmd "R L $MB $VIP 0 0.0.0.0 10.0.0.11"
check_eq "b1 10.0.0.1" "$(ip netns exec c1 $PEER connect $VIP 80 1)" "a connection, served by"
check_eq $B1 "$(be 10.0.0.11 .mac)" "b1's MAC"

log "# A3: another port claiming the backend's address teaches nothing"
check_ok ip netns exec x $RAW arp eth0 $X reply $X 10.0.0.11 10.0.0.1
check_ok ip netns exec x $RAW arp eth0 $X request $X 10.0.0.11 10.0.0.1
# with b1's MAC as the ARP sender (not the frame's source), then as both
check_ok ip netns exec x $RAW arp eth0 $X reply $B1 10.0.0.11 10.0.0.1
check_ok ip netns exec x $RAW arp eth0 $B1 reply $B1 10.0.0.11 10.0.0.1
sleep 0.5
check_eq $B1 "$(be 10.0.0.11 .mac)" "b1's MAC after x's ARP"
ping_ok b1 10.0.0.1 || true	# the bridge's FDB: b1's MAC back on its port
check_eq "b1 10.0.0.1" "$(ip netns exec c1 $PEER connect $VIP 80 1)" \
	"a new connection after x's ARP, served by"
# b1 itself moving to a new MAC on its own port is still followed
check_ok ip netns exec b1 $RAW arp eth0 02:00:00:00:00:21 reply 02:00:00:00:00:21 10.0.0.11 10.0.0.1
sleep 0.5
check_eq 02:00:00:00:00:21 "$(be 10.0.0.11 .mac)" "b1's MAC, changed by b1's own ARP"
check_ok ip netns exec b1 $RAW arp eth0 $B1 reply $B1 10.0.0.11 10.0.0.1
sleep 0.5
check_eq $B1 "$(be 10.0.0.11 .mac)" "b1's MAC, back"

log "# A2 (b): the middlebox's own port opens no flow, whatever it claims"
check_ge 1 "$(mbadm -j show $MB | jq '.[0].lb.backends | length')" "backends"
nf0=$(lbstat new_flows)
check_ok ip netns exec mb $RAW udp eth0 $C1 $MB 10.0.0.1 $VIP 4444 5000 3
sleep 0.5
check_eq 0 "$(flows_from 10.0.0.1 4444)" "flows made up by the middlebox"
check_eq "$nf0" "$(lbstat new_flows)" "new flows"
check_eq 3 "$(lbstat from_mb_port)" "frames counted as from the middlebox's port"
# the same frame from c1's own port opens its flow
check_ok ip netns exec c1 $RAW udp eth0 $C1 $MB 10.0.0.1 $VIP 4444 5000 1
sleep 0.5
check_eq 1 "$(flows_from 10.0.0.1 4444)" "the same flow, sent by c1"

# replies_only_from_b1 WHAT PORT: c1's exchange with the VIP (UDP PORT to
# 5000) opens a flow to b1, whose reply comes back as the VIP's; then x, from its
# own port, sends as b1 (b1's address, then b1's address and MAC), and
# nothing of it is rewritten; b1's own frame still is.
replies_only_from_b1()
{
	local out port=$2

	ip netns exec c1 nft reset counters table netdev cin >/dev/null
	out=$(ip netns exec c1 python3 -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('0.0.0.0', $port))
s.settimeout(10)
s.sendto(b'hello', ('$VIP', 5000))
data, addr = s.recvfrom(100)
print(addr[0], data.decode())
")
	check_eq "$VIP b1 10.0.0.1 hello" "$out" "$1: c1's exchange with the VIP"
	check_eq 1 "$(cin as_vip)" "$1: replies rewritten for the flow"
	ip netns exec c1 nft reset counters table netdev cin >/dev/null
	check_ok ip netns exec x $RAW udp eth0 $X $C1 10.0.0.11 10.0.0.1 5000 $port 2
	check_ok ip netns exec x $RAW udp eth0 $B1 $C1 10.0.0.11 10.0.0.1 5000 $port 2
	sleep 0.5
	check_eq 0 "$(cin as_vip)" "$1: x's frames rewritten as the VIP's"
	check_eq 4 "$(cin as_b1)" "$1: x's frames reaching c1 as they were sent"
	# b1 speaks again (its MAC back on its port); its replies are still
	# rewritten
	ping_ok b1 10.0.0.1 || true
	check_ok ip netns exec b1 $RAW udp eth0 $B1 $C1 10.0.0.11 10.0.0.1 5000 $port 1
	sleep 0.5
	check_eq 1 "$(cin as_vip)" "$1: b1's own frame, rewritten"
}

log "# A2 (c): only the backend's own frames come back as the VIP's"
replies_only_from_b1 "learned MAC" 5555

log "# A2 (b): the middlebox's port stays its own: its MAC from x's port moves nothing"
check_ok ip netns exec x $RAW udp eth0 $MB $C1 $VIP 10.0.0.1 4445 5000 1
ff=$(lbstat from_mb_port)
check_ok ip netns exec mb $RAW udp eth0 $C1 $MB 10.0.0.1 $VIP 4446 5000 2
sleep 0.5
check_eq 0 "$(flows_from 10.0.0.1 4446)" "flows made up by the middlebox after x sent with its MAC"
check_eq $((ff + 2)) "$(lbstat from_mb_port)" "frames counted as from the middlebox's port"
ping_ok mb 10.0.0.1 || true	# the bridge's FDB: the middlebox's MAC back

log "# A3: a backend re-created on a new port (a restarted VM) is learned there"
ip link del "$(mb_port b1)"
mb_add_host b1 $B1 10.0.0.11/24
check_ok ping_ok b1 10.0.0.1
check_eq "b1 10.0.0.1" "$(ip netns exec c1 $PEER connect $VIP 80 1)" \
	"a connection after b1's port was re-created, served by"

log "# A2 (c): a static MAC is bound to the backend's port too"
check_ok mbadm cmd "X $MB"
check_ok mbadm cmd "R L $MB $VIP 0 0.0.0.0 10.0.0.11 mac $B1"
# a new flow (another client port): the flows of the first configuration
# drain with its backend object
replies_only_from_b1 "static MAC" 5556
check_ok mbadm cmd "X $MB"
mb_test_end
