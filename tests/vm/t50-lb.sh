#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The load-balancer offload (mblb) with real TCP, UDP and ICMP clients:
# redirection and the return path, learning of backend MACs, type 1,
# long transfers with and without checksum offload, weights, draining,
# configuration changes, D and X under traffic, the flow table's limit,
# unloading the module with live flows, and mblb's own hooks running only
# while the namespace has backends (counted with kprobes).
#
#   netns c1 02:..:01 10.0.0.1 (client)    netns b1 02:..:11 10.0.0.11 (backend)
#   netns c2 02:..:02 10.0.0.2 (client)    netns b2 02:..:12 10.0.0.12 (backend)
#   netns mb 52:34:56:00:12:22 10.0.0.100  netns b3 02:..:13 10.0.0.13 (backend)
#   netns mb2 52:34:56:00:12:23 10.0.0.101 (a second middlebox)
#        \            \            \           /          /          /
#         +------------+------------+-- br0 --+----------+----------+
#             mbhook + mblb on br0's input (PRE_ROUTING), mblb on its
#             output (POST_ROUTING)
#
# Every peer runs tests/vm/lbpeer.py, whose answers carry its name and the
# address it saw: a reply says who served it. nftables netdev ingress
# counters say what reached the middlebox (nothing of a redirected flow)
# and what the clients received (the VIP, from the middlebox's MAC, never a
# backend's address).
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/mb.sh"

MB=52:34:56:00:12:22
MB2=52:34:56:00:12:23
VIP2=10.0.0.101
C1=02:00:00:00:00:01
C2=02:00:00:00:00:02
B1=02:00:00:00:00:11
B2=02:00:00:00:00:12
B3=02:00:00:00:00:13
VIP=10.0.0.100
PEER="python3 $MBVISOR_ROOT/tests/vm/lbpeer.py"
P=/sys/module/mblb/parameters
T=/tmp/t50

mb_require_cmd mbadm nft jq python3 socat ethtool sha256sum
mb_fresh_registry
rm -rf $T
mkdir -p $T
mb_defer rm -rf $T

mb_add_host c1 $C1 10.0.0.1/24
mb_add_host c2 $C2 10.0.0.2/24
mb_add_host mb $MB $VIP/24
mb_add_host mb2 $MB2 $VIP2/24
mb_add_host b1 $B1 10.0.0.11/24
mb_add_host b2 $B2 10.0.0.12/24
mb_add_host b3 $B3 10.0.0.13/24

# What reaches the middlebox, and what the clients receive.
ip netns exec mb nft -f - <<EOF
table netdev mbin {
	counter from_c1 { }
	counter from_c2 { }
	counter ip_any { }
	chain in {
		type filter hook ingress device eth0 priority 0;
		ip saddr 10.0.0.1 counter name from_c1
		ip saddr 10.0.0.2 counter name from_c2
		meta protocol ip counter name ip_any
	}
}
EOF
for c in c1 c2; do
	ip netns exec $c nft -f - <<EOF
table netdev cin {
	counter from_vip { }
	counter from_backend { }
	chain in {
		type filter hook ingress device eth0 priority 0;
		ether saddr $MB ip saddr $VIP counter name from_vip
		ip saddr { 10.0.0.11, 10.0.0.12, 10.0.0.13 } counter name from_backend
	}
}
EOF
done

# mbin COUNTER / cin NS COUNTER: print a counter; reset_counters: zero all
mbin()
{
	ip netns exec mb nft -j list counter netdev mbin "$1" |
		jq '.nftables[] | select(.counter) | .counter.packets'
}

cin()
{
	ip netns exec "$1" nft -j list counter netdev cin "$2" |
		jq '.nftables[] | select(.counter) | .counter.packets'
}

reset_counters()
{
	ip netns exec mb nft reset counters table netdev mbin >/dev/null
	ip netns exec c1 nft reset counters table netdev cin >/dev/null
	ip netns exec c2 nft reset counters table netdev cin >/dev/null
}

