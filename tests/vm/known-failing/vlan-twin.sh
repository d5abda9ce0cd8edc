#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# KNOWN TO FAIL TODAY (W7 in docs/SECURITY.md). Not part of `make check`;
# run it with `make known-failing`. It passes once the bug is fixed, and then
# belongs in tests/vm/ as a tNN script.
#
# On a VLAN-filtering bridge a MAC address is unique only per VLAN. The
# registry keys a middlebox by MAC per network namespace, and mbhook looks it
# up before the bridge's VLAN ingress, so a middlebox's rules also drop
# frames for another host that has the same MAC in another VLAN.
#
#   mb    52:34:56:00:12:22 10.0.0.100   VLAN 10 (access)   the middlebox
#   twin  52:34:56:00:12:22 10.0.20.50   VLAN 20 (access)   not a middlebox
#   t1    02:00:00:00:00:21 10.0.20.1    VLAN 20 (access)   sends to twin
#                 \            |            /
#                  +-------- br0 (vlan_filtering 1) ------+
set -euo pipefail
source "$(dirname "$0")/../../lib.sh"
source "$(dirname "$0")/../mb.sh"

MB=52:34:56:00:12:22

mb_require_cmd mbadm nft socat jq bridge
mb_fresh_registry
mb_bridge_create
ip link set "$MB_BR" type bridge vlan_filtering 1

access_host()
{
	local port

	mb_add_host "$1" "$2" "$3/24"
	port=$(mb_port "$1")
	bridge vlan del dev "$port" vid 1
	bridge vlan add dev "$port" vid "$4" pvid untagged
}

access_host mb $MB 10.0.0.100 10
access_host twin $MB 10.0.20.50 20
access_host t1 02:00:00:00:00:21 10.0.20.1 20
arrivals_setup twin
check_ok mbadm cmd "R F $MB 10.0.0.100"
check_ok mbadm cmd "A $MB T 9 d 5000 p udp"
reset_arrivals twin
udp_send t1 10.0.20.50 5000
check_eq 1 "$(arrivals twin udp_5000)" \
	"UDP to the twin in VLAN 20 arrives (not the middlebox's traffic)"
check_eq 0 "$(rule_json $MB 0 .packets)" "frames counted on mb's rule"
mb_test_end
