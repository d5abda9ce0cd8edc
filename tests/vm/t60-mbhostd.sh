#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# mbhostd against the real registry: commands written by mbctl into a
# shared-memory file (no VM: mbctl --shm plays the middlebox) are applied
# through netlink and answered; another VM's MAC is refused; kill -9 in the
# middle of a stream applies every command exactly once; a reload of the
# modules, with mbhostd running and with mbhostd stopped, is followed by a
# restore of what the VM asked for.
#
#   mbctl --shm $dir/vm1 ---+                      +--> mbstate.ko registry
#                           +--> mbhostd --netlink-+      (mbadm -j show)
#   mbctl --shm $dir/vm2 ---+    state in $dir/state
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/mb.sh"

MB=52:34:56:00:12:22	# vm1's middlebox
MB2=52:34:56:00:12:23	# vm2's middlebox
IP=10.129.126.115

mb_require_cmd mbhostd mbctl mbadm jq
mb_fresh_registry

dir=$(mktemp -d /run/mbvisor-t60.XXXXXX)
mb_defer rm -rf "$dir"
truncate -s 1M "$dir/vm1" "$dir/vm2"
hostd=

start_hostd()
{
	setsid env ${FAULT:+MBHOSTD_FAULT=$FAULT} mbhostd --state-dir "$dir/state" --vm vm1 --shm "$dir/vm1" \
		--mac $MB --vm vm2 --shm "$dir/vm2" --mac $MB2 \
		</dev/null >>"$dir/hostd.log" 2>&1 &
	hostd=$!
	echo "$hostd" >"$dir/hostd.pid"
	# Served once the vm1 channel answers a query (refused or not).
	mb_wait_for 20 sh -c "mbctl --shm '$dir/vm1' -t 2 -q show $MB >/dev/null 2>&1; [ \$? -le 1 ]"
}