# be IP JQ: a field of a backend of $MB; lbstat NAME: an LB counter of $MB
be()
{
	mbadm -j show $MB | jq -r ".[0].lb.backends[] | select(.ip == \"$1\") | $2"
}

lbstat()
{
	mbadm -j show $MB | jq -r ".[0].lb.stats.$1"
}

# names FILE: the servers that answered, sorted, one "COUNT NAME" a line
names()
{
	awk '{ print $1 }' "$1" | sort | uniq -c | awk '{ print $2 "=" $1 }' |
		tr '\n' ' ' | sed 's/ $//'
}

# line FILE: the lines of FILE on one line
line()
{
	tr '\n' ' ' <"$1" | sed 's/ $//'
}

# count NAME FILE: how many answers came from NAME
count()
{
	awk -v n="$1" '$1 == n { c++ } END { print c + 0 }' "$2"
}

# hold_start DIR NS COUNT [SPORT]: COUNT connections from NS kept open
# (lbpeer hold), the first from source port SPORT if given
hold_start()
{
	local dir=$1 ns=$2 n=$3 sport=${4:-}

	rm -rf "$dir"
	mkdir -p "$dir"
	# shellcheck disable=SC2086 # $sport: nothing or one word
	ip netns exec "$ns" $PEER hold $VIP 80 "$n" "$dir" $sport >"$dir/log" 2>&1 &
	echo $! >"$dir/pid"
	mb_defer touch "$dir/close"
	if ! mb_wait_for 60 test -e "$dir/before"; then
		mb_fail "hold $ns $n${sport:+ from port $sport}: the connections did not open"
		sed 's/^/    /' "$dir/log"
		return 1
	fi
}

# hold_round DIR N: every held connection says which backend still serves it
hold_round()
{
	touch "$1/go$2"
	mb_wait_for 60 test -e "$1/after$2"
}

hold_stop()
{
	touch "$1/close"
	wait "$(cat "$1/pid")" 2>/dev/null || true
}

# flows_of IP: flows of $MB in the table on backend IP
flows_of()
{
	mbadm -j flows $MB | jq "[.[] | select(.backend_ip == \"$1\")] | length"
}

no_flows()
{
	[[ $(mbadm -j flows | jq length) == 0 ]]
}

for ns in b1 b2 b3 mb mb2; do
	name=$ns
	[[ $ns == mb ]] && name=middlebox
	ip netns exec $ns $PEER serve $name 80 5000 >/dev/null 2>&1 &
	mb_defer kill $!
done
for ns in b1 b2 b3 mb mb2; do
	mb_wait_for 30 ip netns exec $ns sh -c "ss -Hltn 'sport = :80' | grep -q ."
done
# closed TCP flows and UDP and ICMP flows leave the table within seconds
echo 1 >$P/tcp_close_timeout
echo 2 >$P/udp_timeout

# hook_runs CMD...: how many times mblb's bridge hooks (mblb_pre, mblb_post)
# ran while CMD ran, from the hit counts of kprobes on them. Debian's
# kernel has no nfnetlink_hook (`nft list hooks`) to list them.
KP=/sys/kernel/tracing
mountpoint -q $KP || mount -t tracefs tracefs $KP
hook_runs()
{
	local n

	echo "p:t50_mblb_pre mblb:mblb_pre" >>$KP/kprobe_events
	echo "p:t50_mblb_post mblb:mblb_post" >>$KP/kprobe_events
	echo 1 >$KP/events/kprobes/t50_mblb_pre/enable
	echo 1 >$KP/events/kprobes/t50_mblb_post/enable
	"$@" >/dev/null || echo "hook_runs: $* failed" >&2
	echo 0 >$KP/events/kprobes/t50_mblb_pre/enable
	echo 0 >$KP/events/kprobes/t50_mblb_post/enable
	n=$(awk '$1 ~ /^t50_mblb_/ { s += $2 } END { print s + 0 }' $KP/kprobe_profile)
	echo "-:t50_mblb_pre" >>$KP/kprobe_events
	echo "-:t50_mblb_post" >>$KP/kprobe_events
	echo "$n"
}
# c1 and c2 talk, through br0, to no middlebox
c1_c2()
{
	ip netns exec c1 ping -c 3 -i 0.2 -W 2 10.0.0.2
}

