#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# 50 unload/reload cycles of the modules while pktgen floods the bridge,
# netlink changes run (mbadm in a loop, on a middlebox of the host's own)
# and mbhostd serves a VM whose middlebox has 20 rules: after each reload
# mbhostd must put back exactly what the VM asked for (checked each cycle).
# tests/vm/run fails the script on any oops, warning or new taint.
#
#   pg0 (pktgen) -- pg0p --+
#                          br0 -- mb-mb -- netns mb (VM's middlebox, MB)
#   mbctl --shm $dir/vm1 -> mbhostd -> mbstate     mbadm churn on MB2
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/mb.sh"

MB=52:34:56:00:66:22	# the VM's middlebox, restored by mbhostd
MB2=52:34:56:00:66:33	# the host's own, changed by mbadm in a loop
CYCLES=${MBVISOR_RELOAD_CYCLES:-50}
PG=/proc/net/pktgen

mb_require_cmd mbhostd mbctl mbadm jq
mb_fresh_registry
modprobe pktgen
mb_add_host mb $MB 10.0.0.100/24
ip link add pg0 type veth peer name pg0p
mb_defer ip link del pg0
ip link set pg0p master "$MB_BR" up
ip link set pg0 address 02:00:00:00:00:99 up
sysctl -qw net.ipv6.conf.pg0.disable_ipv6=1 net.ipv6.conf.pg0p.disable_ipv6=1

dir=$(mktemp -d /run/mbvisor-t66.XXXXXX)
mb_defer rm -rf "$dir"
truncate -s 1M "$dir/vm1"
setsid mbhostd --state-dir "$dir/state" --vm vm1 --shm "$dir/vm1" --mac $MB \
	--rate 100000 --burst 100000 </dev/null >"$dir/hostd.log" 2>&1 &
hostd=$!
mb_defer kill "$hostd"

log "# the VM registers its middlebox with 20 rules"
{
	echo "R F $MB 10.0.0.100"
	echo "A $MB T 9 d 5000 p udp"
	for ((p = 1; p < 20; p++)); do
		echo "A $MB T 4 s $((3000 + p))"
	done
} >"$dir/cmds"
check_ok fakeguest "$dir/vm1" script "$dir/cmds" "$dir/answers" 8
check_eq 21 "$(grep -c '^[0-9]* 0 ok:' "$dir/answers")" "answered ok"
mbadm -j show $MB | jq -r '.[0].rules[].rule' | sort >"$dir/want"
check_eq 20 "$(wc -l <"$dir/want")" "rules registered"

# registry_restored: MB has exactly the VM's rules, registered and enabled
registry_restored()
{
	local j

	j=$(mbadm -j show $MB 2>/dev/null) || return 1
	[[ $(jq -r '.[0].enabled' <<<"$j") == true ]] || return 1
	[[ $(jq -r '.[0].ip' <<<"$j") == 10.0.0.100 ]] || return 1
	jq -r '.[0].rules[].rule' <<<"$j" | sort | cmp -s - "$dir/want"
}

# rmmod NAME, retried while a netlink dump (mbhostd's) holds the module
unload()
{
	local m tries

	for m in mblb mbfw mbhook mbstate; do
		[[ -e /sys/module/$m ]] || continue
		for ((tries = 0; tries < 50; tries++)); do
			rmmod "$m" 2>"$dir/rmmod.err" && break
			grep -q 'in use' "$dir/rmmod.err" || break
			sleep 0.1
		done
		if [[ -e /sys/module/$m ]]; then
			mb_fail "rmmod $m: $(cat "$dir/rmmod.err")"
			return 1
		fi
	done
}

log "# $CYCLES reloads under a flood, with netlink changes"
echo rem_device_all >$PG/kpktgend_0
echo add_device pg0 >$PG/kpktgend_0
for line in "count 0" "pkt_size 60" "delay 0" "dst_mac $MB" \
	"dst_min 10.0.0.100" "dst_max 10.0.0.100" "src_min 10.0.0.9" \
	"src_max 10.0.0.9" "udp_dst_min 5000" "udp_dst_max 5000"; do
	echo "$line" >$PG/pg0
done
echo start >$PG/pgctrl &
pg=$!
churn()
{
	local i=0

	while :; do
		mbadm cmd "R F $MB2 10.0.0.101" || true
		mbadm cmd "A $MB2 T 9 d $((6000 + i % 50)) p udp" || true
		mbadm cmd "D $MB2 T 9 d $((6000 + (i + 25) % 50))" || true
		i=$((i + 1))
	done >/dev/null 2>&1
}
churn &
churner=$!
t0=$SECONDS
survived=0
slowest=0
for ((cycle = 1; cycle <= CYCLES; cycle++)); do
	unload || break
	mb_load_modules
	c0=$SECONDS
	if ! mb_wait_for 30 registry_restored; then
		mb_fail "cycle $cycle: not restored: $(mbadm show $MB 2>&1 | head -3); $(tail -n 3 "$dir/hostd.log")"
		break
	fi
	((SECONDS - c0 > slowest)) && slowest=$((SECONDS - c0))
	kill -0 "$hostd" || { mb_fail "mbhostd died"; break; }
	survived=$cycle
	((cycle % 10)) || log "cycle $cycle: restored ($((SECONDS - t0)) s)"
done
secs=$((SECONDS - t0))
check_eq "$CYCLES" "$survived" "cycles with the registry restored"
kill $churner
wait $churner 2>/dev/null || true

log "# still filtering after the reloads"
drops()
{
	mbadm -j show $MB |
		jq '[.[0].rules[] | select(.rule == "T 9 d 5000 p udp")][0].packets // 0'
}
before=$(drops)
rx=$(counter mb eth0)
sleep 2
check_ge $((before + 1)) "$(drops)" "frames dropped by the restored rule in 2 s (from $before)"
check_eq "$rx" "$(counter mb eth0)" "frames that reached the middlebox in these 2 s"
echo stop >$PG/pgctrl
wait $pg 2>/dev/null || true
# (vm_log keeps 20 lines per 10 s: some restores are not in the log)
restores=$(grep -c 'restored $MB' "$dir/hostd.log" || true)
grep -q '^mbhostd: error' "$dir/hostd.log" &&
	mb_fail "errors logged: $(grep '^mbhostd: error' "$dir/hostd.log" | head -3)" ||
	mb_pass "no error in mbhostd's log"
mb_unload_modules
log "FIGURES: reload cycles survived $survived of $CYCLES, registry restored by mbhostd after each (checked each cycle; slowest ${slowest} s), ${secs} s"
mb_test_end
