#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# bench: throughput - a client's TCP throughput and HTTP requests/s: mblb vs. IPVS in the middlebox vs. direct (issue part 3)
#
# Throughput of a client application (benchmark issue, part 3), with the
# middlebox as a network namespace (the nested-VM variant is not measured:
# see docs/BENCHMARKS.md):
#
#   netns c1  02:00:00:00:00:01 10.0.0.1   (client: iperf3 -c, ab)
#   netns mb  52:34:56:00:12:22 10.0.0.100 (the middlebox; its address is the VIP)
#   netns b1  02:00:00:00:00:11 10.0.0.11  (backend: iperf3 -s, bench/vm/httpd.py)
#        \__________________ br0 (mbhook, mblb) ___________________/
#
# The client talks to the middlebox's address, served by the backend:
#
#   lb      through mblb at the bridge: `R L MB 10.0.0.100 0 0.0.0.0 10.0.0.11
#           mac B1`; the frames never reach the middlebox, the backend's
#           replies are rewritten on the bridge's output
#   ipvs    the middlebox forwards itself: IPVS in its namespace (NAT mode,
#           round robin, one real server), the backend routing its replies
#           to the client through it (a /32 route, only for this contender)
#   direct  the client talks to the backend's own address: the limit
#
# Figures: tcp_C_mbps (iperf3, one TCP stream, MBVISOR_BENCH_TCP_SECS = 2 s,
# Mbit/s received), http_C_rps (ab, a new connection per request, 8 at a
# time, MBVISOR_BENCH_HTTP_SECS = 2 s, requests per second). With one guest
# CPU (the icount clock) the client, the middlebox and the backend share it,
# so a rate is the inverse of everything a byte or a request costs on the
# machine. Rounds: MBVISOR_BENCH_ROUNDS, at most 3, the contenders reversed
# every other round; every sample checks that its path was taken (mblb's
# redirected packets, IPVS's connections).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../../tests/lib.sh
source "$MBVISOR_ROOT/tests/lib.sh"
# shellcheck source-path=SCRIPTDIR source=../../tests/vm/mb.sh
source "$MBVISOR_ROOT/tests/vm/mb.sh"
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$MBVISOR_ROOT/bench/lib.sh"

MB=52:34:56:00:12:22
C1=02:00:00:00:00:01
B1=02:00:00:00:00:11
VIP=10.0.0.100
BE=10.0.0.11
TCP_SECS=${MBVISOR_BENCH_TCP_SECS:-2}
HTTP_SECS=${MBVISOR_BENCH_HTTP_SECS:-2}

# redirected: packets mblb redirected for MB (0 while not registered)
redirected()
{
	mbadm -j show "$MB" 2>/dev/null | jq -r '.[0].lb.stats.redirected_packets // 0' 2>/dev/null || echo 0
}

# ipvs_conns: connections IPVS scheduled in the middlebox since it started:
# the sum of the per-CPU rows of ip_vs_stats_percpu (hex), the live
# counters. Not the total: IPVS's estimator copies it every 2 s, and a run
# counted 104 connections during the direct sample that followed the ipvs
# one. The rows end at the total's "~" line; the rates after it (also hex,
# and falling) must not be read: they made a later run count -278.
ipvs_conns()
{
	local cpu conns rest sum=0

	while read -r cpu conns rest; do
		[[ $cpu == "~" ]] && break
		[[ $cpu =~ ^[0-9A-F]+$ && $conns =~ ^[0-9A-F]+$ ]] || continue
		sum=$((sum + 16#$conns))
	done < <(ip netns exec mb cat /proc/net/ip_vs_stats_percpu)
	echo "$sum"
}

dst_of()
{
	case $1 in
	direct) echo "$BE" ;;
	*) echo "$VIP" ;;
	esac
}

up()
{
	case $1 in
	lb) mbadm cmd "R L $MB $VIP 0 0.0.0.0 $BE mac $B1" ;;
	ipvs) ip netns exec b1 ip route add 10.0.0.1/32 via "$VIP" ;;
	direct) ;;
	esac
}

down()
{
	case $1 in
	lb) mbadm cmd "X $MB" ;;
	ipvs) ip netns exec b1 ip route del 10.0.0.1/32 via "$VIP" ;;
	direct) ;;
	esac
}

# path_ok C R0 I0: the sample took C's path (mblb redirected, IPVS scheduled)
path_ok()
{
	local c=$1 r=$(($(redirected) - $2)) i=$(($(ipvs_conns) - $3))

	case $c in
	lb) ((r > 0 && i == 0)) ;;
	ipvs) ((r == 0 && i > 0)) ;;
	direct) ((r == 0 && i == 0)) ;;
	esac || bench_die "$c: mblb redirected $r packets, IPVS scheduled $i connections"
}