log "# mblb hooks into a namespace only while it has backends"
check_eq 0 "$(hook_runs c1_c2)" "frames that entered mblb's hooks without a load balancer"
check_ok mbadm cmd "R F $MB $VIP"
check_eq 0 "$(hook_runs c1_c2)" "frames that entered mblb's hooks with a firewall only"
check_ok mbadm cmd "X $MB"

log "# the report's form: while the backend's MAC is unknown, the middlebox gets the frames"
# R L probes the backend with ARP (t52 tests that the first connection then
# reaches it); b1 ignores ARP requests here, so its MAC stays unknown
check_ok ip netns exec b1 sysctl -qw net.ipv4.conf.all.arp_ignore=8
check_ok mbadm cmd "R L $MB $VIP 0 0.0.0.0 10.0.0.11"
check_ge 12 "$(hook_runs c1_c2)" "frames that entered mblb's hooks with a backend (3 pings, 3 replies, each in and out)"
check_eq unknown "$(be 10.0.0.11 .mac_source)" "b1's MAC before it spoke"
reset_counters
check_eq "middlebox 10.0.0.1" "$(ip netns exec c1 $PEER connect $VIP 80 1)" \
	"who answered"
check_eq 1 "$(lbstat mac_unknown)" "SYNs counted as MAC unknown"
check_ge 1 "$(mbin from_c1)" "frames of c1 that reached the middlebox"
check_eq 0 "$(mbadm -j flows | jq length)" "flows"

log "# the MAC is learned from what the bridge sees (b1's ARP)"
check_ok ip netns exec b1 sysctl -qw net.ipv4.conf.all.arp_ignore=0
check_ok ip netns exec b1 ping -c 1 -W 2 10.0.0.1
check_eq "$B1 learned" "$(be 10.0.0.11 '.mac + " " + .mac_source')" "b1's MAC"

log "# TCP: the backend answers, the client sees the VIP, the middlebox sees nothing"
reset_counters
ip netns exec c1 $PEER connect $VIP 80 5 >$T/tcp
check_eq "b1=5" "$(names $T/tcp)" "who answered 5 connections"
check_eq 5 "$(grep -c '^b1 10.0.0.1$' $T/tcp)" "b1 saw the client's own address"
check_eq 0 "$(mbin ip_any)" "IPv4 frames that reached the middlebox"
check_ge 10 "$(cin c1 from_vip)" "frames c1 got from the VIP and the middlebox's MAC"
check_eq 0 "$(cin c1 from_backend)" "frames c1 got from a backend's address"
check_eq 5 "$(be 10.0.0.11 .new_flows)" "b1's flows in all"
check_ge 5 "$(be 10.0.0.11 .ret_packets)" "b1's replies rewritten"
check_eq 5 "$(lbstat new_flows)" "flows created"
hold_start $T/h0 c1 1
check_eq "tcp 10.0.0.1 10.0.0.100 80 10.0.0.11 $B1 established" \
	"$(mbadm -j flows $MB | jq -r '.[] | "\(.proto) \(.client_ip) \(.vip) \(.vip_port) \(.backend_ip) \(.backend_mac) \(.state)"')" \
	"the held connection's flow as mbadm flows shows it"
check_eq 1 "$(be 10.0.0.11 .flows)" "b1's flows now"
hold_stop $T/h0
check_ok sh -c "mbadm stats | grep -q '^$MB  10.0.0.11 .* active '"

log "# UDP and ICMP echo"
reset_counters
check_eq "b1 10.0.0.1 hello" "$(ip netns exec c1 $PEER udp $VIP 5000 hello)" \
	"UDP reply"
check_ok ping_ok c1 $VIP
check_eq 0 "$(mbin ip_any)" "IPv4 frames that reached the middlebox"
check_eq 0 "$(cin c1 from_backend)" "frames c1 got from a backend's address"

