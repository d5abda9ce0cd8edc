# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# tests/lib.sh - helpers for mbvisor kernel tests (source it; bash only).
#
# Test scripts run as root inside the QEMU guest started by tests/vm/run,
# one guest for a whole list of scripts. Typical use:
#
#	#!/bin/bash
#	set -euo pipefail
#	# shellcheck source-path=SCRIPTDIR source=../lib.sh
#	source "$(dirname "$0")/../lib.sh"	# path relative to the script
#	mb_add_host h1 02:00:00:00:00:01 10.0.0.1
#	mb_add_host h2 02:00:00:00:00:02 10.0.0.2
#	check_ok ip netns exec h1 ping -c1 -W2 10.0.0.2
#	mb_test_end
#
# Topology built by mb_add_host (the bridge lives in the ROOT namespace, so
# the project's modules and tools see it without `ip netns exec`):
#
#	   netns h1            netns h2            netns hN
#	 +-----------+       +-----------+       +-----------+
#	 | eth0      |       | eth0      |       | eth0      |
#	 | MAC1 IP1  |       | MAC2 IP2  |       | MACn IPn  |
#	 +-----|-----+       +-----|-----+       +-----|-----+
#	       | veth              | veth              | veth
#	 ------|-------------------|-------------------|-------- root netns
#	    mb-h1               mb-h2               mb-hN    (bridge ports)
#	       +--------------- br0 (no IP, STP off) --+
#
# IPv6 is disabled on every interface these helpers create, so packet
# counters only see the traffic a test makes (no DAD, MLD or RS frames).
# Set MB_IPV6=1 to keep it.
#
# Everything created here (namespaces, the bridge) and everything registered
# with mb_defer is removed by an EXIT trap this file installs. A script that
# needs its own EXIT trap must call mb_cleanup as the trap's last command.
#
# Functions (failures of check_* are counted; the script goes on):
#	log MSG...			print a message
#	run CMD...			print the command, then run it
#	check_ok CMD...			CMD must succeed
#	check_fail CMD...		CMD must fail
#	check_eq EXPECTED ACTUAL MSG	the two strings must be equal
#	expect_out STATUS TEXT CMD...	CMD exits STATUS and its output
#					(stdout and stderr) contains TEXT
#	mb_pass MSG			count a check passed by other means
#	mb_fail MSG			count a failure found by other means
#	mb_skip MSG			exit with ksft_skip (a failure to tests/vm/run)
#	mb_require_cmd CMD...		mb_skip unless every CMD is in $PATH
#	mb_defer CMD...			run CMD at exit (last registered, first run)
#	mb_wait_for SECS CMD...		retry CMD every 0.1 s until it succeeds
#	ns_create NAME...		netns with lo up, removed at exit
#	ns_destroy NAME...		remove namespaces now
#	mb_bridge_create [BR]		bridge BR (default $MB_BR), removed at exit
#	mb_add_host NS MAC IP[/LEN]	netns NS + veth to the bridge (see above)
#	mb_port NS			print the bridge port name for NS
#	counter NS IFACE [STAT]		print a counter of IFACE (default
#					rx_packets); NS "" or "-" = root netns
#	mb_load_modules			modprobe $MB_PREREQ_MODULES, then insmod
#					the built project modules not yet loaded
#	mb_unload_modules		rmmod them in reverse order
#	mb_test_end			exit 1 if a check failed, else 0

# kselftest exit codes
ksft_pass=0
ksft_fail=1
ksft_skip=4

: "${MBVISOR_ROOT:=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
export MBVISOR_ROOT

MB_BR=${MB_BR:-br0}
# Kernel modules needed before the project's own ones; failures are ignored.
MB_PREREQ_MODULES=${MB_PREREQ_MODULES:-bridge veth 8021q}
# The project's modules, relative to $MBVISOR_ROOT, in load order. Ones not
# built yet are skipped. guest_driver/mbshm.ko is not here: it is for a
# guest with an ivshmem device.
MB_MODULES=${MBVISOR_MODULES:-mbstate/mbstate.ko bridge_hook/mbhook.ko offload_fw/mbfw.ko offload_lb/mblb.ko}

MB_CHECKS=0
MB_FAILED=0
MB_NETNS=()
MB_DEFERRED=()

if [[ ${MBVISOR_IN_VM:-0} != 1 && ${MBVISOR_ALLOW_HOST:-0} != 1 ]]; then
	echo "$(basename "$0"): this test changes the kernel's network setup;" \
		"run it with tests/vm/run (or set MBVISOR_ALLOW_HOST=1)" >&2
	exit "$ksft_skip"
fi

log()
{
	echo "$*"
}

run()
{
	echo "+ $*"
	"$@"
}

mb_fail()
{
	MB_CHECKS=$((MB_CHECKS + 1))
	MB_FAILED=$((MB_FAILED + 1))
	echo "FAIL: $*"
}

mb_pass()
{
	MB_CHECKS=$((MB_CHECKS + 1))
	echo "ok: $*"
}

check_ok()
{
	local rc=0

	"$@" || rc=$?
	if [[ $rc -eq 0 ]]; then
		mb_pass "$*"
	else
		mb_fail "$* (exit status $rc, expected success)"
	fi
	return 0
}

check_fail()
{
	if "$@"; then
		mb_fail "$* (succeeded, expected failure)"
	else
		mb_pass "$* (failed as expected)"
	fi
	return 0
}

check_eq()
{
	local expected=$1 actual=$2 msg=${3:-}

	if [[ "$expected" == "$actual" ]]; then
		mb_pass "$msg: $actual"
	else
		mb_fail "$msg: expected '$expected', got '$actual'"
	fi
	return 0
}

