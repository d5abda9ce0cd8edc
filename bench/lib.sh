# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# bench/lib.sh - helpers for the guest side of `make bench` (source it after
# tests/lib.sh, in a script that bench/run starts inside the QEMU guest).
#
# Samples go to $MBVISOR_BENCH_OUT, a host directory that bench/run shares
# with the guest over 9p (tag "benchout"): one JSON object per line in
# samples.jsonl, {"exp": ..., "name": ..., "round": N, "value": X}, and
# facts about the run in meta-EXP.json. bench/report.py turns them into
# bench/results/latest.json and the tables and plots of docs/BENCHMARKS.md.
#
# Packet rates come from pktgen in "xmit_mode netif_receive" (as the kernel's
# samples/pktgen/pktgen_bench_xmit_mode_netif_receive.sh uses it): pktgen's
# thread hands one frame, again and again, to netif_receive_skb() of a dummy
# device that is a bridge port, so the bridge's whole receive path, our hook
# included, runs in that thread, and the rate it reaches is the inverse of
# the time to process one frame. Every bench bridge looks like this:
#
#	pktgen --> pgin (dummy) --+
#	                          brb --- oth (dummy): BENCH_OTHER_MAC (static FDB)
#	                          +------ mbp (dummy): every middlebox MAC (static FDB)
#
# A frame forwarded to a dummy port is freed by dummy_xmit(), so the rate of
# forwarded frames does not depend on a receiver.
#
#	bench_init EXP			mount the output share, start EXP's samples
#	bench_sample NAME ROUND VALUE	record one sample
#	bench_meta KEY VALUE		a fact about the run (string)
#	in_ns NS CMD...			CMD in netns NS ("" = the root namespace)
#	bench_bridge NS			the bridge above, in NS (created if need be)
#	pg_config NS DST_MAC SRC_IP	pktgen on NS's pgin: 64-byte UDP frames
#	pg_run NS			run it for $BENCH_SECS; prints "PPS SENT"
#	tx_of NS DEV			tx_packets of DEV in NS
#	bench_addr I			the I-th rule address (10.16.0.0 upwards)
#	bench_die MSG			the bench is wrong: stop with an error

BENCH_ROUNDS=${MBVISOR_BENCH_ROUNDS:-3}
BENCH_SECS=${MBVISOR_BENCH_SECS:-2}
BENCH_BURST=${MBVISOR_BENCH_BURST:-64}
BENCH_OUT=${MBVISOR_BENCH_OUT:-}
BENCH_BR=brb
BENCH_OTHER_MAC=02:00:00:00:0e:01
# pktgen's source MAC. Not pgin's own address: the bridge would take every
# frame for one of its own and log a (rate-limited) warning per frame.
BENCH_SRC_MAC=02:00:00:00:0a:01
# Source address of frames that no rule matches (TEST-NET-1); used by the
# experiments.
export BENCH_NOMATCH_IP=192.0.2.1
BENCH_DST_IP=10.0.0.100

bench_die()
{
	echo "bench: error: $*" >&2
	exit 1
}

bench_init()
{
	BENCH_EXP=$1
	[[ -n $BENCH_OUT ]] || bench_die "MBVISOR_BENCH_OUT is not set (run through bench/run)"
	if ! mountpoint -q "$BENCH_OUT"; then
		mkdir -p "$BENCH_OUT"
		mount -t 9p -o trans=virtio,version=9p2000.L,rw,msize=262144,cache=none \
			benchout "$BENCH_OUT" ||
			bench_die "cannot mount the output share (tag benchout) at $BENCH_OUT"
	fi
	[[ $BENCH_ROUNDS =~ ^[1-9][0-9]*$ ]] || bench_die "bad MBVISOR_BENCH_ROUNDS '$BENCH_ROUNDS'"
	[[ $BENCH_SECS =~ ^[0-9]+(\.[0-9]+)?$ ]] || bench_die "bad MBVISOR_BENCH_SECS '$BENCH_SECS'"
	[[ $BENCH_BURST =~ ^[1-9][0-9]*$ ]] || bench_die "bad MBVISOR_BENCH_BURST '$BENCH_BURST'"
	bench_meta rounds "$BENCH_ROUNDS"
	bench_meta secs_per_sample "$BENCH_SECS"
	bench_meta pktgen_burst "$BENCH_BURST"
	bench_meta guest_kernel "$(uname -r)"
	bench_meta guest_cpu "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)"
	bench_meta guest_cpus "$(nproc)"
	bench_meta guest_mem_kib "$(awk '/^MemTotal/ { print $2 }' /proc/meminfo)"
	bench_meta nft_version "$(nft --version 2>/dev/null || echo none)"
	# Indirect calls cost more with retpolines: say which the guest uses.
	bench_meta guest_mitigations "$(cat /sys/devices/system/cpu/vulnerabilities/spectre_v2 \
		/sys/devices/system/cpu/vulnerabilities/retbleed 2>/dev/null | paste -sd '/')"
}

