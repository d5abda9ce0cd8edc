#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The libvirt QEMU hook (packaging/libvirt-hook-qemu), fed domain XML on
# stdin as libvirt does: it starts mbhostd@<domain> on "prepare" and stops it
# on "release" for a domain with an mbvisor <shmem> device, and does nothing
# for any other domain or operation. systemctl is replaced by a recorder
# (there is no systemd to start units here); everything else is real.
set -euo pipefail
cd "$(dirname "$0")/../.."

HOOK=packaging/libvirt-hook-qemu
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export MBVISOR_RUNDIR=$tmp/run MBVISOR_SYSTEMCTL=$tmp/systemctl
printf '#!/bin/sh\necho "$*" >>%s/calls\n' "$tmp" >"$tmp/systemctl"
chmod +x "$tmp/systemctl"
pass=0 fail=0

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

calls()
{
	cat "$tmp/calls" 2>/dev/null || true
	rm -f "$tmp/calls"
}

hook()
{
	"$HOOK" "$@"
}

plain=qemu/middlebox-domain.xml
sed 's/mbvisor-fw1/other-shm/' $plain >"$tmp/other.xml"
sed '/<shmem/,/<\/shmem>/d' $plain >"$tmp/none.xml"

hook fw1 prepare begin - <$plain
check "prepare starts the domain's instance" "start mbhostd@fw1.service" "$(calls)"
check "the domain XML is saved for mbhostd" "$(cat $plain)" "$(cat "$tmp/run/fw1.xml")"
hook fw1 start begin - <$plain
hook fw1 started begin - <$plain
hook fw1 stopped end - <$plain
check "start, started, stopped: nothing" "" "$(calls)"
hook fw1 release end - <$plain
check "release stops it" "stop mbhostd@fw1.service" "$(calls)"
check "the saved XML is gone" "no" "$(test -e "$tmp/run/fw1.xml" && echo yes || echo no)"

hook fw2 prepare begin - <qemu/middlebox-domain-doorbell.xml
check "the doorbell variant too" "start mbhostd@fw2.service" "$(calls)"
hook fw2 release end - </dev/null
calls >/dev/null

hook web prepare begin - <"$tmp/none.xml"
hook web release end - <"$tmp/none.xml"
check "a domain without <shmem> is ignored" "" "$(calls)"
hook db prepare begin - <"$tmp/other.xml"
hook db release end - <"$tmp/other.xml"
check "a <shmem> that is not mbvisor's is ignored" "" "$(calls)"
check "and nothing saved for them" "" "$(ls "$tmp/run")"

hook 'my fw' prepare begin - <$plain
check "names are escaped for systemd" 'start mbhostd@my\x20fw.service' "$(calls)"

echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