expect_out()
{
	local want=$1 text=$2 rc=0 out

	shift 2
	out=$("$@" 2>&1) || rc=$?
	if [[ $rc -eq $want && $out == *"$text"* ]]; then
		mb_pass "$* -> $rc: ${out%%$'\n'*}"
	else
		mb_fail "$* -> $rc: '$out' (expected $want and '$text')"
	fi
}

mb_skip()
{
	echo "SKIP: $*"
	exit "$ksft_skip"
}

mb_require_cmd()
{
	local c

	for c in "$@"; do
		command -v "$c" >/dev/null || mb_skip "command '$c' not found"
	done
}

mb_defer()
{
	local q

	printf -v q '%q ' "$@"
	MB_DEFERRED+=("$q")
}

mb_wait_for()
{
	local secs=$1 deadline=$((SECONDS + $1))

	shift
	until "$@"; do
		if ((SECONDS >= deadline)); then
			# said, so that a set -e exit here is not a silent one
			echo "mb_wait_for: gave up after ${secs}s: $*" >&2
			return 1
		fi
		sleep 0.1
	done
}

ns_create()
{
	local ns

	for ns in "$@"; do
		ip netns add "$ns"
		MB_NETNS+=("$ns")
		ip -n "$ns" link set lo up
		if [[ ${MB_IPV6:-0} != 1 ]]; then
			ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 \
				net.ipv6.conf.default.disable_ipv6=1 2>/dev/null || true
		fi
	done
}

ns_destroy()
{
	local ns i

	for ns in "$@"; do
		ip netns del "$ns"
		for i in "${!MB_NETNS[@]}"; do
			if [[ ${MB_NETNS[$i]} == "$ns" ]]; then
				unset "MB_NETNS[$i]"
			fi
		done
	done
}

mb_no_ipv6()
{
	if [[ ${MB_IPV6:-0} != 1 && -e /proc/sys/net/ipv6/conf/$1 ]]; then
		echo 1 >"/proc/sys/net/ipv6/conf/$1/disable_ipv6"
	fi
}

mb_bridge_create()
{
	local br=${1:-$MB_BR}

	ip link add "$br" type bridge stp_state 0
	mb_defer ip link del "$br"
	mb_no_ipv6 "$br"
	ip link set "$br" up
}

mb_port()
{
	echo "mb-$1"
}

mb_add_host()
{
	local ns=$1 mac=$2 addr=$3 port

	port=$(mb_port "$ns")
	if [[ ${#port} -gt 15 ]]; then
		echo "mb_add_host: namespace name '$ns' is too long (12 characters at most)" >&2
		return 1
	fi
	[[ $addr == */* ]] || addr=$addr/24
	[[ -e /sys/class/net/$MB_BR ]] || mb_bridge_create "$MB_BR"
	[[ -e /run/netns/$ns ]] || ns_create "$ns"

	ip link add "$port" type veth peer name eth0 netns "$ns"
	# Deleting the netns frees the pair asynchronously; this is at once.
	mb_defer ip link del "$port"
	mb_no_ipv6 "$port"
	ip link set "$port" master "$MB_BR"
	ip link set "$port" up
	ip -n "$ns" link set eth0 address "$mac"
	ip -n "$ns" addr add "$addr" dev eth0
	ip -n "$ns" link set eth0 up
}

counter()
{
	local ns=$1 dev=$2 stat=${3:-rx_packets}

	if [[ -z $ns || $ns == - ]]; then
		cat "/sys/class/net/$dev/statistics/$stat"
	else
		ip netns exec "$ns" cat "/sys/class/net/$dev/statistics/$stat"
	fi
}

mb_load_modules()
{
	local m ko name

	for m in $MB_PREREQ_MODULES; do
		modprobe -q "$m" 2>/dev/null || true
	done
	for m in $MB_MODULES; do
		ko=$MBVISOR_ROOT/$m
		name=$(basename "$m" .ko)
		name=${name//-/_}
		[[ -e $ko ]] || continue
		[[ -e /sys/module/$name ]] && continue
		if ! insmod "$ko"; then
			echo "mb_load_modules: insmod $ko failed" >&2
			return 1
		fi
	done
}

mb_unload_modules()
{
	local mods=() i name

	read -r -a mods <<<"$MB_MODULES"
	for ((i = ${#mods[@]} - 1; i >= 0; i--)); do
		name=$(basename "${mods[$i]}" .ko)
		name=${name//-/_}
		[[ -e /sys/module/$name ]] || continue
		if ! rmmod "$name"; then
			echo "mb_unload_modules: rmmod $name failed" >&2
			return 1
		fi
	done
}

mb_cleanup()
{
	local rc=$? i

	set +e
	for ((i = ${#MB_DEFERRED[@]} - 1; i >= 0; i--)); do
		eval "${MB_DEFERRED[$i]}" >/dev/null 2>&1
	done
	MB_DEFERRED=()
	for i in "${MB_NETNS[@]}"; do
		ip netns del "$i" 2>/dev/null
	done
	MB_NETNS=()
	trap - EXIT
	exit "$rc"
}

mb_test_end()
{
	if [[ $MB_FAILED -gt 0 ]]; then
		echo "FAIL: $MB_FAILED of $MB_CHECKS checks failed"
		exit "$ksft_fail"
	fi
	echo "PASS: all $MB_CHECKS checks"
	exit "$ksft_pass"
}

trap mb_cleanup EXIT