log "# 8 MiB each way, with checksum offload (CHECKSUM_PARTIAL) and without"
head -c 8M /dev/urandom >$T/big
sum=$(sha256sum <$T/big)
transfer()
{
	rm -f $T/got $T/up
	ip netns exec b1 socat -u OPEN:$T/big TCP-LISTEN:81,reuseaddr &
	srv=$!
	mb_wait_for 10 ip netns exec b1 sh -c "ss -Hltn 'sport = :81' | grep -q ."
	ip netns exec c1 timeout 120 socat -u TCP:$VIP:81 CREATE:$T/got || true
	wait $srv || true
	check_eq "$sum" "$(sha256sum <$T/got)" "8 MiB downloaded through the VIP ($1)"
	ip netns exec b1 socat -u TCP-LISTEN:82,reuseaddr CREATE:$T/up &
	srv=$!
	mb_wait_for 10 ip netns exec b1 sh -c "ss -Hltn 'sport = :82' | grep -q ."
	ip netns exec c1 timeout 120 socat -u OPEN:$T/big TCP:$VIP:82 || true
	wait $srv || true
	check_eq "$sum" "$(sha256sum <$T/up)" "8 MiB uploaded through the VIP ($1)"
}
reset_counters
transfer "offload on"
for ns in c1 b1; do
	ip netns exec $ns ethtool -K eth0 tx off >/dev/null
done
transfer "offload off"
for ns in c1 b1; do
	ip netns exec $ns ethtool -K eth0 tx on >/dev/null
done
check_eq 0 "$(mbin ip_any)" "IPv4 frames that reached the middlebox"
check_eq 0 "$(cin c1 from_backend)" "frames c1 got from a backend's address"

log "# type 1 redirects only the named source"
check_ok mbadm cmd "X $MB"
check_ok mbadm cmd "R L $MB $VIP 1 10.0.0.1 10.0.0.11 mac $B1"
check_eq "$B1 static" "$(be 10.0.0.11 '.mac + " " + .mac_source')" "b1's MAC"
reset_counters
check_eq "b1 10.0.0.1" "$(ip netns exec c1 $PEER connect $VIP 80 1)" "c1 answered by"
check_eq "middlebox 10.0.0.2" "$(ip netns exec c2 $PEER connect $VIP 80 1)" \
	"c2 answered by"
check_eq "middlebox 10.0.0.2 x" "$(ip netns exec c2 $PEER udp $VIP 5000 x)" \
	"c2's UDP answered by"
check_eq 0 "$(mbin from_c1)" "frames of c1 that reached the middlebox"
check_ge 3 "$(mbin from_c2)" "frames of c2 that reached the middlebox"
check_ge 3 "$(lbstat not_selected)" "frames counted as another source"

log "# several backends share new flows by weight; weight 0 is standby"
cat >$T/lb.conf <<EOF
R L $MB $VIP 0 0.0.0.0 10.0.0.11 mac $B1 weight 1
A $MB L 10.0.0.12 mac $B2 weight 3
A $MB L 10.0.0.13 mac $B3 weight 0
EOF
check_ok mbadm replace $MB $T/lb.conf
check_eq "10.0.0.11:1:active 10.0.0.12:3:active 10.0.0.13:0:standby" \
	"$(mbadm -j show $MB | jq -r '[.[0].lb.backends[] | "\(.ip):\(.weight):\(.state)"] | join(" ")')" \
	"backends"
n1=$(be 10.0.0.11 .new_flows)
n2=$(be 10.0.0.12 .new_flows)
ip netns exec c1 $PEER connect $VIP 80 200 >$T/w
check_eq 200 "$(($(count b1 $T/w) + $(count b2 $T/w)))" "connections answered by b1 or b2"
check_eq 0 "$(count b3 $T/w)" "connections answered by b3 (weight 0)"
# b1 should get 1/4: 50 of 200 on average, 25 to 75 is 4 standard deviations
b1n=$(count b1 $T/w)
if ((b1n >= 25 && b1n <= 75)); then
	mb_pass "b1 answered $b1n of 200 (weight 1 of 4)"
