#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# VLANs (W7 in docs/SECURITY.md). On a VLAN-filtering bridge a MAC address
# is unique only per VLAN: here a host "twin" in VLAN 20 has the
# middlebox's MAC. A registration bound to VLAN 10 (R F ... vlan 10) must
# filter the middlebox's frames in VLAN 10, untagged or tagged, and leave
# the twin's alone; frames the bridge's VLAN filter drops are not counted.
# A registration without a VLAN is not offloaded on a VLAN-filtering
# bridge at all (its frames pass, counted as unbound). On a bridge without
# VLAN filtering, both behave as before: the VLAN is not looked at.
#
#   mb    52:34:56:00:12:22 10.0.0.100   VLAN 10 (access)   the middlebox
#   h1    02:00:00:00:00:01 10.0.0.1     VLAN 10 (access)   sends to mb
#   twin  52:34:56:00:12:22 10.0.20.50   VLAN 20 (access)   not a middlebox
#   t1    02:00:00:00:00:21 10.0.20.1    VLAN 20 (access)   sends to twin;
#                                        eth0.10 10.0.10.21 (tagged 10,
#                                        which its port does not carry)
#   tr    02:00:00:00:00:31 trunk: VLANs 10 and 20 tagged, no PVID;
#                                        eth0.10 10.0.0.31, eth0.20 10.0.20.31
#          \        |        |        |        /
#           +------------- br0 (vlan_filtering 1) -------+
#
# The middlebox's rule: T 9 d 5000 p udp (UDP to port 5000 is dropped).
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/mb.sh"

MB=52:34:56:00:12:22
PROBE=$(dirname "$0")/nlprobe.py

mb_require_cmd mbadm nft socat jq bridge python3
mb_fresh_registry
mb_bridge_create
ip link set "$MB_BR" type bridge vlan_filtering 1

# access_host NS MAC IP VID: untagged member of VID only
access_host()
{
	local port

	mb_add_host "$1" "$2" "$3/24"
	port=$(mb_port "$1")
	bridge vlan del dev "$port" vid 1
	bridge vlan add dev "$port" vid "$4" pvid untagged
}

# vlan_if NS VID IP: a tagged interface eth0.VID in NS
vlan_if()
{
	ip -n "$1" link add link eth0 name "eth0.$2" type vlan id "$2"
	ip -n "$1" addr add "$3/24" dev "eth0.$2"
	ip -n "$1" link set "eth0.$2" up
}

access_host mb $MB 10.0.0.100 10
access_host h1 02:00:00:00:00:01 10.0.0.1 10
access_host twin $MB 10.0.20.50 20
access_host t1 02:00:00:00:00:21 10.0.20.1 20
mb_add_host tr 02:00:00:00:00:31 192.0.2.31/24
ip -n tr addr flush dev eth0
bridge vlan del dev "$(mb_port tr)" vid 1
bridge vlan add dev "$(mb_port tr)" vid 10
bridge vlan add dev "$(mb_port tr)" vid 20
vlan_if tr 10 10.0.0.31
vlan_if tr 20 10.0.20.31
# t1 speaks VLAN 10 tagged on a port that carries only VLAN 20: the bridge
# drops it. No ARP can answer, so the middlebox's MAC is given.
vlan_if t1 10 10.0.10.21
ip -n t1 neigh add 10.0.10.100 lladdr $MB dev eth0.10 nud permanent

arrivals_setup mb
arrivals_setup twin

# send NS IP PORT N: N datagrams
send()
{
	local i

	for ((i = 0; i < $4; i++)); do
		udp_send "$1" "$2" "$3"
	done
}

reset()
{
	reset_arrivals mb
	reset_arrivals twin
}

# The twin answers ARP in VLAN 20, the middlebox in VLAN 10: the frames
# below are unicast to 52:34:56:00:12:22 in both VLANs.
check_ok ping_ok h1 10.0.0.100
check_ok ping_ok t1 10.0.20.50
check_ok ping_ok tr 10.0.0.100
check_ok ping_ok tr 10.0.20.50
# No unicast ARP to 52:34:56:00:12:22 from now on: the frames to it are the
# ones the test sends, and their counts are exact. Both ways: the hosts'
# probes for mb and twin, and the replies to mb's and twin's own probes (a
# middlebox that answered a ping probes its neighbour some seconds later,
# and the unicast reply would be counted in whatever check runs then).
ip -n mb neigh replace 10.0.0.1 lladdr 02:00:00:00:00:01 dev eth0 nud permanent
ip -n mb neigh replace 10.0.0.31 lladdr 02:00:00:00:00:31 dev eth0 nud permanent
ip -n twin neigh replace 10.0.20.1 lladdr 02:00:00:00:00:21 dev eth0 nud permanent
ip -n twin neigh replace 10.0.20.31 lladdr 02:00:00:00:00:31 dev eth0 nud permanent
ip -n h1 neigh replace 10.0.0.100 lladdr $MB dev eth0 nud permanent
ip -n tr neigh replace 10.0.0.100 lladdr $MB dev eth0.10 nud permanent
ip -n t1 neigh replace 10.0.20.50 lladdr $MB dev eth0 nud permanent
ip -n tr neigh replace 10.0.20.50 lladdr $MB dev eth0.20 nud permanent