tcp_once()
{
	local c=$1 round=$2 r0 i0 out bps

	up "$c"
	r0=$(redirected)
	i0=$(ipvs_conns)
	out=$(ip netns exec c1 timeout 60 iperf3 -c "$(dst_of "$c")" -p 5201 -t "$TCP_SECS" -J) ||
		bench_die "$c: iperf3 failed: $(jq -r '.error // empty' <<<"$out" 2>/dev/null)"
	path_ok "$c" "$r0" "$i0"
	down "$c"
	bps=$(jq -r '.end.sum_received.bits_per_second' <<<"$out")
	((round > 0)) || return 0
	bench_sample "tcp_${c}_mbps" "$round" "$(awk -v b="$bps" 'BEGIN { printf "%.1f", b / 1e6 }')"
}

http_once()
{
	local c=$1 round=$2 r0 i0 out rps failed

	up "$c"
	r0=$(redirected)
	i0=$(ipvs_conns)
	out=$(ip netns exec c1 timeout 60 ab -q -t "$HTTP_SECS" -n 1000000 -c 8 -s 10 \
		"http://$(dst_of "$c")/" 2>&1) || bench_die "$c: ab failed: $out"
	path_ok "$c" "$r0" "$i0"
	down "$c"
	rps=$(sed -nE 's/^Requests per second: +([0-9.]+) .*/\1/p' <<<"$out")
	failed=$(sed -nE 's/^Failed requests: +([0-9]+).*/\1/p' <<<"$out")
	[[ -n $rps && $failed == 0 ]] || bench_die "$c: ab: ${failed:-?} failed requests: $out"
	((round > 0)) || return 0
	bench_sample "http_${c}_rps" "$round" "$rps"
}

mb_require_cmd mbadm iperf3 ab ipvsadm python3 jq
bench_init throughput
bench_meta iperf3_version "$(iperf3 --version | head -n1)"
bench_meta ab_version "$(ab -V | head -n1)"
bench_meta tcp_secs "$TCP_SECS"
bench_meta http_secs "$HTTP_SECS"
mb_fresh_registry
modprobe ip_vs
modprobe ip_vs_rr
mb_add_host c1 $C1 10.0.0.1/24
mb_add_host mb $MB $VIP/24
mb_add_host b1 $B1 $BE/24
ip link set "$MB_BR" type bridge mcast_snooping 0
# closed connections leave mblb's flow table within a second, so that a
# client port used again is a new flow, not a collision
echo 1 >/sys/module/mblb/parameters/tcp_close_timeout
ip netns exec c1 sysctl -qw net.ipv4.tcp_tw_reuse=1 net.ipv4.ip_local_port_range="10000 60999"

# The middlebox forwards with IPVS: a one-armed NAT director on eth0.
ip netns exec mb sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.send_redirects=0 \
	net.ipv4.conf.eth0.send_redirects=0 net.ipv4.vs.conn_reuse_mode=1
ip netns exec b1 sysctl -qw net.ipv4.conf.all.accept_redirects=0 net.ipv4.conf.eth0.accept_redirects=0
for port in 5201 80; do
	ip netns exec mb ipvsadm -A -t "$VIP:$port" -s rr
	ip netns exec mb ipvsadm -a -t "$VIP:$port" -r "$BE:$port" -m
done

ip netns exec b1 iperf3 -s -p 5201 >/dev/null 2>&1 &
mb_defer kill $!
ip netns exec b1 python3 "$MBVISOR_ROOT/bench/vm/httpd.py" 80 >/dev/null 2>&1 &
mb_defer kill $!
mb_wait_for 30 ip netns exec b1 sh -c "ss -Hltn 'sport = :5201' | grep -q ." ||
	bench_die "iperf3 -s did not start"
mb_wait_for 30 ip netns exec b1 sh -c "ss -Hltn 'sport = :80' | grep -q ." ||
	bench_die "bench/vm/httpd.py did not start"
# mblb needs the backend's MAC (given) and the bridge its port: b1 speaks
ip netns exec b1 ping -q -c 1 -W 2 10.0.0.1 >/dev/null || bench_die "b1 cannot reach c1"
ip netns exec c1 ping -q -c 1 -W 2 "$VIP" >/dev/null || bench_die "c1 cannot reach the middlebox"

log "warm-up (not recorded)"
for c in lb ipvs direct; do
	tcp_once "$c" 0
	http_once "$c" 0
done
# At most 3 rounds, as the other experiments that take long.
rounds=$((BENCH_ROUNDS < 3 ? BENCH_ROUNDS : 3))
for ((r = 1; r <= rounds; r++)); do
	order=(lb ipvs direct)
	((r % 2)) || order=(direct ipvs lb)
	for c in "${order[@]}"; do
		tcp_once "$c" "$r"
	done
	for c in "${order[@]}"; do
		http_once "$c" "$r"
	done
done