else
	mb_fail "b1 answered $b1n of 200, expected about 50 (weight 1 of 4)"
fi
check_eq "$((n1 + b1n))" "$(be 10.0.0.11 .new_flows)" "b1's flow counter"
check_eq "$((n2 + 200 - b1n))" "$(be 10.0.0.12 .new_flows)" "b2's flow counter"
check_eq 0 "$(be 10.0.0.13 .new_flows)" "b3's flow counter"

log "# removing a backend: its established flows stay, no other flow moves"
check_ok mbadm cmd "A $MB L 10.0.0.12 mac $B2"
check_ok mbadm cmd "A $MB L 10.0.0.13 mac $B3 weight 1"
mb_wait_for 20 no_flows || mb_fail "closed flows did not leave the table"
hold_start $T/h1 c1 30
log "held: $(names $T/h1/before)"
n2=$(count b2 $T/h1/before)
check_ge 1 "$n2" "held connections on b2"
check_eq 30 "$(($(count b1 $T/h1/before) + n2 + $(count b3 $T/h1/before)))" \
	"held connections answered by a backend"
check_ok mbadm cmd "D $MB L 10.0.0.12"
check_eq draining "$(be 10.0.0.12 .state)" "b2's state"
check_eq 0 "$(be 10.0.0.12 .weight)" "b2's weight"
check_eq "$n2" "$(be 10.0.0.12 .flows)" "b2's flows"
hold_round $T/h1 1
check_eq "$(line $T/h1/before)" "$(line $T/h1/after1)" \
	"backend of each held connection after b2's removal"
ip netns exec c1 $PEER connect $VIP 80 60 >$T/d
check_eq 0 "$(count b2 $T/d)" "new connections answered by the draining b2"
check_eq 60 "$(($(count b1 $T/d) + $(count b3 $T/d)))" "new connections answered by b1 or b3"
hold_stop $T/h1
b2_gone()
{
	[[ -z $(be 10.0.0.12 .ip) ]]
}
mb_wait_for 20 b2_gone || mb_fail "b2 still listed after its last flow ended"
check_eq "10.0.0.11 10.0.0.13" \
	"$(mbadm -j show $MB | jq -r '[.[0].lb.backends[].ip] | join(" ")')" \
	"backends once b2 drained"

log "# replacing the configuration under traffic: old or new, never a mix"
printf 'R L %s %s 0 0.0.0.0 10.0.0.11 mac %s\n' $MB $VIP $B1 >$T/only1
printf 'R L %s %s 0 0.0.0.0 10.0.0.13 mac %s\n' $MB $VIP $B3 >$T/only3
ip netns exec c1 $PEER connect $VIP 80 80 >$T/r &
cl=$!
while kill -0 $cl 2>/dev/null; do
	mbadm replace $MB $T/only3 || mb_fail "replace (only b3) refused"
	mbadm replace $MB $T/only1 || mb_fail "replace (only b1) refused"
done
wait $cl || true
check_eq 80 "$(($(count b1 $T/r) + $(count b3 $T/r)))" \
	"connections answered by b1 or b3 while the configuration changed"

log "# D and X stop redirection for new flows; established flows go on"
check_ok mbadm replace $MB $T/lb.conf
check_ok mbadm cmd "A $MB L 10.0.0.13 mac $B3 weight 1"
hold_start $T/h2 c1 10
ip netns exec c2 $PEER connect $VIP 80 40 >$T/bg &
bg=$!
check_ok mbadm cmd "D $MB"
hold_round $T/h2 1
check_eq "$(line $T/h2/before)" "$(line $T/h2/after1)" "held connections after D"
check_eq "middlebox 10.0.0.1" "$(ip netns exec c1 $PEER connect $VIP 80 1)" \
	"a new connection after D answered by"