log "# a registration without a VLAN: not offloaded on this bridge"
check_ok mbadm cmd "R F $MB 10.0.0.100"
check_ok mbadm cmd "A $MB T 9 d 5000 p udp"
check_eq null "$(mb_json $MB .vlan)" "no VLAN in mbadm -j show"
check_ok sh -c "mbadm show $MB | grep -q 'vlan: none'"
reset
send t1 10.0.20.50 5000 1
check_eq 1 "$(arrivals twin udp_5000)" \
	"UDP to the twin in VLAN 20 arrives (not the middlebox's traffic)"
send h1 10.0.0.100 5000 2
check_eq 2 "$(arrivals mb udp_5000)" \
	"UDP to mb in VLAN 10 arrives too: an unbound registration is not offloaded"
check_eq 0 "$(rule_json $MB 0 .packets)" "frames counted on mb's rule"
check_eq 0 "$(mb_json $MB .stats.rx_packets)" "frames counted as received"
check_ge 3 "$(mb_json $MB .stats.unbound_packets)" \
	"frames counted as passed without a VLAN"

log "# bound to VLAN 10"
check_ok mbadm cmd "X $MB"
check_ok mbadm cmd "R F $MB 10.0.0.100 vlan 10"
check_ok mbadm cmd "A $MB T 9 d 5000 p udp"
check_eq 10 "$(mb_json $MB .vlan)" "VLAN in mbadm -j show"
check_ok sh -c "mbadm show $MB | grep -q '^  vlan: 10$'"
check_ok sh -c "mbadm cmd Q $MB | grep -q '^  vlan: 10$'"
reset
send h1 10.0.0.100 5000 2
check_eq 0 "$(arrivals mb udp_5000)" "UDP 5000 to mb in VLAN 10 dropped"
check_eq 2 "$(rule_json $MB 0 .packets)" "counted on mb's rule"
send h1 10.0.0.100 5002 1
check_eq 1 "$(arrivals mb udp_5002)" "UDP 5002 to mb in VLAN 10 arrives"
check_ok ping_ok h1 10.0.0.100

rx=$(mb_json $MB .stats.rx_packets)
send t1 10.0.20.50 5000 3
check_eq 3 "$(arrivals twin udp_5000)" "UDP 5000 to the twin in VLAN 20 arrives"
check_eq 2 "$(rule_json $MB 0 .packets)" "the twin's frames are not on mb's rule"
check_eq "$rx" "$(mb_json $MB .stats.rx_packets)" \
	"the twin's frames are not counted as received by mb"

log "# tagged frames on a trunk port"
reset
send tr 10.0.0.100 5000 2
check_eq 0 "$(arrivals mb udp_5000)" "UDP 5000 tagged VLAN 10 to mb dropped"
check_eq 4 "$(rule_json $MB 0 .packets)" "counted on mb's rule"
send tr 10.0.0.100 5001 1
check_eq 1 "$(arrivals mb udp_5001)" "UDP 5001 tagged VLAN 10 to mb arrives"
rx=$(mb_json $MB .stats.rx_packets)
send tr 10.0.20.50 5000 2
check_eq 2 "$(arrivals twin udp_5000)" \
	"UDP 5000 tagged VLAN 20 to the twin arrives"
check_eq 4 "$(rule_json $MB 0 .packets)" "not on mb's rule"
check_eq "$rx" "$(mb_json $MB .stats.rx_packets)" "not received by mb"

log "# frames the VLAN filter drops are not counted"
rx=$(mb_json $MB .stats.rx_packets)
send t1 10.0.10.100 5000 2
check_eq 0 "$(arrivals mb udp_5000)" \
	"UDP tagged VLAN 10 from a port without VLAN 10 does not arrive"
check_eq 4 "$(rule_json $MB 0 .packets)" "not on mb's rule"
check_eq "$rx" "$(mb_json $MB .stats.rx_packets)" "not received by mb"

log "# bad VLANs are refused, and change nothing"
before=$(mbadm -j show)
expect 2 "Unable to parse VLAN: \`0' (expected 1 to 4094)" \
	mbadm cmd "R F 02:00:00:00:77:01 10.0.0.200 vlan 0"