bench_sample()
{
	local name=$1 round=$2 value=$3

	[[ $value =~ ^[0-9]+(\.[0-9]+)?$ ]] || bench_die "sample $name: not a number: '$value'"
	printf '{"exp": "%s", "name": "%s", "round": %d, "value": %s}\n' \
		"$BENCH_EXP" "$name" "$round" "$value" >>"$BENCH_OUT/samples.jsonl"
	printf '%-28s round %d: %s\n' "$name" "$round" "$value"
}

bench_meta()
{
	# Appended as "key<TAB>value" lines; bench/report.py reads them.
	printf '%s\t%s\n' "$1" "$2" >>"$BENCH_OUT/meta-$BENCH_EXP.tsv"
}

in_ns()
{
	local ns=$1

	shift
	if [[ -z $ns ]]; then
		"$@"
	else
		ip netns exec "$ns" "$@"
	fi
}

bench_bridge()
{
	local ns=$1 d

	if [[ -n $ns && ! -e /run/netns/$ns ]]; then
		ns_create "$ns"
	fi
	# Nothing but pktgen's frames: no IPv6 autoconfiguration, no MLD, on
	# the links made from now on (default) and those there already (all).
	in_ns "$ns" sysctl -qw net.ipv6.conf.default.disable_ipv6=1 \
		net.ipv6.conf.all.disable_ipv6=1 2>/dev/null || true
	# mcast_snooping 0: with it, the bridge joins 224.0.0.106 (multicast
	# router discovery) and sends IGMP reports out of every port within a
	# second or so of coming up. It changes nothing for unicast frames.
	in_ns "$ns" ip link add "$BENCH_BR" type bridge stp_state 0 mcast_snooping 0
	[[ -n $ns ]] || mb_defer ip link del "$BENCH_BR"
	for d in pgin oth mbp; do
		in_ns "$ns" ip link add "$d" type dummy
		[[ -n $ns ]] || mb_defer ip link del "$d"
		in_ns "$ns" ip link set "$d" master "$BENCH_BR"
	done
	for d in "$BENCH_BR" pgin oth mbp; do
		in_ns "$ns" ip link set "$d" up
	done
	in_ns "$ns" bridge fdb add "$BENCH_OTHER_MAC" dev oth master static
	# The bridge sends nothing by itself then (no address, no STP, no
	# IPv6, no IGMP); a sample that sees another frame stops the bench.
}

# bench_fdb_mb NS MAC: frames for MAC go out of mbp
bench_fdb_mb()
{
	in_ns "$1" bridge fdb add "$2" dev mbp master static
}

# The I-th address of a rule set (I from 0): 10.16.0.0, 10.16.0.1, ...
bench_addr()
{
	local i=$1

	echo "10.$((16 + i / 65536)).$(((i / 256) % 256)).$((i % 256))"
}

# Runs in the netns: pktgen's files are per network namespace, and pgctrl
# acts on the threads of the writer's namespace.
_pg_config()
{
	local dst=$1 src=$2 burst=$3 src_mac=$4 pg=/proc/net/pktgen line

	[[ -e $pg/kpktgend_0 ]] || { echo "pktgen not loaded" >&2; return 1; }
	echo "rem_device_all" >$pg/kpktgend_0
	echo "add_device pgin" >$pg/kpktgend_0
	for line in "count 0" "pkt_size 60" "delay 0" "flag NO_TIMESTAMP" \
		"src_mac $src_mac" "dst_mac $dst" "dst_min $BENCH_DST_IP" "dst_max $BENCH_DST_IP" \
		"src_min $src" "src_max $src" "udp_src_min 9" "udp_src_max 9" \
		"udp_dst_min 9" "udp_dst_max 9" "xmit_mode netif_receive" \
		"burst $burst"; do
		echo "$line" >$pg/pgin || { echo "pktgen refused '$line'" >&2; return 1; }
	done
}

_pg_run()
{
	local secs=$1 pg=/proc/net/pktgen pid res usec sent

	echo start >$pg/pgctrl &
	pid=$!
	sleep "$secs"
	echo stop >$pg/pgctrl
	wait "$pid" || true
	# Result: OK: 2000123(c1999000+d1123) usec, 812345 (60byte,0frags)
	res=$(grep -m1 '^Result: OK:' $pg/pgin) || {
		echo "pktgen did not report a result: $(grep -m1 Result: $pg/pgin)" >&2
		return 1
	}
	usec=$(sed -E 's/^Result: OK: ([0-9]+)\(.*/\1/' <<<"$res")
	sent=$(sed -E 's/.* usec, ([0-9]+) \(.*/\1/' <<<"$res")
	[[ $usec =~ ^[0-9]+$ && $sent =~ ^[0-9]+$ && $usec -gt 0 ]] || {
		echo "cannot parse pktgen's result: $res" >&2
		return 1
	}
	echo "$((sent * 1000000 / usec)) $sent"
}

pg_config()
{
	in_ns "$1" bash -c "$(declare -f _pg_config); BENCH_DST_IP=$BENCH_DST_IP"'; _pg_config "$@"' \
		_ "$2" "$3" "$BENCH_BURST" "$BENCH_SRC_MAC"
}

pg_run()
{
	in_ns "$1" bash -c "$(declare -f _pg_run)"'; _pg_run "$@"' _ "$BENCH_SECS"
}

tx_of()
{
	in_ns "$1" cat "/sys/class/net/$2/statistics/tx_packets"
}
