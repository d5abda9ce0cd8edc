#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Coexistence: mbvisor on a bridge that also runs br_netfilter with
# conntrack, an nftables bridge table and an nftables ip table of its own
# (reached through br_netfilter), VLAN filtering with access and tagged
# ports, and IPv6. The same traffic is sent twice: first with mbvisor's
# modules unloaded, then with them loaded and three middleboxes' rules in
# place. The firewall must drop exactly what its rules say; everything else,
# nftables' own drops, VLAN separation and IPv6 included, must come out
# exactly as it did without mbvisor.
#
#   VLAN 10 (access ports)          VLAN 20 (tagged ports: eth0.20 inside)
#   h1  02:..:01 10.0.0.1  fd10::1  t1   02:..:21 10.0.20.1   fd20::1
#   h2  02:..:02 10.0.0.2  fd10::2  t2   02:..:22 10.0.20.2   fd20::2
#   mb  52:..:22 10.0.0.100 fd10::100  mbt 52:..:23 10.0.20.100 (middlebox)
#                                   twin 52:..:22 10.0.20.50 fd20::50 (access
#                                        port, the MAC of mb: not a middlebox)
#   VLAN 30 (access port)
#   h3  02:..:03 10.0.0.3 (h1's subnet, other VLAN: unreachable)
#        \    \    \    \                 /    /    /    /
#         +----+----+----+---- br0 ------+----+----+----+
#                     vlan_filtering 1, br_netfilter (iptables and
#                     ip6tables calls on), conntrack, nft tables:
#                     bridge "coexist" (prerouting -200, forward 0),
#                     ip "coexist" (prerouting ct counter, forward drop)
#
# The middleboxes are bound to their VLANs (R F ... vlan 10, vlan 20): the
# twin in VLAN 20, which has mb's MAC, must get its datagram to port 5000
# (W7 in docs/SECURITY.md; tests/vm/t75-vlan.sh has the details).
#
# mbvisor's rules:  mb (VLAN 10):  I 5 s 10.0.0.1 p icmp    T 9 d 5000 p udp
#                   mbt (VLAN 20): I 1 p icmp
set -euo pipefail
export MB_IPV6=1
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/mb.sh"

MB=52:34:56:00:12:22
MBT=52:34:56:00:12:23

mb_require_cmd mbadm nft socat jq bridge
if ! modprobe br_netfilter; then
	mb_fail "modprobe br_netfilter"
	mb_test_end
fi
mb_defer modprobe -r br_netfilter
mb_defer sysctl -qw net.bridge.bridge-nf-call-iptables=0 \
	net.bridge.bridge-nf-call-ip6tables=0
sysctl -qw net.bridge.bridge-nf-call-iptables=1 \
	net.bridge.bridge-nf-call-ip6tables=1

mb_bridge_create
ip link set "$MB_BR" type bridge vlan_filtering 1

# access_host NS MAC IPV4 IPV6 VID: untagged member of VID only
access_host()
{
	local port

	mb_add_host "$1" "$2" "$3/24"
	ip -n "$1" -6 addr add "$4/64" dev eth0 nodad
	port=$(mb_port "$1")
	bridge vlan del dev "$port" vid 1
	bridge vlan add dev "$port" vid "$5" pvid untagged
}

# tagged_host NS MAC IPV4 IPV6: the port carries VLAN 20 tagged only; the
# host speaks through eth0.20
tagged_host()
{
	local port

	mb_add_host "$1" "$2" "$3/24"
	ip -n "$1" addr flush dev eth0
	ip -n "$1" link add link eth0 name eth0.20 type vlan id 20
	ip -n "$1" addr add "$3/24" dev eth0.20
	[[ -n $4 ]] && ip -n "$1" -6 addr add "$4/64" dev eth0.20 nodad
	ip -n "$1" link set eth0.20 up
	port=$(mb_port "$1")
	bridge vlan del dev "$port" vid 1
	bridge vlan add dev "$port" vid 20
}

