#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# tests/host/ivshmem-e2e.sh - mbctl in a real QEMU guest, mbhostd on this
# host, through QEMU's ivshmem devices: one ivshmem-plain (memory-backend-
# file on /dev/shm) and one ivshmem-doorbell whose server is mbhostd itself.
# Boots one guest with tests/vm/run (TCG, about a minute); the guest half
# is tests/vm/ivshmem/e2e-guest.sh.
#
#   host                                         guest (no mbshm.ko)
#   mbhostd --vm plain --shm /dev/shm/P  <==>  ivshmem-plain    (resource2)
#   mbhostd --vm db --socket S (server)  <==>  ivshmem-doorbell (resource0/2)
#
# The host has no mbstate registry: commands for a VM's own MAC come back
# "unavailable", others' "permission denied". One more boot: `make
# e2e-ivshmem`, part of `make check`.

set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
tmp=$(mktemp -d /tmp/mbvisor-e2e.XXXXXX)
P=/dev/shm/mbvisor-e2e-$$
S=$tmp/db.sock
A=52:34:56:00:12:22
B=52:34:56:00:12:33
hostd=

cleanup()
{
	[[ -n $hostd ]] && kill "$hostd" 2>/dev/null && wait "$hostd" 2>/dev/null
	rm -f "$P" "$P-db" "/var/tmp/mbvisor-e2e/mbshm-$$.ko"
	[[ ${KEEP:-0} == 1 ]] || rm -rf "$tmp"
}
trap cleanup EXIT

truncate -s 1M "$P"
setsid "$root/bin/mbhostd" --verbose --state-dir "$tmp/state" \
	--vm plain --shm "$P" --mac $A \
	--vm db --shm "$P-db" --mac $B --socket "$S" \
	</dev/null >"$tmp/hostd.log" 2>&1 &
hostd=$!
for ((i = 0; i < 50; i++)); do [[ -S $S ]] && break; sleep 0.1; done
[[ -S $S ]] || { cat "$tmp/hostd.log"; exit 1; }

# The guest driver, if this tree has it built (or MBVISOR_E2E_MBSHM_KO),
# is loaded for a second round; a copy, so that a rebuild cannot race.
ko=${MBVISOR_E2E_MBSHM_KO:-$root/guest_driver/mbshm.ko}
if [[ -e $ko ]]; then
	mkdir -p /var/tmp/mbvisor-e2e
	cp "$ko" "/var/tmp/mbvisor-e2e/mbshm-$$.ko"
	export MBVISOR_E2E_MBSHM_KO=/var/tmp/mbvisor-e2e/mbshm-$$.ko
fi

rc=0
MBVISOR_E2E_MAC_PLAIN=$A MBVISOR_E2E_MAC_DB=$B \
MBVISOR_QEMU_EXTRA="-object memory-backend-file,id=mbp,share=on,mem-path=$P,size=1M -device ivshmem-plain,memdev=mbp -chardev socket,path=$S,id=mbc -device ivshmem-doorbell,chardev=mbc,vectors=1" \
	"$root/tests/vm/run" "$root/tests/vm/ivshmem/e2e-guest.sh" || rc=$?
echo "# mbhostd's log:"
sed 's/^/#   /' "$tmp/hostd.log"
grep -q "ivshmem peer 1 connected" "$tmp/hostd.log" ||
	{ echo "not ok - QEMU never connected to mbhostd's ivshmem server"; rc=1; }
# The guest wrote BAR0's doorbell register: QEMU signalled our eventfd.
grep -q "vm db: doorbell rung on vector 0" "$tmp/hostd.log" ||
	{ echo "not ok - the guest's doorbell never reached mbhostd"; rc=1; }
exit $rc
