#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# bench: control - rules installed per second: mbadm batch vs. nft sets (issue part 4)
#
# The control plane (benchmark issue, part 4): how fast
# rules are installed in a batch through `mbadm batch`, next to `nft -f`
# adding the same number of elements to a set, in the same boot, the two
# alternating, N = 10,000 and 100,000 (the rules of bench/vm/dataplane.sh:
# `A <MAC> I 4 s <addr>`, set elements `<addr>`).
#
# Each timing covers the whole command, as a user sees it: starting the
# program, parsing its input, and every netlink request until the kernel
# has answered the last one. The middlebox is registered and the set and
# its table are created before the clock starts; both are removed after.
#
# Not measured yet: the time from `mbctl` in a middlebox VM to the rule
# being active (ivshmem doorbell or polling): the channel does not exist yet.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../../tests/lib.sh
source "$MBVISOR_ROOT/tests/lib.sh"
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$MBVISOR_ROOT/bench/lib.sh"

MAC=52:54:00:00:20:01
SIZES=(10000 100000)
WORK=/tmp/bench-control

size_name()
{
	echo "$(($1 / 1000))k"
}

# now_ns: a monotonic-enough wall clock in nanoseconds (the guest's clock)
now_ns()
{
	date +%s%N
}

# rate N NS: N per second, with 1 decimal
rate()
{
	awk -v n="$1" -v ns="$2" 'BEGIN { printf "%.1f", n * 1e9 / ns }'
}

# mbadm_once N ROUND
mbadm_once()
{
	local n=$1 r=$2 t0 t1 got

	mbadm cmd "R F $MAC 10.0.2.1" || bench_die "cannot register $MAC"
	t0=$(now_ns)
	mbadm batch "$WORK/mb-$n.batch" >/dev/null || bench_die "mbadm batch of $n rules failed"
	t1=$(now_ns)
	got=$(mbadm -j stats | jq -r --arg m "$MAC" '.[] | select(.mac == $m) | .nrules')
	[[ $got == "$n" ]] || bench_die "after mbadm batch: $got rules, not $n"
	mbadm cmd "X $MAC" || bench_die "cannot unregister $MAC"
	((r > 0)) || return 0
	bench_sample "mbadm_batch_$(size_name "$n")_rules_per_s" "$r" "$(rate "$n" $((t1 - t0)))"
}

# nft_once N ROUND
nft_once()
{
	local n=$1 r=$2 t0 t1 got

	nft add table bridge bench
	nft add set bridge bench s '{ type ipv4_addr; }'
	t0=$(now_ns)
	nft -f "$WORK/nft-$n.nft" || bench_die "nft add element of $n elements failed"
	t1=$(now_ns)
	if ((r <= 1)); then
		# Listing 100k elements takes a while: check the count once.
		got=$(nft list set bridge bench s | grep -o '10\.[0-9.]*' | wc -l)
		[[ $got == "$n" ]] || bench_die "after nft: $got elements, not $n"
	fi
	nft delete table bridge bench
	((r > 0)) || return 0
	bench_sample "nft_set_add_$(size_name "$n")_elements_per_s" "$r" "$(rate "$n" $((t1 - t0)))"
}

mb_require_cmd mbadm nft jq awk
bench_init control
modprobe nf_tables
mb_load_modules
mkdir -p "$WORK"
for n in "${SIZES[@]}"; do
	awk -v n="$n" -v mac="$MAC" 'BEGIN {
		for (i = 0; i < n; i++)
			printf "A %s I 4 s 10.%d.%d.%d\n", mac, 16 + int(i / 65536),
				int(i / 256) % 256, i % 256
	}' >"$WORK/mb-$n.batch"
	awk -v n="$n" 'BEGIN {
		printf "add element bridge bench s {"
		for (i = 0; i < n; i++)
			printf "%s 10.%d.%d.%d", (i ? "," : ""), 16 + int(i / 65536),
				int(i / 256) % 256, i % 256
		print " }"
	}' >"$WORK/nft-$n.nft"
done

log "warm-up (not recorded)"
mbadm_once 10000 0
nft_once 10000 0
# At most 3 rounds: one takes long (100,000 rules twice), and the rates
# hardly move from round to round with the icount clock.
rounds=$((BENCH_ROUNDS < 3 ? BENCH_ROUNDS : 3))
for ((r = 1; r <= rounds; r++)); do
	for n in "${SIZES[@]}"; do
		if ((r % 2)); then
			mbadm_once "$n" "$r"
			nft_once "$n" "$r"
		else
			nft_once "$n" "$r"
			mbadm_once "$n" "$r"
		fi
	done
done
