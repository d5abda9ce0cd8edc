#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The firewall offload with real traffic: each filter class of table 4.1
# drops exactly what it should at the bridge and forwards the rest; the
# report's examples; counters (per rule, and mbadm stats / -j stats against
# the frames sent); the enable switch; isolation between middleboxes.
#
#   netns h1 02:..:01 10.0.0.1      netns mb 52:34:56:00:12:22 10.0.0.100
#   netns h2 02:..:02 10.0.0.2      netns mb2 52:34:56:00:12:23 10.0.0.101
#         \        \                  /        /
#          +--------+---- br0 -------+--------+   (mbhook on br0's input)
#
# What reaches a middlebox is counted inside its namespace by an nftables
# netdev ingress chain on its eth0, so "dropped at the bridge" means "never
# arrived", not only "no reply".
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/mb.sh"

MB=52:34:56:00:12:22
MB2=52:34:56:00:12:23
H1=02:00:00:00:00:01
H2=02:00:00:00:00:02

mb_require_cmd mbadm nft socat jq
mb_fresh_registry
mb_add_host h1 $H1 10.0.0.1/24
mb_add_host h2 $H2 10.0.0.2/24
mb_add_host mb $MB 10.0.0.100/24
mb_add_host mb2 $MB2 10.0.0.101/24
arrivals_setup mb
arrivals_setup mb2

log "# before registration everything flows"
check_ok ping_ok h1 10.0.0.100
check_ok ping_ok h2 10.0.0.100

log "# the report's example: R F, then A ... M 5 s <MAC> p 8"
check_ok mbadm cmd "R F $MB 10.0.0.100"
check_ok mbadm cmd "R F $MB2 10.0.0.101"
check_ok mbadm cmd "A $MB M 5 s $H1 p 8"
check_eq 1 "$(mb_json "$MB" .nrules)" "rule count"
reset_arrivals mb
check_fail ping_ok h1 10.0.0.100
check_eq 0 "$(arrivals mb icmp_from_h1)" "h1's pings reaching mb"
check_eq 3 "$(rule_json "$MB" 0 .packets)" "packets counted on the rule"
check_eq $((3 * 98)) "$(rule_json "$MB" 0 .bytes)" "bytes counted on the rule"
check_eq 3 "$(mb_json "$MB" .stats.fw_drop_packets)" "middlebox drop counter"
check_ok ping_ok h2 10.0.0.100
check_eq 3 "$(arrivals mb icmp_from_h2)" "h2's pings reaching mb"
log "# ARP is not IPv4: h1 still resolves the middlebox"
ip -n h1 neigh flush all
ping_ok h1 10.0.0.100 || true
check_eq "$MB" "$(ip -n h1 neigh show 10.0.0.100 |
	awk '{ for (i = 1; i < NF; i++) if ($i == "lladdr") print $(i + 1) }')" \
	"h1's neighbour entry for mb"
log "# rules of mb do not touch traffic for mb2"
check_ok ping_ok h1 10.0.0.101

log "# D ... M 4 s stops filtering on the source MAC"
check_ok mbadm cmd "D $MB M 4 s"
check_eq 0 "$(mb_json "$MB" .nrules)" "rule count after D"
check_ok ping_ok h1 10.0.0.100
check_fail mbadm cmd "D $MB M 4 s"

log "# class I: source prefix"
check_ok mbadm cmd "A $MB I 4 s 10.0.0.0/31"
check_fail ping_ok h1 10.0.0.100
check_ok ping_ok h2 10.0.0.100
check_ok mbadm cmd "D $MB I 4 s 10.0.0.0/31"
log "# class I: protocol (ICMP dropped, TCP flows)"
check_ok mbadm cmd "A $MB I 1 p icmp"
check_fail ping_ok h2 10.0.0.100
check_ok tcp_ok h2 10.0.0.100 8080 mb
log "# class I: TOS"
check_ok mbadm cmd "D $MB I 1 p"
check_ok mbadm cmd "A $MB I 2 t 0x10"
check_fail ping_ok h2 10.0.0.100 -Q 0x10
check_ok ping_ok h2 10.0.0.100 -Q 0x08
check_ok mbadm cmd "D $MB I 2 t 0x10"

log "# class T: destination port range, TCP and UDP"
check_ok mbadm cmd "A $MB T 8 d 5000-5001"
reset_arrivals mb
udp_send h1 10.0.0.100 5000
udp_send h1 10.0.0.100 5001
udp_send h1 10.0.0.100 5002
check_eq 0 "$(arrivals mb udp_5000)" "UDP to 5000 reaching mb"
check_eq 0 "$(arrivals mb udp_5001)" "UDP to 5001 reaching mb"
check_eq 1 "$(arrivals mb udp_5002)" "UDP to 5002 reaching mb"
check_fail tcp_ok h1 10.0.0.100 5001 mb
check_ok tcp_ok h1 10.0.0.100 5002 mb
log "# class T: port and protocol"
check_ok mbadm cmd "A $MB T 9 d 7000 p udp"
reset_arrivals mb
udp_send h1 10.0.0.100 7000
check_eq 0 "$(arrivals mb udp_7000)" "UDP to 7000 reaching mb"
check_ok tcp_ok h1 10.0.0.100 7000 mb
log "# class T: source port"
check_ok mbadm cmd "A $MB T 4 s 4444"
check_fail tcp_ok h1 10.0.0.100 6000 mb 4444
check_ok tcp_ok h1 10.0.0.100 6000 mb 4445

