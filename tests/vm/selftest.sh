#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Self-test of the VM harness and tests/lib.sh: two hosts on the bridge
# ping each other, and the bridge ports count the frames.
#
#	  netns h1                         netns h2
#	 eth0 02:00:00:00:00:01           eth0 02:00:00:00:00:02
#	 10.0.0.1/24                      10.0.0.2/24
#	    |                                |
#	  mb-h1 ------------ br0 ----------- mb-h2     (root netns)

set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"

mb_add_host h1 02:00:00:00:00:01 10.0.0.1
mb_add_host h2 02:00:00:00:00:02 10.0.0.2

check_ok test -d "/sys/class/net/$MB_BR/bridge"
check_eq "$MB_BR" "$(basename "$(readlink /sys/class/net/mb-h1/master)")" "mb-h1 is a port of br0"
check_eq 02:00:00:00:00:02 "$(ip netns exec h2 cat /sys/class/net/eth0/address)" "h2 MAC"

before=$(counter h2 eth0)
check_ok ip netns exec h1 ping -c 3 -i 0.2 -W 2 10.0.0.2
check_ok ip netns exec h2 ping -c 1 -W 2 10.0.0.1
after=$(counter h2 eth0)
# 3 + 1 echo requests/replies plus ARP: at least 4 frames reached h2.
check_ok test $((after - before)) -ge 4
check_fail ip netns exec h1 ping -c 1 -W 1 10.0.0.99
check_eq 0 "$(counter - "$MB_BR" rx_dropped)" "br0 rx_dropped"

# What the harness promises the scripts.
check_eq 1 "${MBVISOR_IN_VM:-}" "MBVISOR_IN_VM"
check_ok test -d "$MBVISOR_ROOT/tests"
check_ok test "$(id -u)" -eq 0
check_ok test -w /tmp

mb_test_end
