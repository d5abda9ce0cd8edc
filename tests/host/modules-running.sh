#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make modules-running: the modules built also for the kernel this machine
# runs, into build/running/, never over the tree's own (test kernel) build.
# Its three cases, whatever this machine's kernel: a running kernel without
# headers (said, exit 0, nothing built), one that is KDIR's kernel (said,
# exit 0), and one with headers that differs (here: KDIR names another
# tree, the running kernel's headers are the test kernel's).
set -euo pipefail
cd "$(dirname "$0")/../.."

pass=0 fail=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT

check()
{
	if [[ $2 == "$3" ]]; then
		echo "ok - $1"
		pass=$((pass + 1))
	else
		echo "not ok - $1: expected '$2', got '$3'"
		fail=$((fail + 1))
	fi
}

KV=$(tests/vm/run --print-kernel)
KDIR=/lib/modules/$KV/build
if [[ ! -d $KDIR ]]; then
	echo "modules-running.sh: no headers of the test kernel ($KDIR): run scripts/install-deps" >&2
	exit 2
fi

rm -rf build/running
rc=0
make -s modules-running RUNNING_KVER=0.0-no-such-kernel >"$out" 2>&1 || rc=$?
check "no headers: exit 0" 0 "$rc"
check "no headers: says so" yes "$(grep -q 'running kernel 0.0-no-such-kernel has no headers (/lib/modules/0.0-no-such-kernel/build is missing): nothing built' "$out" && echo yes || cat "$out")"
check "no headers: nothing built" no "$([[ -e build/running ]] && echo yes || echo no)"

rc=0
make -s modules-running RUNNING_KVER="$KV" KDIR="$KDIR" >"$out" 2>&1 || rc=$?
check "the test kernel itself: exit 0" 0 "$rc"
check "the test kernel itself: says so" yes "$(grep -q "running kernel $KV is the one KDIR builds for" "$out" && echo yes || cat "$out")"
check "the test kernel itself: nothing built" no "$([[ -e build/running ]] && echo yes || echo no)"

# The tree's own build, if there is one, must not be touched.
own=$(stat -c %Y mbstate/mbstate.ko 2>/dev/null || echo none)
rc=0
make -s modules-running RUNNING_KVER="$KV" KDIR=/nonexistent >"$out" 2>&1 || rc=$?
check "another kernel with headers: exit 0" 0 "$rc"
for ko in mbstate/mbstate.ko bridge_hook/mbhook.ko offload_fw/mbfw.ko \
	offload_lb/mblb.ko guest_driver/mbshm.ko; do
	check "built build/running/$ko for $KV" "$KV" \
		"$(modinfo -F vermagic "build/running/$ko" 2>/dev/null | cut -d' ' -f1)"
done
check "the tree's own mbstate.ko untouched" "$own" \
	"$(stat -c %Y mbstate/mbstate.ko 2>/dev/null || echo none)"
rm -rf build/running

echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
