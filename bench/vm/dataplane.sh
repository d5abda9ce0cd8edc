#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# bench: dataplane - time to process a frame at the bridge (issue part 1)
#
# Time to process a frame at the bridge (benchmark issue,
# part 1). Runs in the guest that bench/run boots; see bench/lib.sh for the
# bridge and for how pktgen measures.
#
# Contenders, each measured once per round, all in one boot:
#
#   without mbvisor's modules          with them loaded (6 middleboxes)
#   bridge      bare bridge, frame     idle       frame for `oth`
#               for `oth`              pass       for the 1,000-rule
#   nullhook    + a hook that accepts             middlebox, no rule
#               everything (mblimit               matches
#               accept=1)              drop_N     for the N-rule middlebox,
#   limit       + a hook that drops               dropped by one of its
#               everything (mblimit)              rules (N = 1, 100, 1k,
#   nft_drop_N  nftables bridge prerouting,       10k, 100k)
#               N linear rules
#   nft_set_drop_N  one rule, a set of N addresses
#
# Rules of size N are N distinct source addresses (bench_addr 0..N-1), one
# class I rule `I 4 s ADDR` (or nft rule `ip saddr ADDR drop`, or set
# element) each; the dropped traffic comes from address N/2, so a linear
# nft chain walks half of its rules, the average over evenly spread
# traffic. The nft tables live in their own network namespaces (one bridge
# each, same shape), loaded once: nftables hooks are per namespace, so they
# cost nothing to the root namespace's bridge. mbvisor's modules and mblimit
# register in every namespace: they are loaded only while their contenders
# run. Each round measures every contender once; the order alternates from
# round to round (see the main loop), so a drift of the machine's speed
# hits both sides alike.
#
# Every sample is checked: the frames pktgen sent must all have left through
# the expected port, or none at all for a drop, and mbvisor's drop counter
# must have counted each of them; otherwise the bench stops with an error.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../../tests/lib.sh
source "$MBVISOR_ROOT/tests/lib.sh"
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$MBVISOR_ROOT/bench/lib.sh"

LIMIT_KO=$MBVISOR_ROOT/bench/limit/mblimit.ko
MB_SIZES=(1 100 1000 10000 100000)
NFT_SIZES=(1 100 1000 10000)
SET_SIZES=(1 100 1000 10000 100000)
IDLE_RULES=1000
MB_IDLE_MAC=52:54:00:00:10:00
WORK=/tmp/bench-dataplane	# guest tmpfs

# 1 -> 1, 1000 -> 1k, 100000 -> 100k
size_name()
{
	case $1 in
	*000) echo "$(($1 / 1000))k" ;;
	*) echo "$1" ;;
	esac
}

mb_mac()
{
	printf '52:54:00:00:%02x:01\n' "$(( ${#1} ))"	# one per size: 1, 3, 4, 5, 6 digits
}

mb_ip()
{
	echo "10.0.1.${#1}"
}

# awk program printing addresses FIRST..FIRST+N-1 as PREFIX ADDR SUFFIX lines
addr_lines()
{
	awk -v n="$1" -v pre="$2" -v suf="$3" 'BEGIN {
		for (i = 0; i < n; i++)
			printf "%s10.%d.%d.%d%s\n", pre, 16 + int(i / 65536),
				int(i / 256) % 256, i % 256, suf
	}'
}

make_inputs()
{
	local n

	mkdir -p "$WORK"
	{
		echo "R F $MB_IDLE_MAC 10.0.1.100"
		for n in "${MB_SIZES[@]}"; do
			echo "R F $(mb_mac "$n") $(mb_ip "$n")"
		done
		addr_lines "$IDLE_RULES" "A $MB_IDLE_MAC I 4 s " ""
		for n in "${MB_SIZES[@]}"; do
			addr_lines "$n" "A $(mb_mac "$n") I 4 s " ""
		done
	} >"$WORK/mbvisor.batch"
}

