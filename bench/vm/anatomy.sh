#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# bench: anatomy - where a frame's time goes, step by step (explains part 1)
#
# The same bridge and pktgen as bench/vm/dataplane.sh, in one namespace,
# with mbvisor's path cut at each step, so that the difference between two
# neighbouring rows is the cost of one step (with the icount clock, in guest
# instructions: 250,000,000 / rate):
#
#   anatomy_bridge_pps        no hook at all, frame forwarded to `oth`
#   anatomy_nullhook_pps      + a hook that accepts everything (mblimit accept=1):
#                               the netfilter hook call itself
#   anatomy_nomb_pps          mbhook instead, no middlebox registered: mbhook_rx
#                               and a registry lookup that misses (empty table)
#   anatomy_idle_pps          one middlebox registered, frame for `oth`: a miss
#   anatomy_disabled_pps      frame for a disabled middlebox: a hit, counters
#   anatomy_norules_pps       frame for an enabled middlebox without rules:
#                               + the call into mbfw
#   anatomy_pass_pps          one rule, which the frame does not match: + key
#                               extraction and one classifier subtable
#   anatomy_limit_pps         mblimit: the cheapest drop at the hook
#   anatomy_drop_pps          the frame matches the rule: dropped by mbfw
#
# Each round measures every row once; rounds: MBVISOR_BENCH_ROUNDS, at
# most 3 (with the icount clock the rows hardly move between rounds).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../../tests/lib.sh
source "$MBVISOR_ROOT/tests/lib.sh"
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$MBVISOR_ROOT/bench/lib.sh"

LIMIT_KO=$MBVISOR_ROOT/bench/limit/mblimit.ko
MB=52:54:00:00:30:01
RULE_SRC=10.16.0.1

point()
{
	local name=$1 r=$2 dst=$3 src=$4 expect=$5 oth0 mbp0 out pps sent oth mbp

	pg_config "" "$dst" "$src" || bench_die "$name: pktgen setup failed"
	oth0=$(tx_of "" oth)
	mbp0=$(tx_of "" mbp)
	out=$(pg_run "") || bench_die "$name: pktgen run failed"
	read -r pps sent <<<"$out"
	oth=$(($(tx_of "" oth) - oth0))
	mbp=$(($(tx_of "" mbp) - mbp0))
	case $expect in
	oth) ((sent > 0 && oth == sent && mbp == 0)) ;;
	mbp) ((sent > 0 && mbp == sent && oth == 0)) ;;
	drop) ((sent > 0 && oth == 0 && mbp == 0)) ;;
	esac || bench_die "$name: $sent sent, $oth left through oth, $mbp through mbp (expected: $expect)"
	bench_sample "$name" "$r" "$pps"
}

mb_require_cmd mbadm
[[ -e $LIMIT_KO ]] || bench_die "$LIMIT_KO not built (bench/run builds it)"
bench_init anatomy
mb_unload_modules
modprobe pktgen
modprobe dummy numdummies=0
bench_bridge ""
bench_fdb_mb "" "$MB"
rounds=$((BENCH_ROUNDS < 3 ? BENCH_ROUNDS : 3))
for ((r = 1; r <= rounds; r++)); do
	point anatomy_bridge_pps "$r" "$BENCH_OTHER_MAC" "$BENCH_NOMATCH_IP" oth
	insmod "$LIMIT_KO" accept=1
	point anatomy_nullhook_pps "$r" "$BENCH_OTHER_MAC" "$BENCH_NOMATCH_IP" oth
	rmmod mblimit
	mb_load_modules >/dev/null
	point anatomy_nomb_pps "$r" "$BENCH_OTHER_MAC" "$BENCH_NOMATCH_IP" oth
	mbadm cmd "R F $MB 10.0.3.1"
	point anatomy_idle_pps "$r" "$BENCH_OTHER_MAC" "$BENCH_NOMATCH_IP" oth
	mbadm cmd "D $MB"
	point anatomy_disabled_pps "$r" "$MB" "$RULE_SRC" mbp
	mbadm cmd "A $MB"
	point anatomy_norules_pps "$r" "$MB" "$RULE_SRC" mbp
	mbadm cmd "A $MB I 4 s $RULE_SRC"
	point anatomy_pass_pps "$r" "$MB" "$BENCH_NOMATCH_IP" mbp
	point anatomy_drop_pps "$r" "$MB" "$RULE_SRC" drop
	mb_unload_modules
	insmod "$LIMIT_KO"
	point anatomy_limit_pps "$r" "$MB" "$RULE_SRC" drop
	rmmod mblimit
	sleep 1
done
