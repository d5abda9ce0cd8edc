#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Devices and the module coming and going while processes use them: for
# each of plain0 and the doorbell device, hammer processes loop over open,
# GET_INFO, mmap, store, load, poll, doorbell, read and close, while the
# guest removes and rescans both devices and unloads and reloads the
# module whenever no file is open. The processes may only see ENODEV,
# ENOENT, ENXIO or EAGAIN, or die of SIGBUS; the kernel must not warn or
# oops (the harness checks). Afterwards everything works again.
#
#   hammer x2 --> /dev/mbshmA (plain0)    guest: remove, rescan, rmmod/insmod
#   hammer x2 --> /dev/mbshmB (doorbell)         (8 rounds, each once every
#                                                 hammer has made progress)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../../lib.sh
source "$(dirname "$0")/../../lib.sh"
# shellcheck source-path=SCRIPTDIR source=shm.sh
source "$(dirname "$0")/shm.sh"

shm_load
tmp=$(mktemp -d)
mb_defer rm -rf "$tmp"
pcis=("$MBVISOR_SHM_PCI_PLAIN0" "$MBVISOR_SHM_PCI_DB")

# hammer_loop NAME PCI: restart the hammer until $tmp/stop exists; record
# each run's exit status in $tmp/NAME.rc
hammer_loop()
{
	local rc

	while [[ ! -e $tmp/stop ]]; do
		rc=0
		python3 "$SHM_PY" hammer "$2" 40 --progress "$tmp/$1.progress" \
			>>"$tmp/$1.out" 2>&1 || rc=$?
		echo "$rc" >>"$tmp/$1.rc"
	done
}

# progress: the good rounds of every hammer so far, one number each
progress()
{
	local h

	for h in h00 h01 h10 h11; do
		stat -c %s "$tmp/$h.progress" 2>/dev/null || echo 0
	done
}

# moved BEFORE: every hammer did a good round since progress said BEFORE
moved()
{
	local -a a b
	local i

	read -r -a a <<<"$1"
	read -r -a b <<<"$(progress | paste -sd ' ')"
	for i in 0 1 2 3; do
		((b[i] > a[i])) || return 1
	done
}

present()
{
	local p

	for p in "${pcis[@]}"; do
		[[ -d /sys/bus/pci/devices/$p/mbshm ]] || return 1
	done
}

before="0 0 0 0"
hammers=()
for i in 0 1; do
	for n in 0 1; do
		hammer_loop "h$i$n" "${pcis[$i]}" &
		hammers+=($!)
	done
done

reloads=0
for round in 1 2 3 4 5 6 7 8; do
	# Churn only once every hammer has used its device since last time.
	check_ok mb_wait_for 120 moved "$before"
	before=$(progress | paste -sd ' ')
	for p in "${pcis[@]}"; do
		echo 1 >"/sys/bus/pci/devices/$p/remove"
	done
	echo 1 >/sys/bus/pci/rescan
	if ((round % 2 == 0)) && rmmod mbshm 2>/dev/null; then
		reloads=$((reloads + 1))
		insmod "$SHM_KO"
	fi
	check_ok mb_wait_for 60 present
done
log "# module unloaded and reloaded $reloads times under the churn"
touch "$tmp/stop"
for h in "${hammers[@]}"; do
	wait "$h"
done

bad=$(cat "$tmp"/*.rc | grep -cvxE '0|135' || true)
check_eq 0 "$bad" "hammer runs that ended other than exit 0 or SIGBUS"
grep -h "unexpected" "$tmp"/*.out || true
log "hammer runs by exit status: $(cat "$tmp"/*.rc | sort | uniq -c | paste -sd ' ')"
log "hammer rounds: $(cat "$tmp"/h*.out | paste -sd ' ')"

log "# afterwards, everything works"
for p in "${pcis[@]}"; do
	check_eq "ok=20 gone=0" "$(mbshm hammer "$p" 20)" "20 rounds on $p, nothing in the way"
done
db=$(shm_dev "$MBVISOR_SHM_PCI_DB")
id=$(mbshm ivposition "$db")
before=$(awk '{ print $1 + $2 }' "$(shm_sys "$db")/interrupts")
check_eq $((before + 1)) "$(mbshm irq "$db" "$id" 0)" "an interrupt is counted"
d0=$(shm_dev "$MBVISOR_SHM_PCI_PLAIN0")
check_eq "$(host_req shm-read plain0 8 4)" "$(mbshm dump "$d0" 8 4)" "guest and host agree on plain0"
check_eq 68616d21 "$(mbshm dump "$d0" 8 4)" "the hammers' bytes"

mb_test_end