nft_setup()
{
	local n ns

	for n in "${NFT_SIZES[@]}"; do
		ns=nftr$(size_name "$n")
		bench_bridge "$ns"
		bench_fdb_mb "$ns" "$(mb_mac "$n")"
		{
			echo "table bridge t {"
			echo "chain p {"
			echo "type filter hook prerouting priority -300; policy accept;"
			addr_lines "$n" "ip saddr " " drop"
			echo "}"
			echo "}"
		} >"$WORK/$ns.nft"
		in_ns "$ns" nft -f "$WORK/$ns.nft" || bench_die "nft -f $WORK/$ns.nft failed"
	done
	for n in "${SET_SIZES[@]}"; do
		ns=nfts$(size_name "$n")
		bench_bridge "$ns"
		bench_fdb_mb "$ns" "$(mb_mac "$n")"
		{
			echo "table bridge t {"
			echo "set s {"
			echo "type ipv4_addr;"
			echo "elements = {"
			addr_lines "$n" "" ","
			echo "}"
			echo "}"
			echo "chain p {"
			echo "type filter hook prerouting priority -300; policy accept;"
			echo "ip saddr @s drop"
			echo "}"
			echo "}"
		} >"$WORK/$ns.nft"
		in_ns "$ns" nft -f "$WORK/$ns.nft" || bench_die "nft -f $WORK/$ns.nft failed"
	done
}

fw_drops()
{
	mbadm -j stats | jq -e --arg m "$1" '.[] | select(.mac == $m) | .fw_drop_packets'
}

# point NAME ROUND NS DST_MAC SRC_IP EXPECT [MB_MAC]
# EXPECT: oth or mbp (every frame leaves there), drop (none leaves). With
# MB_MAC, mbvisor's drop counter of that middlebox must count every frame.
# ROUND 0 is the warm-up: measured, checked, not recorded.
point()
{
	local name=$1 round=$2 ns=$3 dst=$4 src=$5 expect=$6 mb=${7:-}
	local oth0 mbp0 oth mbp out pps sent drops0=0 drops

	pg_config "$ns" "$dst" "$src" || bench_die "$name: pktgen setup failed"
	oth0=$(tx_of "$ns" oth)
	mbp0=$(tx_of "$ns" mbp)
	[[ -z $mb ]] || drops0=$(fw_drops "$mb")
	out=$(pg_run "$ns") || bench_die "$name: pktgen run failed"
	read -r pps sent <<<"$out"
	oth=$(($(tx_of "$ns" oth) - oth0))
	mbp=$(($(tx_of "$ns" mbp) - mbp0))
	((sent > 0)) || bench_die "$name: pktgen sent nothing"
	case $expect in
	oth) ((oth == sent && mbp == 0)) ;;
	mbp) ((mbp == sent && oth == 0)) ;;
	drop) ((oth == 0 && mbp == 0)) ;;
	esac || bench_die "$name: $sent frames sent, $oth left through oth and $mbp through mbp (expected: $expect)"
	if [[ -n $mb ]]; then
		drops=$(($(fw_drops "$mb") - drops0))
		((drops == sent)) || bench_die "$name: $sent frames sent, mbvisor dropped $drops"
	fi
	if ((round > 0)); then
		bench_sample "$name" "$round" "$pps"
	fi
}

limit_load()
{
	insmod "$LIMIT_KO" "$@" || bench_die "insmod $LIMIT_KO $* failed"
}

# The contenders without mbvisor's modules.
plain_contenders()
{
	local n

	printf "%s\n" bridge nullhook limit
	for n in "${NFT_SIZES[@]}"; do
		echo "nft_drop_$(size_name "$n")"
	done
	for n in "${SET_SIZES[@]}"; do
		echo "nft_set_drop_$(size_name "$n")"
	done
}

mbvisor_contenders()
{
	local n

	printf "%s\n" idle pass
	for n in "${MB_SIZES[@]}"; do
		echo "drop_$(size_name "$n")"
	done
}

