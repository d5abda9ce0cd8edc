#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# A middlebox's rule set replaced thousands of times (mbadm replace),
# alternating between two sets, while a marker flow runs: every frame must
# be judged by a whole old or a whole new set, never by a mix, a gap or
# both. Counted per frame. Then the same for a load balancer's
# configuration, alternating between two backends (see its part below).
#
# The flow: pktgen frames to the middlebox, UDP destination ports 5000,
# 5001, 5002 in turn (e, o and k frames), each with pktgen's sequence
# number. The sets:
#
#   A = { O: T 9 d 5001 p udp,  K: T 9 d 5002 p udp }   drops o and k
#   B = { E: T 9 d 5000 p udp,  K: T 9 d 5002 p udp }   drops e and k
#
# Whole sets give each frame one verdict: an e frame that arrives at the
# middlebox was judged by A, one dropped by B; an o frame the other way
# round; a k frame is dropped by K in both. So, per frame (swaprecv.py
# records the sequence numbers that reached the middlebox):
#  - no k frame arrives: a frame judged with K absent (an empty or half-built
#    set, the moment between a delete and an add) would;
#  - reading the e and o frames in sequence order, the judging set changes
#    at most once per replace: a mix (the union drops e and o, an empty set
#    passes both) between two whole sets would add changes back and forth;
#  - drops + arrivals = frames the bridge handed the middlebox, exactly
#    (none judged twice, none lost), and each set judged thousands;
#  - K is in both sets: its counter, carried over by every replace (the rule
#    object stays), equals the k frames sent.
#
# The replaces come from tests/vm/swapper.c, one process sending what
# `mbadm replace` sends: a fork and exec of mbadm per replace allows only a
# few hundred in the time of this test under TCG on a busy machine.
#
#   pg0 (pktgen) -- pg0p -- br0 -- mb-mb -- netns mb (swaprecv.py)
#   swapper MB A B 2000 (NEW_RULE + REPLACE, A / B / A / ...)
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/mb.sh"

# bound NS PORT: a socket in NS listens on UDP PORT. The flow must not
# start before the receiver's sockets are bound: python starting took
# more than 2 s on a loaded machine, and the first frames went to no
# socket (counted in Udp NoPorts, missing from the receiver's list).
bound()
{
	ip netns exec "$1" ss -Hlun "sport = :$2" | grep -q .
}

MB=52:34:56:00:68:22
PG=/proc/net/pktgen
SWAPS=${MBVISOR_SWAPS:-2000}
GAP_US=${MBVISOR_SWAP_GAP_US:-5000}	# between two replaces

mb_require_cmd mbadm swapper nft jq python3
mb_fresh_registry
modprobe pktgen
mb_add_host mb $MB 10.0.0.100/24
arrivals_setup mb
ip link add pg0 type veth peer name pg0p
mb_defer ip link del pg0
ip link set pg0p master "$MB_BR" up
ip link set pg0 address 02:00:00:00:00:99 up
sysctl -qw net.ipv6.conf.pg0.disable_ipv6=1 net.ipv6.conf.pg0p.disable_ipv6=1
sysctl -qw net.core.rmem_max=$((64 << 20))

dir=$(mktemp -d /run/mbvisor-t68.XXXXXX)
mb_defer rm -rf "$dir"
E="A $MB T 9 d 5000 p udp"
O="A $MB T 9 d 5001 p udp"
K="A $MB T 9 d 5002 p udp"
printf '%s\n' "$O" "$K" >"$dir/A"
printf '%s\n' "$E" "$K" >"$dir/B"

check_ok mbadm cmd "R F $MB 10.0.0.100"
check_ok mbadm replace $MB "$dir/A"
kid()
{
	mbadm -j show $MB | jq '.[0].rules[] | select(.rule == "T 9 d 5002 p udp") | .id'
}
k_id=$(kid)
check_ok mbadm replace $MB "$dir/B"
check_eq "$k_id" "$(kid)" "K keeps its rule id across a replace"

