#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# mbhostd killed with SIGKILL at random points (seeded: MBVISOR_SEED, else
# the time; the seed is printed) while a guest streams 10,000 commands into
# its shared memory, and restarted each time. Every command must be applied
# exactly once and answered, and the registry must end as the guest asked.
#
# The guest is tests/host/fakeguest's "script" mode, not mbctl: one process
# that keeps up to 32 commands in the ring (so that a kill finds several
# published and not answered) and reads every answer in order, across the
# restarts. 10,000 mbctl processes, each waiting for its own answer, would
# spend minutes in fork and exec under TCG and never have more than one
# command in flight.
#
# The commands (each names a distinct rule, so that any slip shows):
#   R F <MAC> <IP>, then for i = 0..5024: A <MAC> T 4 s (10000+i), and from
#   i = 51 on, after it, D <MAC> T 4 s (10000+i-51): 1 + 5025 + 4974 =
#   10,000 commands; the registry ends with the last 51 rules.
# A command applied twice is refused by the kernel (an add: "already has
# this rule"; a delete: no rule selected) and answered so; a lost add makes
# its delete refused or its rule missing at the end; a lost delete leaves
# its rule there. So: every answer "ok", the rules at the end exactly the
# expected 51, and the kernel's own change notifications (mbadm monitor)
# one add and at most one delete per rule.
#
#   fakeguest script ---> $dir/vm1 (shm) ---> mbhostd ---> mbstate.ko
#                                     kill -9 / restart, state in $dir/state
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/mb.sh"

MB=52:34:56:00:65:22
IP=10.129.126.115
W=51			# rules alive at the end
NADD=5025		# 1 + NADD + (NADD - W) = 10,000 commands
BASE=10000		# first source port

mb_require_cmd mbhostd mbadm fakeguest jq
mb_fresh_registry

seed=${MBVISOR_SEED:-$(date +%s)}
RANDOM=$seed
log "# seed $seed (MBVISOR_SEED=$seed repeats the kill times)"

dir=$(mktemp -d /run/mbvisor-t65.XXXXXX)
mb_defer rm -rf "$dir"
truncate -s 1M "$dir/vm1"
hostd=

start_hostd()
{
	setsid mbhostd --state-dir "$dir/state" --vm vm1 --shm "$dir/vm1" \
		--mac $MB --rate 1000000 --burst 1000000 \
		</dev/null >>"$dir/hostd.log" 2>&1 &
	hostd=$!
	echo "$hostd" >"$dir/hostd.pid"
}
mb_defer sh -c "kill -9 \$(cat '$dir/hostd.pid' 2>/dev/null) 2>/dev/null"

{
	echo "R F $MB $IP"
	for ((i = 0; i < NADD; i++)); do
		echo "A $MB T 4 s $((BASE + i))"
		((i < W)) || echo "D $MB T 4 s $((BASE + i - W))"
	done
} >"$dir/cmds"
N=$(wc -l <"$dir/cmds")
check_eq 10000 "$N" "commands in the stream"

# The kernel's view: every change of the registry, as a command.
mbadm -j monitor >"$dir/monitor" 2>&1 &
monitor=$!
mb_defer kill "$monitor"
sleep 1

start_hostd
# (fakeguest waits up to 10 s for mbhostd to format the memory)
fakeguest "$dir/vm1" script "$dir/cmds" "$dir/answers" 32 \
	>"$dir/guest.out" 2>&1 &
guest=$!

# cmd_cons, the host's "answered up to" in the header (offset 80)
cons()
{
	od -An -tu4 -j80 -N4 "$dir/vm1" | tr -d ' '
}
# Kill points: one kill in 8 comes 0-400 ms after the start (mbhostd
# loading its state file, resolving the command it died in); the others
# 20 ms-1 s after it answered its first command since the start. Killing
# stops after KILL_SECS so that the stream ends within the time bound.
KILL_SECS=${MBVISOR_KILL_SECS:-150}
kills=0
early=0
t0=$SECONDS
while kill -0 "$guest" 2>/dev/null && ((SECONDS - t0 < KILL_SECS)); do
	if ((RANDOM % 8 == 0)); then
		ms=$((RANDOM % 400))
		early=$((early + 1))
	else
		c=$(cons)
		while [[ $(cons) == "$c" ]] && kill -0 "$guest" 2>/dev/null; do
			sleep 0.05
		done
		ms=$((20 + RANDOM % 980))
	fi
	sleep "$((ms / 1000)).$(printf %03d $((ms % 1000)))"
	kill -0 "$guest" 2>/dev/null || break
	if ! kill -0 "$hostd" 2>/dev/null; then
		mb_fail "mbhostd died by itself: $(tail -n 5 "$dir/hostd.log")"
		start_hostd
		continue
	fi
	kill -9 "$hostd"
	wait "$hostd" 2>/dev/null || true
	kills=$((kills + 1))
	start_hostd