check_ok mbadm cmd "A $MB"
check_ok sh -c "ip netns exec c1 $PEER connect $VIP 80 1 | grep -q '^b[123] '"
check_ok mbadm cmd "X $MB"
hold_round $T/h2 2
check_eq "$(line $T/h2/before)" "$(line $T/h2/after2)" "held connections after X"
check_eq "middlebox 10.0.0.1" "$(ip netns exec c1 $PEER connect $VIP 80 1)" \
	"a new connection after X answered by"
check_eq 10 "$(mbadm -j flows $MB | jq '[.[] | select(.state == "established" and .client_ip == "10.0.0.1")] | length')" \
	"established flows of c1 to the unregistered middlebox"
wait $bg || true
check_eq 0 "$(grep -c '^-$' $T/bg || true)" "connections without an answer during D, A and X"
hold_stop $T/h2
mb_wait_for 20 no_flows || mb_fail "flows left after the held connections closed"

log "# the flow table's limit (max_flows=16): then new flows go to the middlebox"
check_ok rmmod mblb
check_ok insmod "$MBVISOR_ROOT/offload_lb/mblb.ko" max_flows=16 tcp_close_timeout=1
check_eq 16 "$(cat $P/max_flows)" "max_flows"
check_ok mbadm cmd "R L $MB $VIP 0 0.0.0.0 10.0.0.11 mac $B1"
hold_start $T/h3 c1 16
check_eq "b1=16" "$(names $T/h3/before)" "16 held connections"
check_eq "middlebox 10.0.0.1" "$(ip netns exec c1 $PEER connect $VIP 80 1)" \
	"the 17th connection answered by"
check_eq 1 "$(lbstat table_full)" "SYNs counted as table full"
check_eq 16 "$(mbadm -j flows | jq length)" "flows in the table"
hold_round $T/h3 1
check_eq "$(line $T/h3/before)" "$(line $T/h3/after1)" "held connections still served"
hold_stop $T/h3
mb_wait_for 20 no_flows || mb_fail "flows left after the held connections closed"
check_eq "b1 10.0.0.1" "$(ip netns exec c1 $PEER connect $VIP 80 1)" \
	"a connection once the table has room"

log "# an established flow idle longer than tcp_timeout ends"
# the connection just made closed, but its flow lives tcp_close_timeout on
mb_wait_for 20 no_flows || mb_fail "the closed connection's flow is still in the table"
hold_start $T/h5 c1 1
check_eq 1 "$(mbadm -j flows | jq length)" "flows"
nf=$(lbstat no_flow)
echo 1 >$P/tcp_timeout
mb_wait_for 20 no_flows || mb_fail "the idle flow is still in the table"
echo 3600 >$P/tcp_timeout
hold_round $T/h5 1
check_eq "-" "$(line $T/h5/after1)" "the idle connection, now the middlebox's (it resets it)"
check_ge $((nf + 1)) "$(lbstat no_flow)" "segments counted as without flow"
hold_stop $T/h5

log "# two flows the backend could not tell apart: the second goes to its middlebox"
check_ok mbadm cmd "R L $MB2 $VIP2 0 0.0.0.0 10.0.0.11 mac $B1"
hold_start $T/h6 c1 1 45000
check_eq b1 "$(line $T/h6/before)" "c1:45000 to $VIP answered by"
check_eq "mb2 10.0.0.1" "$(ip netns exec c1 $PEER connect $VIP2 80 1 45000)" \
	"c1:45000 to $VIP2 answered by"
check_eq 1 "$(mbadm -j show $MB2 | jq -r '.[0].lb.stats.collision')" \
	"SYNs counted as collision"
hold_round $T/h6 1
check_eq b1 "$(line $T/h6/after1)" "the first flow still served by"
hold_stop $T/h6
check_eq "b1 10.0.0.1" "$(ip netns exec c1 $PEER connect $VIP2 80 1)" \
	"$VIP2 from another port answered by"
check_ok mbadm cmd "X $MB2"

log "# unloading mblb with live flows and traffic"
hold_start $T/h4 c1 8
ip netns exec c2 $PEER connect $VIP 80 30 >/dev/null &
bg=$!
check_ok rmmod mblb
wait $bg || true
hold_stop $T/h4
expect 1 "modprobe mblb" mbadm flows
expect 1 "modprobe mblb" mbadm cmd "R L $MB $VIP 0 0.0.0.0 10.0.0.11"
check_eq load-balancer-gone "$(mbadm -j show | jq -r 'if length == 0 then "load-balancer-gone" else .[0].services | join(",") end')" \
	"registry after the unload"