ip netns exec mb python3 "$(dirname "$0")/swaprecv.py" "$dir/recv" 5000 5001 5002 &
recv=$!
mb_defer kill "$recv"
for port in 5000 5001 5002; do
	mb_wait_for 60 bound mb $port || mb_fail "the receiver did not bind UDP port $port"
done

echo rem_device_all >$PG/kpktgend_0
echo add_device pg0 >$PG/kpktgend_0
# ~1,000 frames a second (pktgen sleeps between them), ports 5000..5002 in
# turn (pktgen's udp_dst_max is not sent)
for line in "count 0" "pkt_size 60" "delay 1000000" "dst_mac $MB" \
	"dst_min 10.0.0.100" "dst_max 10.0.0.100" "src_min 10.0.0.9" \
	"src_max 10.0.0.9" "udp_dst_min 5000" "udp_dst_max 5003"; do
	echo "$line" >$PG/pg0
done
rx0=$(mb_json $MB .stats.rx_packets)
drop0=$(mb_json $MB .stats.fw_drop_packets)
k0=$(mbadm -j show $MB | jq '.[0].rules[] | select(.rule == "T 9 d 5002 p udp") | .packets')

# swap_under_flow WHAT MAC FILE_A FILE_B: start the flow set up on pg0,
# replace MAC's configuration SWAPS times, A and B in turn, stop the flow;
# sets swaps (replaces done) and secs
swap_under_flow()
{
	local what=$1 out failed t0 pg

	shift
	echo start >$PG/pgctrl &
	pg=$!
	sleep 1
	t0=$SECONDS
	out=$(swapper "$1" "$2" "$3" "$SWAPS" "$GAP_US" 2>&1) || true
	secs=$((SECONDS - t0))
	log "swapper: $out"
	read -r _ swaps _ failed <<<"$(tail -n 1 <<<"$out")"
	sleep 1
	echo stop >$PG/pgctrl
	wait $pg 2>/dev/null || true
	check_eq 0 "$failed" "$what replaces refused"
	check_eq "$SWAPS" "$swaps" "$what replaces done in ${secs} s"
}

log "# $SWAPS replaces, A and B in turn"
swap_under_flow "firewall" $MB "$dir/A" "$dir/B"
sleep 2
kill "$recv"
wait "$recv" 2>/dev/null || true

sent=$(sed -n 's/.*pkts-sofar: \([0-9]*\).*/\1/p' $PG/pg0)
next=$(sed -n 's/.*seq_num: \([0-9]*\).*/\1/p' $PG/pg0)
rx=$(($(mb_json $MB .stats.rx_packets) - rx0))
drops=$(($(mb_json $MB .stats.fw_drop_packets) - drop0))
kpk=$(mbadm -j show $MB | jq '.[0].rules[] | select(.rule == "T 9 d 5002 p udp") | .packets')
arr_e=$(arrivals mb udp_5000)
arr_o=$(arrivals mb udp_5001)
arr_k=$(arrivals mb udp_5002)
log "pktgen sent $sent (next seq $next); middlebox saw $rx, dropped $drops; arrived e $arr_e o $arr_o k $arr_k"
check_eq "$sent" "$rx" "frames the bridge handed the middlebox = frames sent"
check_eq "$rx" "$((drops + arr_e + arr_o + arr_k))" "drops + arrivals = frames"
check_eq 0 "$arr_k" "k frames that arrived (judged without K)"
check_eq "$((arr_e + arr_o + arr_k))" "$(grep -vc '^other' "$dir/recv")" "arrivals the receiver read (none lost in its socket)"
log "receiver's UDP: $(ip netns exec mb awk '/^Udp:/ { if (h) print; h = 1 }' /proc/net/snmp)"

# Per frame, in sequence order: which set judged it.
python3 - "$dir/recv" "$sent" "$next" "$swaps" "$((kpk - k0))" >"$dir/verdict" <<'EOF'
import sys
recv, sent, nxt, swaps, kcount = sys.argv[1], *map(int, sys.argv[2:])
first, last = nxt - sent, nxt - 1
arrived = {}
for line in open(recv):
    a, b = line.split()
    if a != "other":
        arrived[int(b)] = int(a)