done
log "$kills kills ($early of them within 400 ms of a start) in $((SECONDS - t0)) s, at answer $(cons)"
# the rest of the stream, bounded
for ((w = 0; w < 300; w++)); do
	kill -0 "$guest" 2>/dev/null || break
	sleep 1
done
if kill -0 "$guest" 2>/dev/null; then
	mb_fail "stream not done after $((SECONDS - t0)) s: at answer $(cons)"
	kill "$guest"
fi
rc=0
wait "$guest" || rc=$?
secs=$((SECONDS - t0))
check_eq 0 "$rc" "fakeguest: $(tail -n 2 "$dir/guest.out" | head -n 1)"
sleep 2	# the last notifications

# Answers: one per command, in order, each "ok: <its command>".
answered=$(wc -l <"$dir/answers")
check_eq "$N" "$answered" "answers the guest read"
awk -v cmds="$dir/cmds" '
	BEGIN { while ((getline l < cmds) > 0) want[n++] = l }
	{
		seq = $1; st = $2
		msg = $0; sub(/^[^ ]+ [^ ]+ /, "", msg)
		if (NR == 1) first = seq
		i = seq - first
		if (i != NR - 1) { print "order " NR ": seq " seq; bad++ }
		if (st == 0 && (msg == "ok: " want[i] ||
		    msg == "ok: " want[i] " (applied before mbhostd restarted)"))
			ok++
		else if (want[i] ~ /^A / && msg ~ /already has this rule/)
			twice++
		else if (want[i] ~ /^D / && st == 1)
			deleted_nothing++
		else { print "command " i " (" want[i] "): " st " " msg; bad++ }
		if (msg ~ /applied before mbhostd restarted/) before++
	}
	END {
		printf "ok %d twice %d deleted_nothing %d other %d resolved_applied %d\n",
			ok, twice, deleted_nothing, bad, before
	}' "$dir/answers" >"$dir/verdict"
grep -v '^ok [0-9]* twice' "$dir/verdict" | head -n 5 || true
read -r _ ok _ twice _ delnothing _ other _ resolved < <(tail -n 1 "$dir/verdict")
check_eq "$N" "$ok" "answered ok, each with its own command"
check_eq 0 "$twice" "adds answered 'already has this rule' (applied twice)"
check_eq 0 "$delnothing" "deletes that found nothing (applied twice, or their add lost)"
check_eq 0 "$other" "other answers"

# The registry against what the guest asked for.
for ((i = NADD - W; i < NADD; i++)); do
	echo "T 4 s $((BASE + i))"
done | sort >"$dir/want"
mbadm -j show $MB | jq -r '.[0].rules[].rule' | sort >"$dir/have"
missing=$(comm -23 "$dir/want" "$dir/have" | wc -l)
extra=$(comm -13 "$dir/want" "$dir/have" | wc -l)
check_eq "$W" "$(wc -l <"$dir/have")" "rules in the registry"
check_eq 0 "$missing" "expected rules missing (lost adds)"
check_eq 0 "$extra" "rules that should be gone (lost deletes)"
check_eq "$IP" "$(mb_json $MB .ip)" "registered as asked"
check_eq true "$(mb_json $MB .enabled)" "enabled"

# The kernel's notifications: each add once, each delete once.
kill "$monitor" 2>/dev/null || true
wait "$monitor" 2>/dev/null || true
if grep -q '"event":"lost"' "$dir/monitor"; then
	log "monitor lost notifications (socket overrun): kernel count skipped"
else
	adds=$(jq -r 'select(.event == "new_rule") | .command' "$dir/monitor" |
		sort | uniq -c | awk '$1 == 1 { one++ } $1 > 1 { more++ }
			END { print one + 0, more + 0 }')
	dels=$(jq -r 'select(.event == "del_rule") | .command' "$dir/monitor" |
		sort | uniq -c | awk '$1 == 1 { one++ } $1 > 1 { more++ }
			END { print one + 0, more + 0 }')
	check_eq "$NADD 0" "$adds" "kernel: rules added once (once, more than once)"
	check_eq "$((NADD - W)) 0" "$dels" "kernel: rules deleted once (once, more than once)"
fi

restarts=$(grep -c 'had been applied\|had not been applied' "$dir/hostd.log" || true)
log "$(grep -E 'had been applied|had not been applied' "$dir/hostd.log" | tail -n 2 || true)"
grep -q '^mbhostd: error' "$dir/hostd.log" &&
	mb_fail "errors logged: $(grep '^mbhostd: error' "$dir/hostd.log" | head -3)" ||
	mb_pass "no error in mbhostd's log"
lost=$((N - ok - twice + missing + extra))
((lost < 0)) && lost=0
log "FIGURES: seed $seed, commands $N, kills $kills, pending commands resolved at restart $restarts (applied before the kill: $resolved), lost: $lost, applied twice: $((twice + delnothing)), ${secs} s"
mb_test_end