mb_load_modules

log "# bad input: refused with a message, nothing changed"
check_ok mbadm cmd "R L $MB $VIP 0 0.0.0.0 10.0.0.11 mac $B1"
check_ok mbadm cmd "R F $MB2 $VIP2"
conf()
{
	mbadm -j show | jq -c '[.[] | {mac, services, lb: (.lb // {} | {type, src_ip, backends: [.backends[]? | {ip, weight, state}]})}]'
}
before=$(conf)
expect 2 "Unknown load-balancer type \`2'" mbadm cmd "R L $MB $VIP 2 0.0.0.0 10.0.0.11"
expect 2 "\`0.0.0.0' is unspecified" mbadm cmd "R L $MB $VIP 1 0.0.0.0 10.0.0.11"
expect 2 "must be 0.0.0.0, not \`10.0.0.1'" mbadm cmd "R L $MB $VIP 0 10.0.0.1 10.0.0.11"
expect 2 "must not be the middlebox itself" mbadm cmd "R L $MB $VIP 0 0.0.0.0 $VIP"
expect 2 "is the broadcast address" mbadm cmd "R L $MB $VIP 0 0.0.0.0 255.255.255.255"
expect 2 "is multicast" mbadm cmd "R L $MB $VIP 0 0.0.0.0 239.1.2.3"
expect 2 "is multicast" mbadm cmd "A $MB L 224.0.0.1"
expect 2 "Backend MAC address \`ff:ff:ff:ff:ff:ff' is multicast" \
	mbadm cmd "A $MB L 10.0.0.12 mac ff:ff:ff:ff:ff:ff"
expect 2 "must not be the middlebox's own" mbadm cmd "A $MB L 10.0.0.12 mac $MB"
expect 2 "Unable to parse weight: \`1001'" mbadm cmd "A $MB L 10.0.0.12 weight 1001"
expect 1 "already registered" mbadm cmd "R L $MB $VIP 0 0.0.0.0 10.0.0.12"
expect 1 "must not be the middlebox itself" mbadm cmd "A $MB L $VIP"
expect 1 "no such backend" mbadm cmd "D $MB L 10.0.0.12"
expect 1 "not registered for the load balancer" \
	mbadm cmd "A $MB2 L 10.0.0.12"
printf 'R L %s %s 0 0.0.0.0 10.0.0.11\nA %s L 10.0.0.11\n' $MB $VIP $MB >$T/dup
expect 1 "listed twice" mbadm replace $MB $T/dup
printf 'R L %s %s 0 0.0.0.0 10.0.0.11\nA %s I 4 s 10.0.0.1\n' $MB $VIP $MB >$T/mixed
expect 2 "not a backend to add" mbadm replace $MB $T/mixed
check_ok python3 "$(dirname "$0")/nlprobe.py" lb-malformed
check_eq "$before" "$(conf)" "configuration after the refusals"

log "# the last backend gone (its flows first): mblb's hooks go"
hold_start $T/h9 c1 1
check_ok mbadm cmd "X $MB"
check_ok mbadm cmd "X $MB2"
check_ge 12 "$(hook_runs c1_c2)" "frames that entered mblb's hooks while a flow outlives its middlebox"
hold_round $T/h9 1
check_eq b1 "$(line $T/h9/after1)" "the flow after X still served by"
hold_stop $T/h9
mb_wait_for 30 no_flows || mb_fail "the held flow is still in the table"
# the GC unhooks once the flow's slot is given back, after a grace period
no_hook_runs()
{
	[[ $(hook_runs c1_c2) == 0 ]]
}
mb_wait_for 20 no_hook_runs || true
check_eq 0 "$(hook_runs c1_c2)" "frames that entered mblb's hooks without backends"

mb_test_end