bad = [s for s in arrived if not first <= s <= last]
# the port of each sequence number: one phase for the whole flow
phases = {(s - first - (p - 5000)) % 3 for s, p in arrived.items()}
phase = phases.pop() if len(phases) == 1 else None
labels, n = [], {"A": 0, "B": 0}
kframes = 0
for s in range(first, last + 1):
    port = 5000 + (s - first - (phase or 0)) % 3
    if port == 5002:
        kframes += 1
        continue
    if port == 5000:
        lab = "A" if s in arrived else "B"
    else:
        lab = "B" if s in arrived else "A"
    n[lab] += 1
    labels.append(lab)
changes = sum(1 for x, y in zip(labels, labels[1:]) if x != y)
print("out_of_range", len(bad))
print("phase_ok", int(phase is not None and not phases))
print("judged_A", n["A"])
print("judged_B", n["B"])
print("changes", changes)
print("kframes", kframes)
print("kcount", kcount)
EOF
v()
{
	awk -v k="$1" '$1 == k { print $2 }' "$dir/verdict"
}
# check_flips CHANGES REPLACES WHAT: in sequence order, WHAT judged the
# frames changed at most once per replace (more: some frames saw a mix),
# and the flow saw most replaces
check_flips()
{
	local changes=$1 swaps=$2 what=$3

	if ((changes <= swaps)); then
		mb_pass "$what changed $changes times in sequence order, for $swaps replaces"
	else
		mb_fail "$what changed $changes times for $swaps replaces: frames saw a mix"
	fi
	check_ge $((swaps / 2)) "$changes" "replaces seen by the flow"
}
check_eq 0 "$(v out_of_range)" "arrivals outside the flow's sequence numbers"
check_eq 1 "$(v phase_ok)" "every arrival on the port its sequence number says"
check_ge 1000 "$(v judged_A)" "e/o frames judged by A"
check_ge 1000 "$(v judged_B)" "e/o frames judged by B"
changes=$(v changes)
check_flips "$changes" "$swaps" "the judging set"
check_eq "$(v kframes)" "$(v kcount)" "k frames sent = K's counter, kept by $swaps replaces"
log "FIGURES: replaces $swaps in ${secs} s, frames $sent: judged by A $(v judged_A) e/o + by B $(v judged_B) e/o + $(v kframes) k (K's counter $(v kcount)), set changes seen in the flow $changes (<= $swaps), mixed: $((changes > swaps ? changes - swaps : 0)), k frames passed: $arr_k"
log "# the load balancer: $SWAPS replaces of its configuration, backend b1 and b3 in turn"
# Every frame is a new flow (pktgen counts the UDP source port up, 1 to
# 60,000), so none is pinned to a backend by an earlier frame: each one is
# sent wherever the configuration of that instant says. A whole
# configuration sends a frame, rewritten, to b1 (10.0.0.11, its MAC) or to
# b3; a frame that reached neither (left to the middlebox, lost, or sent
# with one backend's address and the other's MAC, which its stack drops)
# is missing from both receivers. Checked: every frame sent arrived at
# exactly one backend, and in sequence order the backend changes at most
# once per replace.
LB=52:34:56:00:68:23
VIP=10.0.0.101
B1=02:00:00:00:00:11
B3=02:00:00:00:00:13
mb_add_host b1 $B1 10.0.0.11/24
mb_add_host b3 $B3 10.0.0.13/24
# the load balancer's middlebox: mblb opens flows only once it knows the
# middlebox's port (its answer to the host's ARP probe at R L), and never
# from that port (docs/SECURITY.md, A2)
mb_add_host lb $LB $VIP/24
bridge fdb replace $B1 dev "$(mb_port b1)" master static
bridge fdb replace $B3 dev "$(mb_port b3)" master static
printf 'R L %s %s 0 0.0.0.0 10.0.0.11 mac %s\n' $LB $VIP $B1 >"$dir/L1"
printf 'R L %s %s 0 0.0.0.0 10.0.0.13 mac %s\n' $LB $VIP $B3 >"$dir/L3"
check_ok mbadm replace $LB "$dir/L1"
ip netns exec b1 python3 "$(dirname "$0")/swaprecv.py" "$dir/recv-b1" 7000 &
recv1=$!
mb_defer kill "$recv1"
ip netns exec b3 python3 "$(dirname "$0")/swaprecv.py" "$dir/recv-b3" 7000 &
recv3=$!
mb_defer kill "$recv3"
mb_wait_for 60 bound b1 7000 || mb_fail "b1's receiver did not bind UDP port 7000"
mb_wait_for 60 bound b3 7000 || mb_fail "b3's receiver did not bind UDP port 7000"
echo rem_device_all >$PG/kpktgend_0
echo add_device pg0 >$PG/kpktgend_0
for line in "count 0" "pkt_size 60" "delay 1000000" "dst_mac $LB" \
	"dst_min $VIP" "dst_max $VIP" "src_min 10.0.0.9" "src_max 10.0.0.9" \
	"udp_src_min 1" "udp_src_max 60000" "udp_dst_min 7000" "udp_dst_max 7000"; do
	echo "$line" >$PG/pg0