expect 2 "Unable to parse VLAN: \`4095' (expected 1 to 4094)" \
	mbadm cmd "R F 02:00:00:00:77:01 10.0.0.200 vlan 4095"
expect 2 "Unable to parse VLAN: \`ten'" \
	mbadm cmd "R F 02:00:00:00:77:01 10.0.0.200 vlan ten"
expect 2 "Option \`vlan' is given twice" \
	mbadm cmd "R F 02:00:00:00:77:01 10.0.0.200 vlan 10 vlan 10"
expect 2 "Missing value after \`vlan'" \
	mbadm cmd "R F 02:00:00:00:77:01 10.0.0.200 vlan"
expect 2 "Option \`vlan' belongs to the registration" \
	mbadm cmd "A $MB L 10.0.0.9 vlan 10"
expect 1 "bound to another VLAN" \
	mbadm cmd "R L $MB 10.0.0.100 0 0.0.0.0 10.0.0.9 vlan 20"
expect 1 "bound to a VLAN" \
	mbadm cmd "R L $MB 10.0.0.100 0 0.0.0.0 10.0.0.9"
check_ok python3 "$PROBE" vlan-malformed
check_eq "$(jq -c 'map(del(.stats, .rules))' <<<"$before")" \
	"$(mbadm -j show | jq -c 'map(del(.stats, .rules))')" \
	"registry unchanged (but counters)"
check_eq 1 "$(mbadm -j show | jq length)" "one middlebox registered"
# the same registration again, for the other service: accepted
check_ok mbadm cmd "R L $MB 10.0.0.100 0 0.0.0.0 10.0.0.9 vlan 10"
check_eq '["firewall","load-balancer"]' "$(mb_json $MB .services | jq -c .)" \
	"R L with the same VLAN adds the service"

log "# the load balancer in VLAN 10: the middlebox's port is learned in its VLAN"
# mblb opens flows only once it knows the port the middlebox's frames come
# from (never from that port: docs/SECURITY.md, A2). The twin sends with
# the same MAC in VLAN 20 from another port; it must not be taken for it.
access_host b1 02:00:00:00:00:11 10.0.0.11 10
ip netns exec b1 python3 "$MBVISOR_ROOT/tests/vm/lbpeer.py" serve b1 80 5000 \
	>/dev/null 2>&1 &
mb_defer kill $!
b1_listens()
{
	ip netns exec b1 ss -Hltn 'sport = :80' | grep -q .
}
mb_wait_for 20 b1_listens || mb_fail "b1's server did not start"
check_ok mbadm cmd "D $MB L 10.0.0.9"
check_ok mbadm cmd "A $MB L 10.0.0.11 mac 02:00:00:00:00:11"
check_ok ping_ok mb 10.0.0.1
check_ok ping_ok twin 10.0.20.1
check_eq "b1 10.0.0.1" \
	"$(ip netns exec h1 python3 "$MBVISOR_ROOT/tests/vm/lbpeer.py" connect 10.0.0.100 80 1)" \
	"h1's connection to the VIP in VLAN 10, served by"
check_eq 0 "$(mb_json $MB .lb.stats.mb_port_unknown)" "frames while the middlebox's port was unknown"
check_eq 0 "$(mb_json $MB .lb.stats.from_mb_port)" "frames from the middlebox's port"
check_eq 1 "$(mb_json $MB .lb.stats.new_flows)" "flows"
ns_destroy b1

log "# a bridge without VLAN filtering: as before, the VLAN is not looked at"
ns_destroy twin
ip link del "$(mb_port twin)" 2>/dev/null || true
ip link set "$MB_BR" type bridge vlan_filtering 0
check_ok ping_ok h1 10.0.0.100
for reg in "" " vlan 10"; do
	check_ok mbadm cmd "X $MB"
	check_ok mbadm cmd "R F $MB 10.0.0.100$reg"
	check_ok mbadm cmd "A $MB T 9 d 5000 p udp"
	reset_arrivals mb
	send h1 10.0.0.100 5000 2
	check_eq 0 "$(arrivals mb udp_5000)" \
		"R F ...$reg: UDP 5000 to mb dropped"
	check_eq 2 "$(rule_json $MB 0 .packets)" "R F ...$reg: on mb's rule"
	send h1 10.0.0.100 5002 1
	check_eq 1 "$(arrivals mb udp_5002)" "R F ...$reg: UDP 5002 arrives"
	check_eq 0 "$(mb_json $MB .stats.unbound_packets)" \
		"R F ...$reg: nothing counted as unbound"
done
mb_test_end
