# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# Helpers for the mbshm VM tests in tests/vm/shm/ (source after ../../lib.sh).
# They run only under tests/vm/run-ivshmem, which boots the guest with the
# ivshmem devices, a test ivshmem server and a host agent, and exports:
#
#	MBVISOR_SHM_PCI_PLAIN0	PCI address of ivshmem-plain "ivs0" (1 MiB,
#				host file named plain0)
#	MBVISOR_SHM_PCI_PLAIN1	PCI address of ivshmem-plain "ivs1" (2 MiB,
#				host file named plain1)
#	MBVISOR_SHM_PCI_DB	PCI address of ivshmem-doorbell "ivsdb" (1 MiB
#				from the server, host file db, 2 vectors)
#	MBVISOR_SHM_HOST_ID	peer ID of the server's own host peer
#
#	mbshm ARGS...		tests/vm/shm/mbshm.py (see its header); in
#				the background use python3 "$SHM_PY" ARGS &
#				so that $! is the probe itself
#	shm_load		insmod guest_driver/mbshm.ko if not loaded;
#				rmmod at exit
#	shm_dev PCIADDR		print /dev/mbshmN of that PCI device
#	shm_sys DEV		print /sys/class/mbshm/mbshmN of /dev/mbshmN
#	host_req REQUEST	ask the host agent (tests/vm/host_agent.py);
#				prints its output, returns its status
#	random_hex BYTES	BYTES random bytes as hex

SHM_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SHM_PY=$SHM_HERE/mbshm.py
SHM_KO=$MBVISOR_ROOT/guest_driver/mbshm.ko
SHM_REQ=0

if [[ -z ${MBVISOR_SHM_PCI_PLAIN0:-} ]]; then
	echo "$(basename "$0"): run this with tests/vm/run-ivshmem" >&2
	exit "$ksft_skip"
fi

mbshm()
{
	python3 "$SHM_PY" "$@"
}

shm_unload()
{
	[[ -e /sys/module/mbshm ]] || return 0
	rmmod mbshm
}

shm_load()
{
	if [[ ! -e /sys/module/mbshm ]]; then
		insmod "$SHM_KO"
	fi
	mb_defer shm_unload
}

shm_dev()
{
	local d

	for d in "/sys/bus/pci/devices/$1/mbshm/"mbshm*; do
		if [[ -e $d ]]; then
			echo "/dev/$(basename "$d")"
			return 0
		fi
	done
	echo "shm_dev: no mbshm device for PCI $1" >&2
	return 1
}

shm_sys()
{
	echo "/sys/class/mbshm/$(basename "$1")"
}

host_req()
{
	local dir=$MBVISOR_RESULTS/host id rc

	SHM_REQ=$((SHM_REQ + 1))
	id=$$-$SHM_REQ-$RANDOM
	printf '%s\n' "$*" >"$dir/tmp-$id"
	mv "$dir/tmp-$id" "$dir/req-$id"
	if ! mb_wait_for 180 test -e "$dir/resp-$id"; then
		echo "host_req: no answer from the host agent to: $*" >&2
		return 3
	fi
	rc=$(head -n1 "$dir/resp-$id")
	tail -n +2 "$dir/resp-$id"
	rm -f "$dir/resp-$id"
	return "$rc"
}

random_hex()
{
	head -c "$1" /dev/urandom | od -An -v -tx1 | tr -d ' \n'
}