access_host h1 02:00:00:00:00:01 10.0.0.1 fd10::1 10
access_host h2 02:00:00:00:00:02 10.0.0.2 fd10::2 10
access_host mb $MB 10.0.0.100 fd10::100 10
access_host h3 02:00:00:00:00:03 10.0.0.3 fd10::3 30
access_host twin $MB 10.0.20.50 fd20::50 20
tagged_host t1 02:00:00:00:00:21 10.0.20.1 fd20::1
tagged_host t2 02:00:00:00:00:22 10.0.20.2 fd20::2
tagged_host mbt $MBT 10.0.20.100 ""

# nftables of its own on the bridge: a drop in the bridge family before
# br_netfilter, a drop in the ip family through br_netfilter, and conntrack.
nft -f - <<-EOF
	table bridge coexist {
		counter drop_udp5001 { }
		counter fwd_vlan20 { }
		chain pre {
			type filter hook prerouting priority -200;
			ip saddr 10.0.0.2 udp dport 5001 counter name drop_udp5001 drop
		}
		chain forwarding {
			type filter hook forward priority 0;
			vlan id 20 counter name fwd_vlan20
		}
	}
	table ip coexist {
		counter drop_tcp9090 { }
		chain pre {
			type filter hook prerouting priority 0;
			ct state new counter
		}
		chain forwarding {
			type filter hook forward priority 0;
			tcp dport 9090 counter name drop_tcp9090 drop
		}
	}
EOF
mb_defer nft delete table bridge coexist
mb_defer nft delete table ip coexist

# What reaches the receivers, counted at their eth0 before their own stack.
arrivals_setup mb
arrivals_setup twin
for ns in mb; do
	ip netns exec "$ns" nft -f - <<-EOF
		table netdev seen {
			counter udp6_5000 { }
			counter udp_5000 { }
			chain in {
				type filter hook ingress device eth0 priority 0;
				meta protocol ip6 udp dport 5000 counter name udp6_5000
				meta protocol ip udp dport 5000 counter name udp_5000
			}
		}
	EOF
done

seen()
{
	ip netns exec "$1" nft -j list counter netdev seen "$2" |
		jq '.nftables[] | select(.counter) | .counter.packets'
}

nft_counter()
{
	nft -j list counter "$1" coexist "$2" |
		jq '.nftables[] | select(.counter) | .counter.packets'
}

# udp_from NS DEST PORT SPORT: one datagram from a fixed source port
udp_from()
{
	local dest=$2

	[[ $dest == *:* ]] && dest="[$dest]"	# IPv6
	echo datagram | ip netns exec "$1" socat -u - \
		"UDP-SENDTO:$dest:$3,sourceport=$4,reuseaddr"
	sleep 0.3
}

# conntrack_has PATTERN: an entry of the root namespace (the bridge's)
conntrack_has()
{
	grep -q -- "$1" /proc/net/nf_conntrack
}

yesno()
{
	if "$@"; then echo yes; else echo no; fi
}