done
# no flow of this run ages out before it is counted, and the one middlebox
# may have as many as the table holds (its quota, max_flows_per_mb, is a
# quarter of it by default; up to 60,000 flows here)
echo 600 >/sys/module/mblb/parameters/udp_timeout
mb_defer sh -c "echo $(cat /sys/module/mblb/parameters/max_flows_per_mb) >/sys/module/mblb/parameters/max_flows_per_mb"
cat /sys/module/mblb/parameters/max_flows >/sys/module/mblb/parameters/max_flows_per_mb
flows0=$(mbadm -j flows $LB | jq length)
swap_under_flow "load-balancer" $LB "$dir/L3" "$dir/L1"
lswaps=$swaps lsecs=$secs
sleep 2
kill "$recv1" "$recv3"
wait "$recv1" "$recv3" 2>/dev/null || true
lsent=$(sed -n 's/.*pkts-sofar: \([0-9]*\).*/\1/p' $PG/pg0)
lnext=$(sed -n 's/.*seq_num: \([0-9]*\).*/\1/p' $PG/pg0)
python3 - "$dir/recv-b1" "$dir/recv-b3" "$lsent" "$lnext" >"$dir/lverdict" <<'EOF'
import sys
b1, b3, sent, nxt = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
first, last = nxt - sent, nxt - 1
where, twice, other = {}, 0, 0
for name, path in (("b1", b1), ("b3", b3)):
    for line in open(path):
        a, b = line.split()
        if a == "other":
            other += int(b)
            continue
        s = int(b)
        if s in where:
            twice += 1
        where[s] = name
seq = [where[s] for s in range(first, last + 1) if s in where]
print("b1", seq.count("b1"))
print("b3", seq.count("b3"))
print("missing", sum(1 for s in range(first, last + 1) if s not in where))
print("twice", twice)
print("outside", sum(1 for s in where if not first <= s <= last))
print("other", other)
print("changes", sum(1 for x, y in zip(seq, seq[1:]) if x != y))
EOF
lv()
{
	awk -v k="$1" '$1 == k { print $2 }' "$dir/lverdict"
}
log "pktgen sent $lsent; b1 got $(lv b1), b3 got $(lv b3), other datagrams $(lv other)"
check_eq 0 "$(lv missing)" "frames that reached neither backend"
check_eq 0 "$(lv twice)" "frames that reached both"
check_eq 0 "$(lv outside)" "arrivals outside the flow's sequence numbers"
check_ge 1000 "$(lv b1)" "frames sent to b1"
check_ge 1000 "$(lv b3)" "frames sent to b3"
lchanges=$(lv changes)
check_flips "$lchanges" "$lswaps" "the backend"
check_ge $((flows0 + lsent)) "$(mbadm -j flows $LB | jq length)" "flows: one per frame"
log "FIGURES: load-balancer replaces $lswaps in ${lsecs} s, frames $lsent: to b1 $(lv b1) + to b3 $(lv b3), missing $(lv missing), at both $(lv twice), backend changes seen in the flow $lchanges (<= $lswaps)"
mb_test_end