# run CONTENDER ROUND
run()
{
	local c=$1 r=$2 n mac ns

	case $c in
	bridge) point bridge_pps "$r" "" "$BENCH_OTHER_MAC" "$BENCH_NOMATCH_IP" oth ;;
	nullhook)
		limit_load accept=1
		point nullhook_pps "$r" "" "$BENCH_OTHER_MAC" "$BENCH_NOMATCH_IP" oth
		rmmod mblimit
		;;
	limit)
		limit_load
		point limit_pps "$r" "" "$(mb_mac 1)" "$(bench_addr 0)" drop
		rmmod mblimit
		;;
	idle) point idle_pps "$r" "" "$BENCH_OTHER_MAC" "$BENCH_NOMATCH_IP" oth ;;
	pass) point pass_pps "$r" "" "$MB_IDLE_MAC" "$BENCH_NOMATCH_IP" mbp ;;
	drop_*)
		for n in "${MB_SIZES[@]}"; do
			[[ $c == "drop_$(size_name "$n")" ]] && break
		done
		mac=$(mb_mac "$n")
		point "${c}_pps" "$r" "" "$mac" "$(bench_addr $((n / 2)))" drop "$mac"
		;;
	nft_drop_* | nft_set_drop_*)
		n=${c##*_}
		n=${n/k/000}
		if [[ $c == nft_set_* ]]; then
			ns=nfts${c##*_}
		else
			ns=nftr${c##*_}
		fi
		point "${c}_pps" "$r" "$ns" "$(mb_mac "$n")" "$(bench_addr $((n / 2)))" drop
		;;
	*) bench_die "unknown contender $c" ;;
	esac
}

# mbvisor_state loaded|unloaded: load the modules and install every rule
# set, or unload them. Loading costs a while (112,000 rules), so the rounds
# are ordered to do it as seldom as possible (see the main loop).
MB_LOADED=0
mbvisor_state()
{
	local t0

	if [[ $1 == loaded ]]; then
		((MB_LOADED)) && return 0
		mb_load_modules >/dev/null || bench_die "cannot load mbvisor's modules"
		t0=$SECONDS
		mbadm batch "$WORK/mbvisor.batch" >/dev/null || bench_die "mbadm batch failed"
		check_rules
		log "$(wc -l <"$WORK/mbvisor.batch") commands installed in $((SECONDS - t0))s"
		MB_LOADED=1
	else
		((MB_LOADED)) || return 0
		mb_unload_modules || bench_die "cannot unload mbvisor's modules"
		MB_LOADED=0
	fi
	# Let the kernel finish freeing the old rule sets (RCU callbacks)
	# before the next sample: that work would be counted against it.
	sleep 2
}

# phase plain|mbvisor ROUND fwd|rev
phase()
{
	local kind=$1 r=$2 dir=$3 list c

	if [[ $kind == plain ]]; then
		mbvisor_state unloaded
		mapfile -t list < <(plain_contenders)
	else
		mbvisor_state loaded
		mapfile -t list < <(mbvisor_contenders)
	fi
	if [[ $dir == rev ]]; then
		mapfile -t list < <(printf '%s\n' "${list[@]}" | tac)
	fi
	for c in "${list[@]}"; do
		run "$c" "$r"
	done
}

check_rules()
{
	local n got

	got=$(mbadm -j stats | jq -r --arg m "$MB_IDLE_MAC" '.[] | select(.mac == $m) | .nrules')
	[[ $got == "$IDLE_RULES" ]] || bench_die "idle middlebox has $got rules, not $IDLE_RULES"
	for n in "${MB_SIZES[@]}"; do
		got=$(mbadm -j stats | jq -r --arg m "$(mb_mac "$n")" '.[] | select(.mac == $m) | .nrules')
		[[ $got == "$n" ]] || bench_die "middlebox $(mb_mac "$n") has $got rules, not $n"
	done
}

mb_require_cmd mbadm nft jq awk
[[ -e $LIMIT_KO ]] || bench_die "$LIMIT_KO not built (bench/run builds it)"
bench_init dataplane
mb_unload_modules
modprobe pktgen
modprobe dummy numdummies=0
modprobe nf_tables
bench_meta contenders "$({ plain_contenders; mbvisor_contenders; } | paste -sd ' ')"

make_inputs
bench_bridge ""
bench_fdb_mb "" "$MB_IDLE_MAC"
for n in "${MB_SIZES[@]}"; do
	bench_fdb_mb "" "$(mb_mac "$n")"
done
t0=$SECONDS
nft_setup
log "nftables rule sets loaded in $((SECONDS - t0))s"

# Rounds alternate A B | B A | A B ... (A: the contenders without mbvisor,
# B: with it; the order inside B A is reversed too), so that each side runs
# as often early as late, and mbvisor's rules are installed once per two
# rounds. Round 0 is a short warm-up, not recorded.
secs=$BENCH_SECS
for ((r = 0; r <= BENCH_ROUNDS; r++)); do
	t0=$SECONDS
	if ((r == 0)); then
		BENCH_SECS=0.3
	else
		BENCH_SECS=$secs
	fi
	if ((r % 2 == 0)); then
		phase plain "$r" fwd
		phase mbvisor "$r" fwd
	else
		phase mbvisor "$r" rev
		phase plain "$r" rev
	fi
	log "round $r done in $((SECONDS - t0))s"
done
mbvisor_state unloaded
for ns in $(ip netns list | awk '/^nft[rs]/ { print $1 }'); do
	ip netns exec "$ns" nft flush ruleset
done
