#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# mbshm.ko with an ivshmem-doorbell device served by the test ivshmem server:
# IVPosition is the ID the server gave, MSI-X interrupts on each vector are
# counted and wake poll() and a blocked read(), per-file vector masks,
# doorbells to this guest itself, from the host (server -> eventfd -> MSI-X)
# and to the host (doorbell -> the server's own peer), bad arguments.
#
#   host                                        guest
#   ivshmem_server.py  --unix socket-- QEMU --  ivsdb ivshmem-doorbell, 2 vectors
#     peer MBVISOR_SHM_HOST_ID (itself)          /dev/mbshmN, IVPosition = ID
#     peer ID (this guest), shm file "db"
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../../lib.sh
source "$(dirname "$0")/../../lib.sh"
# shellcheck source-path=SCRIPTDIR source=shm.sh
source "$(dirname "$0")/shm.sh"

host=$MBVISOR_SHM_HOST_ID
shm_load
db=$(shm_dev "$MBVISOR_SHM_PCI_DB")
s=$(shm_sys "$db")
tmp=$(mktemp -d)
mb_defer rm -rf "$tmp"

# irqs: the sysfs interrupt counts, "V0 V1"
irqs()
{
	cat "$s/interrupts"
}

log "# the device as the server set it up"
id=$(host_req server peers)
log "server's clients: $id; $db"
check_ok test -n "$id"
check_eq "$id" "$(<"$s/ivposition")" "sysfs ivposition = the ID the server gave"
check_eq "$id" "$(mbshm ivposition "$db")" "GET_IVPOSITION"
check_eq "shm_size=1048576 flags=1 ivposition=$id vectors=2 irq_vectors=2 reserved=0" \
	"$(mbshm info "$db" | paste -sd ' ')" "GET_INFO"
check_eq 1 "$(<"$s/doorbell")" "sysfs doorbell"
check_eq 2 "$(<"$s/vectors")" "sysfs vectors"
check_eq 2 "$(<"$s/irq_vectors")" "sysfs irq_vectors"
check_eq "0 0" "$(irqs)" "no interrupt yet"
n=$(basename "$db")
check_eq 2 "$(grep -cE " $n-[01]\$" /proc/interrupts)" "two MSI-X vectors in /proc/interrupts"

log "# shared memory is the server's file"
p=$(random_hex 48)
check_eq ok "$(mbshm write "$db" 512 "$p")" "write through the mapping"
check_eq "$p" "$(host_req shm-read db 512 48)" "the server's shm file has it"

log "# nothing to read yet"
check_eq EAGAIN "$(mbshm count "$db" --nonblock)" "non-blocking read() right after open"
check_eq none "$(mbshm poll "$db" 0)" "poll() right after open"

log "# doorbells to this guest itself: one interrupt each, on that vector"
check_eq 1 "$(mbshm irq "$db" "$id" 0)" "ring own vector 0: read() returns the count"
check_eq "1 0" "$(irqs)" "counted on vector 0"
check_eq 2 "$(mbshm irq "$db" "$id" 1)" "ring own vector 1"
check_eq "1 1" "$(irqs)" "counted on vector 1"

log "# a file that watches vector 1 only"
check_eq 2 "$(mbshm irq "$db" "$id" 0,1 --watch 0x2)" \
	"ring vectors 0 then 1: read() returns the count of vector 1 alone"
check_ok mb_wait_for 30 test "$(irqs)" = "2 2"
check_eq "2 2" "$(irqs)" "both counted"

log "# a blocked read() wakes up"
python3 "$SHM_PY" wait "$db" "$tmp/ready" --read >"$tmp/reader" &
reader=$!
check_ok mb_wait_for 30 test -e "$tmp/ready"
check_eq ok "$(mbshm doorbell "$db" "$id" 1)" "ring vector 1"
check_ok wait "$reader"
check_eq 5 "$(cat "$tmp/reader")" "the blocked reader's count"

log "# the host interrupts this guest (server writes the eventfd of vector 1)"
rm -f "$tmp/ready"
python3 "$SHM_PY" wait "$db" "$tmp/ready" --watch 0x2 >"$tmp/poller" &
poller=$!
check_ok mb_wait_for 30 test -e "$tmp/ready"
check_eq ok "$(host_req server notify "$id" 1)" "server: notify $id 1"
check_ok wait "$poller"
check_eq 4 "$(cat "$tmp/poller")" "poll() woke up, vector 1 count"
check_eq "2 4" "$(irqs)" "sysfs"

log "# this guest rings the host's peer"
check_eq 0 "$(host_req server doorbells 0)" "host peer: no doorbell yet"
check_eq ok "$(mbshm doorbell "$db" "$host" 0)" "ring host peer $host vector 0"
check_eq 1 "$(host_req server wait-doorbells 0 1)" "host saw 1 on vector 0"
check_eq ok "$(mbshm doorbell "$db" "$host" 1)" "ring host vector 1"
check_eq ok "$(mbshm doorbell "$db" "$host" 1)" "ring host vector 1 again"
check_eq 2 "$(host_req server wait-doorbells 1 2)" "host saw 2 on vector 1"
check_eq 1 "$(host_req server doorbells 0)" "still 1 on vector 0"
check_eq "2 4" "$(irqs)" "ringing the host does not interrupt this guest"

log "# bad arguments change nothing"
check_eq EINVAL "$(mbshm doorbell "$db" "$id" 2)" "vector 2 of 2"
check_eq EINVAL "$(mbshm doorbell "$db" "$id" 256)" "vector 256"
check_eq EINVAL "$(mbshm doorbell "$db" "$id" 65535)" "vector 65535"
check_eq EINVAL "$(mbshm watch "$db" 0)" "watch mask 0"
check_eq EINVAL "$(mbshm watch "$db" 0x4)" "watch vector 2 of 2"
check_eq EINVAL "$(mbshm watch "$db" 0x8000000000000001)" "watch vector 63"
check_eq ok "$(mbshm watch "$db" 0x3)" "watch both"
check_eq EINVAL "$(mbshm count "$db" --len 7)" "read() of 7 bytes"
check_eq ENOTTY "$(mbshm ioctl-raw "$db" 5)" "ioctl 5"
# Absent peers cannot be told apart (the device drops the doorbell).
check_eq ok "$(mbshm doorbell "$db" 4242 0)" "doorbell to an absent peer"
check_eq "2 4" "$(irqs)" "no interrupt came from any of that"
check_eq "1 2" "$(host_req server doorbells 0) $(host_req server doorbells 1)" \
	"nor did the host peer get a doorbell"
check_eq 7 "$(mbshm irq "$db" "$id" 0 --len 16)" "a read() of 16 bytes returns the 8-byte count"
check_eq "3 4" "$(irqs)" "sysfs"

mb_test_end
