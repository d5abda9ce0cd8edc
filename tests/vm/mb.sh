# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# Traffic and registry helpers for the mbvisor VM tests (source after
# ../lib.sh):
#
#	ping_ok NS IP [ARGS]		3 pings from NS; true if any reply
#	tcp_ok NS IP PORT SRV [SPORT]	a TCP exchange with a server in SRV;
#					true if the server's reply came back
#	udp_send NS IP PORT		one UDP datagram
#	arrivals_setup NS		count what reaches NS's eth0 (nftables
#					netdev ingress, before NS's own stack)
#	arrivals NS COUNTER		print a counter: icmp_from_h1,
#					icmp_from_h2, udp_<port> (5000-5002,
#					7000), ip_any
#	reset_arrivals NS		zero them
#	mb_json MAC JQ			a field of `mbadm -j show MAC`
#	rule_json MAC N JQ		a field of its N-th rule
#	check_ge MIN ACTUAL MSG		ACTUAL >= MIN
#	expect STATUS TEXT CMD...	CMD exits with STATUS, TEXT on stderr
#	mb_fresh_registry		reload the modules: an empty registry,
#					whatever earlier scripts left
#	pg_flood DEV SMAC DMAC SIP DIP N [DELAY]
#					N 60-byte IPv4/UDP frames from veth DEV
#					(pktgen, its MAC set to SMAC), DELAY ns
#					apart (default 0: as fast as it goes);
#					prints pktgen's result line

ping_ok()
{
	local ns=$1 ip=$2

	shift 2
	ip netns exec "$ns" ping -q -c 3 -i 0.2 -W 1 "$@" "$ip" >/dev/null 2>&1
}

tcp_ok()
{
	# Twice: on a loaded machine under TCG one exchange can miss its
	# timeouts (the server's shell forked late). A blocked port fails
	# both times, only later.
	_tcp_ok_once "$@" || _tcp_ok_once "$@"
}

_tcp_ok_once()
{
	local ns=$1 ip=$2 port=$3 srv=$4 sport=${5:-} pid out src=""

	ip netns exec "$srv" socat TCP-LISTEN:"$port",reuseaddr,fork \
		SYSTEM:'echo hello-from-server' >/dev/null 2>&1 &
	pid=$!
	mb_wait_for 5 ip netns exec "$srv" sh -c \
		"ss -Hltn 'sport = :$port' | grep -q ."
	[[ -n $sport ]] && src=",sourceport=$sport,reuseaddr"
	# generous: under TCG on a busy machine a fork of the server's shell
	# alone can take seconds; a dropped SYN still fails, only later
	out=$(ip netns exec "$ns" timeout 20 socat -T 10 - \
		"TCP:$ip:$port,connect-timeout=6$src" </dev/null 2>/dev/null) || true
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	[[ $out == hello-from-server ]]
}

udp_send()
{
	echo datagram | ip netns exec "$1" socat -u - "UDP-SENDTO:$2:$3"
	sleep 0.2
}

arrivals_setup()
{
	local ns=$1

	ip netns exec "$ns" nft -f - <<-EOF
		table netdev arrivals {
			counter icmp_from_h1 { }
			counter icmp_from_h2 { }
			counter ip_any { }
			counter udp_5000 { }
			counter udp_5001 { }
			counter udp_5002 { }
			counter udp_7000 { }
			chain in {
				type filter hook ingress device eth0 priority 0;
				ip saddr 10.0.0.1 ip protocol icmp counter name icmp_from_h1
				ip saddr 10.0.0.2 ip protocol icmp counter name icmp_from_h2
				meta protocol ip counter name ip_any
				udp dport 5000 counter name udp_5000
				udp dport 5001 counter name udp_5001
				udp dport 5002 counter name udp_5002
				udp dport 7000 counter name udp_7000
			}
		}
	EOF
}

arrivals()
{
	ip netns exec "$1" nft -j list counter netdev arrivals "$2" |
		jq '.nftables[] | select(.counter) | .counter.packets'
}

reset_arrivals()
{
	ip netns exec "$1" nft reset counters table netdev arrivals >/dev/null
}

mb_json()
{
	mbadm -j show "$1" | jq -r ".[0]$2"
}

rule_json()
{
	mbadm -j show "$1" | jq -r ".[0].rules[$2]$3"
}

check_ge()
{
	local min=$1 actual=$2 msg=$3

	if [[ $actual =~ ^[0-9]+$ ]] && ((actual >= min)); then
		mb_pass "$msg: $actual (>= $min)"
	else
		mb_fail "$msg: expected at least $min, got '$actual'"
	fi
}

mb_fresh_registry()
{
	mb_unload_modules
	mb_load_modules
}

# expect STATUS TEXT CMD...: CMD exits with STATUS and says TEXT on stderr
expect()
{
	local want=$1 text=$2 rc=0 err

	shift 2
	err=$("$@" 2>&1 >/dev/null) || rc=$?
	if [[ $rc -eq $want && $err == *"$text"* ]]; then
		mb_pass "$* -> $rc: $err"
	else
		mb_fail "$* -> $rc: '$err' (expected $want and '$text')"
	fi
}

pg_flood()
{
	local dev=$1 smac=$2 dmac=$3 sip=$4 dip=$5 n=$6 delay=${7:-0} l
	local pg=/proc/net/pktgen

	modprobe pktgen
	ip link set "$dev" address "$smac" up
	echo rem_device_all >$pg/kpktgend_0
	echo "add_device $dev" >$pg/kpktgend_0
	for l in "count $n" "pkt_size 60" "delay $delay" "dst_mac $dmac" \
		"dst_min $dip" "dst_max $dip" "src_min $sip" "src_max $sip"; do
		echo "$l" >"$pg/$dev"
	done
	echo start >$pg/pgctrl
	echo "pktgen from $smac: $(awk '/^Result/' "$pg/$dev")"
}
