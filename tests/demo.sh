#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# `make demo`: the host side of mbvisor, end to end, in a QEMU guest that
# plays the KVM host. Two clients and a firewall middlebox hang off a Linux
# bridge; the middlebox hands "drop everything IPv4 from this MAC" to the
# bridge, and the frames stop arriving at its port, while the other client's
# still do. Every step prints what it does and what it saw.
#
#   netns client1 02:00:00:00:00:01 10.0.0.1 --+
#   netns client2 02:00:00:00:00:02 10.0.0.2 --+-- br0 (mbhook) -- netns fw
#                                                   52:34:56:00:12:22 10.0.0.100
#
# This is part 1: the middlebox's commands are given with mbadm, the host's
# admin tool, in exactly the text the middlebox would write. Part 2 of
# `make demo` is tests/vm/t90-middlebox-vm.sh: a real middlebox VM (QEMU
# inside this guest) sends them with mbctl through its ivshmem device.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/vm/mb.sh"

FW=52:34:56:00:12:22
C1=02:00:00:00:00:01
C2=02:00:00:00:00:02

step()
{
	printf '\n=== %s\n' "$*"
}

show()
{
	echo "\$ $*"
	"$@" | sed 's/^/    /'
}

# pings N from NS to the firewall; prints how many replies came back
pings()
{
	{ ip netns exec "$1" ping -q -c "$2" -i 0.05 -W 1 10.0.0.100 || :; } \
		2>/dev/null | awk '/received/ { print $4 }'
}

mb_require_cmd mbadm nft jq
mb_fresh_registry
step "A bridge with two clients and a firewall middlebox (network namespaces)"
mb_add_host client1 $C1 10.0.0.1/24
mb_add_host client2 $C2 10.0.0.2/24
mb_add_host fw $FW 10.0.0.100/24
arrivals_setup fw
show bridge link show

step "Without mbvisor, every frame reaches the middlebox, which must drop it itself"
echo "client1: $(pings client1 20)/20 pings answered;" \
	"client2: $(pings client2 20)/20 answered"
echo "IPv4 frames that arrived at the middlebox's NIC: $(arrivals fw ip_any)"

step "The middlebox registers for the firewall service (report, table 4.2)"
show mbadm cmd "R F $FW 10.0.0.100"
show mbadm show

step "It offloads a filter: IPv4 (p 8) from client1's MAC (s), class M mask 5"
show mbadm cmd "A $FW M 5 s $C1 p 8"
reset_arrivals fw
got1=$(pings client1 20)
got2=$(pings client2 20)
echo "client1: $got1/20 pings answered; client2: $got2/20 answered"
echo "ICMP from client1 that reached the middlebox: $(arrivals fw icmp_from_h1)"
echo "ICMP from client2 that reached the middlebox: $(arrivals fw icmp_from_h2)"
show mbadm show $FW
check_eq 0 "$got1" "client1's pings answered while filtered"
check_eq 20 "$got2" "client2's pings answered"
check_eq 0 "$(arrivals fw icmp_from_h1)" "client1's frames at the middlebox"
check_eq 20 "$(rule_json $FW 0 .packets)" "frames dropped at the bridge"

step "A flood of 100,000 frames from client1 (pktgen): the middlebox sees none"
ip link add pg0 type veth peer name pg0p
mb_defer ip link del pg0
ip link set pg0p master "$MB_BR" up
reset_arrivals fw
pg_flood pg0 $C1 $FW 10.0.0.1 10.0.0.100 100000
echo "IPv4 frames that arrived at the middlebox's NIC: $(arrivals fw ip_any)"
show mbadm stats
check_eq 0 "$(arrivals fw ip_any)" "flood frames at the middlebox"

step "The middlebox withdraws the filter on the source MAC: D ... M 4 s"
show mbadm cmd "D $FW M 4 s"
echo "client1: $(pings client1 20)/20 pings answered"

step "Bad input is refused with a reason, and changes nothing"
show mbadm cmd "A $FW M 5 s 12:13:14 p 8" || echo "(exit status $?)"
show mbadm cmd "R F 52:34:56:00:12:99 224.0.0.1" || echo "(exit status $?)"
show mbadm cmd "X 52:34:56:00:12:99" || echo "(exit status $?)"

step "X cancels the registration"
show mbadm cmd "X $FW"
show mbadm show
mb_test_end