# The traffic, one result per line: "name value". $1: source port of this
# phase's datagrams (so that conntrack entries of the phases differ).
traffic()
{
	local sp=$1

	nft reset counters table bridge coexist >/dev/null
	nft reset counters table ip coexist >/dev/null
	reset_arrivals mb
	reset_arrivals twin
	for ns in mb; do
		ip netns exec "$ns" nft reset counters table netdev seen >/dev/null
	done

	echo "v4_ping_h1_mb $(yesno ping_ok h1 10.0.0.100)"
	echo "v4_ping_h2_mb $(yesno ping_ok h2 10.0.0.100)"
	echo "v4_tcp_h1_mb $(yesno tcp_ok h1 10.0.0.100 8080 mb)"
	udp_from h1 10.0.0.100 5000 "$sp"
	echo "v4_udp5000_h1_mb $(arrivals mb udp_5000)"
	echo "ct_udp5000_h1_mb $(yesno conntrack_has \
		"src=10.0.0.1 dst=10.0.0.100 sport=$sp dport=5000 ")"
	udp_from h1 10.0.0.100 5002 "$sp"
	echo "v4_udp5002_h1_mb $(arrivals mb udp_5002)"
	echo "ct_udp5002_h1_mb $(yesno conntrack_has \
		"src=10.0.0.1 dst=10.0.0.100 sport=$sp dport=5002 ")"
	udp_from h2 10.0.0.100 5001 "$sp"
	echo "nft_bridge_drop_udp5001 $(nft_counter bridge drop_udp5001)"
	echo "v4_udp5001_h2_mb $(arrivals mb udp_5001)"
	echo "v4_tcp9090_h2_mb $(yesno tcp_ok h2 10.0.0.100 9090 mb)"
	echo "nft_ip_drop_tcp9090 $(
		[[ $(nft_counter ip drop_tcp9090) -gt 0 ]] && echo some || echo none)"
	echo "v6_ping_h1_mb $(yesno ping_ok h1 fd10::100)"
	echo "v6_ping_h2_h1 $(yesno ping_ok h2 fd10::1)"
	udp_from h1 fd10::100 5000 "$sp"
	echo "v6_udp5000_h1_mb $(seen mb udp6_5000)"
	echo "vlan_ping_h1_h3 $(yesno ping_ok h1 10.0.0.3)"
	echo "vlan_ping_t1_t2 $(yesno ping_ok t1 10.0.20.2)"
	echo "vlan_v6_ping_t1_t2 $(yesno ping_ok t1 fd20::2)"
	echo "vlan_ping_t1_mbt $(yesno ping_ok t1 10.0.20.100)"
	echo "vlan_tcp_t2_mbt $(yesno tcp_ok t2 10.0.20.100 8080 mbt)"
	udp_from t1 10.0.20.50 5000 "$sp"
	echo "vlan_udp5000_t1_twin $(arrivals twin udp_5000)"
	echo "nft_bridge_fwd_vlan20 $(
		[[ $(nft_counter bridge fwd_vlan20) -gt 0 ]] && echo some || echo none)"
}

# name, without mbvisor, with mbvisor's rules
expected="
v4_ping_h1_mb           yes  no
v4_ping_h2_mb           yes  yes
v4_tcp_h1_mb            yes  yes
v4_udp5000_h1_mb        1    0
ct_udp5000_h1_mb        yes  no
v4_udp5002_h1_mb        1    1
ct_udp5002_h1_mb        yes  yes
nft_bridge_drop_udp5001 1    1
v4_udp5001_h2_mb        0    0
v4_tcp9090_h2_mb        no   no
nft_ip_drop_tcp9090     some some
v6_ping_h1_mb           yes  yes
v6_ping_h2_h1           yes  yes
v6_udp5000_h1_mb        1    1
vlan_ping_h1_h3         no   no
vlan_ping_t1_t2         yes  yes
vlan_v6_ping_t1_t2      yes  yes
vlan_ping_t1_mbt        yes  no
vlan_tcp_t2_mbt         yes  yes
vlan_udp5000_t1_twin    1    1
nft_bridge_fwd_vlan20   some some
"

# compare PHASE(2 or 3) RESULTS: each line against the expected column
compare()
{
	local col=$1 results=$2 name want got

	while read -r name; do
		[[ -n $name ]] || continue
		want=$(awk -v n="$name" -v c="$col" '$1 == n { print $c }' <<<"$expected")
		got=$(awk -v n="$name" '$1 == n { print $2 }' <<<"$results")
		check_eq "$want" "$got" "$name"
	done < <(awk 'NF { print $1 }' <<<"$expected")
}

log "# without mbvisor: modules unloaded"
mb_unload_modules
without=$(traffic 40001)
echo "$without"
compare 2 "$without"

log "# with mbvisor: three middleboxes' rules in place"
mb_load_modules
check_ok mbadm cmd "R F $MB 10.0.0.100 vlan 10"
check_ok mbadm cmd "A $MB I 5 s 10.0.0.1 p icmp"
check_ok mbadm cmd "A $MB T 9 d 5000 p udp"
check_ok mbadm cmd "R F $MBT 10.0.20.100 vlan 20"
check_ok mbadm cmd "A $MBT I 1 p icmp"
with=$(traffic 40002)
echo "$with"
compare 3 "$with"

log "# the drops were mbvisor's, counted on its rules"
check_eq 3 "$(rule_json "$MB" 0 .packets)" "h1's pings dropped by mb's ICMP rule"
check_eq 1 "$(rule_json "$MB" 1 .packets)" \
	"datagrams dropped by mb's UDP 5000 rule"
check_eq 3 "$(rule_json "$MBT" 0 .packets)" "t1's pings dropped by mbt's rule"

mb_test_end