log "# the enable switch: D <MAC> / A <MAC> keep the rules"
check_ok mbadm cmd "A $MB I 1 p icmp"
check_fail ping_ok h2 10.0.0.100
check_ok mbadm cmd "D $MB"
check_eq false "$(mb_json "$MB" .enabled)" "enabled after D"
check_ok ping_ok h2 10.0.0.100
check_eq 4 "$(mb_json "$MB" .nrules)" "rules kept while disabled"
check_ge 3 "$(mb_json "$MB" .stats.disabled_packets)" \
	"frames passed while disabled"
check_ok mbadm cmd "A $MB"
check_fail ping_ok h2 10.0.0.100

log "# X forgets the middlebox and everything it asked for"
check_ok mbadm cmd "X $MB"
check_ok ping_ok h2 10.0.0.100
check_fail mbadm show "$MB"
check_ok ping_ok h1 10.0.0.101

log "# mbadm stats and mbadm -j stats count exactly the traffic sent"
# A new registration starts at zero. h1 alone sends. Unicast ARP must stay
# out of the counts: mb answers each datagram with an ICMP error and would
# probe h1, and the entries h2 and mb hold for each other since the pings
# above go stale and send unicast probes (42-byte frames; a CI run counted
# two of them). So every pair that talked to mb gets permanent neighbour
# entries, and a second passes for a probe already on the wire. Each
# datagram is "datagram\n": 9 + 8 (UDP) + 20 (IPv4) + 14 (Ethernet) = 51
# bytes at the bridge.
FRAME=51
stat_json()
{
	mbadm -j stats | jq -r --arg mac "$1" ".[] | select(.mac == \$mac) | $2"
}
stat_text()
{
	# the line of MAC without the MAC, spaces squeezed
	mbadm stats | awk -v mac="$1" '$1 == mac { $1 = ""; print substr($0, 2) }'
}
ip -n h1 neigh replace 10.0.0.100 lladdr $MB dev eth0 nud permanent
ip -n h2 neigh replace 10.0.0.100 lladdr $MB dev eth0 nud permanent
ip -n mb neigh replace 10.0.0.1 lladdr $H1 dev eth0 nud permanent
ip -n mb neigh replace 10.0.0.2 lladdr $H2 dev eth0 nud permanent
sleep 1
check_ok mbadm cmd "R F $MB 10.0.0.100"
check_eq "10.0.0.100 0 0 0 0 0 0" "$(stat_text $MB)" "stats of a new registration"
check_ok mbadm cmd "A $MB T 8 d 5000"
reset_arrivals mb
for i in 1 2 3; do udp_send h1 10.0.0.100 5000; done
for i in 1 2; do udp_send h1 10.0.0.100 5002; done
check_eq 0 "$(arrivals mb udp_5000)" "UDP to 5000 reaching mb"
check_eq 2 "$(arrivals mb udp_5002)" "UDP to 5002 reaching mb"
check_eq 5 "$(stat_json $MB .rx_packets)" "-j stats: rx_packets"
check_eq $((5 * FRAME)) "$(stat_json $MB .rx_bytes)" "-j stats: rx_bytes"
check_eq 3 "$(stat_json $MB .fw_drop_packets)" "-j stats: fw_drop_packets"
check_eq $((3 * FRAME)) "$(stat_json $MB .fw_drop_bytes)" "-j stats: fw_drop_bytes"
check_eq 0 "$(stat_json $MB .disabled_packets)" "-j stats: disabled_packets"
check_eq 1 "$(stat_json $MB .nrules)" "-j stats: nrules"
check_eq 10.0.0.100 "$(stat_json $MB .ip)" "-j stats: ip"
check_eq null "$(stat_json $MB .lb)" "-j stats: no load balancer"
check_eq "10.0.0.100 5 $((5 * FRAME)) 3 $((3 * FRAME)) 0 1" "$(stat_text $MB)" \
	"stats: the middlebox's line"
check_eq 3 "$(rule_json "$MB" 0 .packets)" "the rule's own packet counter"
check_eq 0 "$(stat_json $MB2 .fw_drop_packets)" "-j stats: mb2 (no rule) dropped nothing"
check_ok sh -c "mbadm stats | head -n 1 | grep -q '^MAC  *IP  *RX_PACKETS  *RX_BYTES  *DROP_PACKETS  *DROP_BYTES  *DISABLED  *RULES$'"
log "# while disabled, frames are counted as passed, not dropped"
check_ok mbadm cmd "D $MB"
for i in 1 2; do udp_send h1 10.0.0.100 5000; done
check_eq 2 "$(arrivals mb udp_5000)" "UDP to 5000 reaching mb while disabled"
check_eq "10.0.0.100 7 $((7 * FRAME)) 3 $((3 * FRAME)) 2 1" "$(stat_text $MB)" \
	"stats after 2 datagrams while disabled"
check_eq 2 "$(stat_json $MB .disabled_packets)" "-j stats: disabled_packets"
check_ok mbadm cmd "X $MB"
check_eq "" "$(stat_text $MB)" "stats: no line once unregistered"
for ns_ip in h1:10.0.0.100 h2:10.0.0.100 mb:10.0.0.1 mb:10.0.0.2; do
	ip -n "${ns_ip%%:*}" neigh del "${ns_ip#*:}" dev eth0
done

mb_test_end
