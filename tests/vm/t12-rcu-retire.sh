#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Regression test of audit finding 1 (docs/SECURITY.md, A1): rule deletes
# and replaces must not read a rule set after handing it to call_rcu().
#
#   gp.py (forces grace periods: membarrier(MEMBARRIER_CMD_GLOBAL) is a
#   synchronize_rcu() from userspace, in a loop on the other CPU)
#
#   mbadm batch  -> NN,000 rules      \
#   mbadm cmd D  -> deletes all of them > repeated; each one used to walk
#   mbadm replace -> 1 rule            /  the old set after retiring it
#
# Before the fix, DEL_RULE and a replacing NEW_RULE walked old->rules
# (and sent a notification, which allocates and may sleep) after
# mbstate_fw_replace() had queued the old set's free: with a grace period
# ending mid-walk the free ran under it. The kernel here boots with
# slub_debug=FZPU init_on_free=1 (tests/vm/run), so freed memory reads as
# poison or zero: the walk oopses (panic_on_warn, oops=panic) or SLUB
# reports the corruption, and the harness fails the script on the BUG line.
# The registry must also be exactly what the commands asked for at the end.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/mb.sh"

MB=52:34:56:00:12:22
N=${MBVISOR_T12_RULES:-30000}
ROUNDS=${MBVISOR_T12_ROUNDS:-6}

mb_require_cmd mbadm jq python3
mb_fresh_registry

dir=$(mktemp -d /run/mbvisor-t12.XXXXXX)
mb_defer rm -rf "$dir"

# N distinct class I rules (source address), and a one-rule set
python3 - "$MB" "$N" >"$dir/big" <<'EOF'
import sys
mac, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    print(f"A {mac} I 4 s 10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}")
EOF
echo "A $MB T 9 d 5000 p udp" >"$dir/one"

cat >"$dir/gp.py" <<'EOF'
import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
SYS_membarrier, CMD_QUERY, CMD_GLOBAL = 324, 0, 1
if not libc.syscall(SYS_membarrier, CMD_QUERY, 0, 0) & CMD_GLOBAL:
    sys.exit("membarrier(MEMBARRIER_CMD_GLOBAL) is not supported")
n = 0
end = time.monotonic() + float(sys.argv[1])
while time.monotonic() < end:
    if libc.syscall(SYS_membarrier, CMD_GLOBAL, 0, 0):
        sys.exit(f"membarrier: {os.strerror(ctypes.get_errno())}")
    n += 1
print(n)
EOF

check_ok mbadm cmd "R F $MB 10.0.0.100"
python3 "$dir/gp.py" 1200 >"$dir/gp.out" &
gp=$!
mb_defer kill "$gp"

for ((r = 1; r <= ROUNDS; r++)); do
	check_ok mbadm batch "$dir/big"
	check_eq "$N" "$(mb_json $MB '.rules | length')" "round $r: rules loaded"
	if ((r % 2)); then
		# DEL_RULE with a selector that takes every rule of the set
		check_ok mbadm cmd "D $MB I 4 s"
		check_eq 0 "$(mb_json $MB '.rules | length')" "round $r: D took them all"
	else
		# NEW_RULE with MBSTATE_A_REPLACE: N rules out, one in
		check_ok mbadm replace $MB "$dir/one"
		check_eq "T 9 d 5000 p udp" "$(mb_json $MB '.rules | map(.rule) | join(",")')" \
			"round $r: replace left the one rule"
		check_ok mbadm cmd "D $MB T 9 d 5000 p udp"
	fi
done
kill -0 "$gp" 2>/dev/null || mb_fail "the grace-period thread ended early: $(cat "$dir/gp.out")"
kill "$gp"
wait "$gp" 2>/dev/null || true
check_eq "[]" "$(mbadm -j show $MB | jq -c '.[0].rules')" "no rule left"
check_ok mbadm cmd "X $MB"
mb_test_end