stop_hostd()
{
	kill "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

mb_defer sh -c "kill -9 \$(cat '$dir/hostd.pid' 2>/dev/null) 2>/dev/null"

nrules()
{
	mbadm -j show $MB 2>/dev/null | jq -r '.[0].nrules // "none"' || echo none
}

log "# commands from the guest reach the registry"
start_hostd
expect_out 0 "ok: R F $MB $IP" mbctl --shm "$dir/vm1" -w "@R F $MB $IP@"
check_eq "$IP" "$(mb_json $MB .ip)" "registered through the channel"
expect_out 0 "ok:" mbctl --shm "$dir/vm1" rule add $MB M 5 s 12:13:14:15:16:17 p 8
check_eq "M 5 s 12:13:14:15:16:17 p ipv4" "$(rule_json $MB 0 .rule)" "rule added"
expect_out 1 "already" mbctl --shm "$dir/vm1" register fw $MB $IP
expect_out 1 "already has this rule" mbctl --shm "$dir/vm1" rule add $MB M 5 s 12:13:14:15:16:17 p ipv4
expect_out 0 "A $MB M 5 s 12:13:14:15:16:17 p ipv4 # id" mbctl --shm "$dir/vm1" show $MB
expect_out 0 "R F $MB $IP" mbctl --shm "$dir/vm1" show $MB
expect_out 0 "" mbctl --shm "$dir/vm1" disable $MB
check_eq false "$(mb_json $MB .enabled)" "disabled through the channel"
expect_out 0 "" mbctl --shm "$dir/vm1" enable $MB

log "# one VM never changes another's offloads"
before=$(mbadm -j show | jq -c .)
expect_out 1 "Permission denied: $MB is not a MAC address of VM \`vm2'" \
	mbctl --shm "$dir/vm2" unregister $MB
expect_out 1 "Permission denied" mbctl --shm "$dir/vm2" rule add $MB T 4 s 22
expect_out 1 "Permission denied" mbctl --shm "$dir/vm2" show $MB
check_eq "$before" "$(mbadm -j show | jq -c .)" "registry unchanged by vm2"
expect_out 0 "ok: R F $MB2" mbctl --shm "$dir/vm2" register fw $MB2 10.0.0.23

log "# counters page"
mb_wait_for 5 sh -c "mbctl --shm '$dir/vm1' stats $MB | grep -q 'F   enabled'"
expect_out 0 "F   enabled       1" mbctl --shm "$dir/vm1" stats $MB

log "# kill -9 during a stream: every command applied exactly once"
# Each command adds a distinct rule: one applied twice would be refused
# ("already has this rule") and make its mbctl exit 1.
N=60
(
	for ((p = 1000; p < 1000 + N; p++)); do
		rc=0
		mbctl --shm "$dir/vm1" -t 60 -q rule add $MB T 4 s $p || rc=$?
		echo "$p $rc"
	done >"$dir/stream"
) &
stream=$!
for k in 1 2 3; do
	sleep 0.$((3 * k))
	kill -9 "$hostd"
	wait "$hostd" 2>/dev/null || true
	start_hostd
done
wait "$stream"
check_eq "$N" "$(grep -c ' 0$' "$dir/stream")" "mbctl exit 0 for every command"
check_eq "$((N + 1))" "$(nrules)" "rules in the registry (1 + $N)"
log "$(grep -E 'had been applied|had not been applied' "$dir/hostd.log" | tail -n 3 || true)"

log "# mbhostd dies right before / right after the kernel runs a command"
# MBHOSTD_FAULT makes it _exit(99) there; mbctl keeps waiting, the next
# mbhostd finds the command pending and decides from the registry whether
# it took effect: each must be applied exactly once and answered "ok".
# crash POINT EXPECT-LOG TEXT CMD...: run CMD (mbctl) against a mbhostd that
# dies at POINT, restart it, CMD must exit 0.
crash()
{
	local point=$1 want=$2 rc=0 pid

	shift 2
	stop_hostd "$hostd"
	: >"$dir/hostd.log"
	FAULT=$point start_hostd
	"$@" >"$dir/crash.out" 2>&1 &
	pid=$!
	wait "$hostd" 2>/dev/null || rc=$?
	check_eq 99 "$rc" "mbhostd died at $point during: ${*: -5}"
	start_hostd
	rc=0
	wait "$pid" || rc=$?
	check_eq 0 "$rc" "answered ok after the restart: $(cat "$dir/crash.out")"
	if grep -q "$want" "$dir/hostd.log"; then
		mb_pass "mbhostd said: $(grep "$want" "$dir/hostd.log" | tail -n1)"
	else
		mb_fail "no '$want' in the log: $(tail -n 5 "$dir/hostd.log")"
	fi
}
R=$(nrules)
crash after-exec "had been applied" mbctl --shm "$dir/vm1" -t 60 rule add $MB T 4 s 2000
crash before-exec "had not been applied" mbctl --shm "$dir/vm1" -t 60 rule add $MB T 4 s 2001
check_eq $((R + 2)) "$(nrules)" "two rules added once each"
crash after-exec "had been applied" mbctl --shm "$dir/vm1" -t 60 rule del $MB T 4 s 2000
crash before-exec "had not been applied" mbctl --shm "$dir/vm1" -t 60 rule del $MB T 4 s 2001
check_eq "$R" "$(nrules)" "both deleted once each"
crash after-exec "had been applied" mbctl --shm "$dir/vm2" -t 60 unregister $MB2
crash before-exec "had not been applied" mbctl --shm "$dir/vm2" -t 60 register fw $MB2 10.0.0.23
crash after-exec "had been applied" mbctl --shm "$dir/vm2" -t 60 unregister $MB2
crash after-exec "had been applied" mbctl --shm "$dir/vm2" -t 60 register fw $MB2 10.0.0.23
check_eq "10.0.0.23" "$(mb_json $MB2 .ip)" "vm2's middlebox registered again"
crash after-exec "had not been applied" mbctl --shm "$dir/vm1" -t 60 disable $MB
check_eq false "$(mb_json $MB .enabled)" "disabled (a switch is simply set again)"
FAULT=

log "# the registry reloaded under a running mbhostd: restored"
mb_unload_modules
mb_load_modules
if mb_wait_for 30 sh -c "[ \"\$(mbadm -j show $MB 2>/dev/null | jq -r '.[0].nrules')\" = $((N + 1)) ]"; then
	mb_pass "restored $((N + 1)) rules after the reload"
else
	mb_fail "not restored: $(mbadm show 2>&1 | head -5); log: $(tail -n 5 "$dir/hostd.log")"
fi
check_eq false "$(mb_json $MB .enabled)" "restored disabled"
check_eq "10.0.0.23" "$(mb_json $MB2 .ip)" "vm2's middlebox restored too"

log "# reloaded while mbhostd was stopped: restored at start"
stop_hostd "$hostd"
mb_unload_modules
mb_load_modules
check_eq "[]" "$(mbadm -j show | jq -c .)" "registry empty after the reload"
start_hostd
if mb_wait_for 30 sh -c "[ \"\$(mbadm -j show $MB 2>/dev/null | jq -r '.[0].nrules')\" = $((N + 1)) ]"; then
	mb_pass "restored at start"
else
	mb_fail "not restored at start: $(tail -n 5 "$dir/hostd.log")"
fi

log "# what a VM unregistered stays unregistered"
expect_out 0 "ok: X $MB" mbctl --shm "$dir/vm1" unregister $MB
mb_unload_modules
mb_load_modules
mb_wait_for 30 sh -c "mbadm -j show $MB2 >/dev/null 2>&1" || true
check_eq "[\"$MB2\"]" "$(mbadm -j show | jq -c '[.[].mac]')" "only vm2's middlebox restored"
stop_hostd "$hostd"
grep -q '^mbhostd: error' "$dir/hostd.log" && mb_fail "errors logged: $(grep '^mbhostd: error' "$dir/hostd.log" | head -3)" ||
	mb_pass "no error in mbhostd's log"
mb_test_end
