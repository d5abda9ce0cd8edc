#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Raw generic netlink against the mbstate family, without mbadm or libmnl:
# malformed attributes, lengths, nests and commands are each refused with
# the expected errno and a non-empty extack message naming the problem
# (mbstate's own, or the policy core's where it refuses first; the one
# exception, an unknown command, is explained in nlprobe.py), then the same
# for load-balancer requests, then a few thousand random messages; the
# registry must end as it started.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/mb.sh"

mb_require_cmd mbadm python3
mb_fresh_registry
PROBE=$(dirname "$0")/nlprobe.py

check_ok mbadm cmd "R F 52:34:56:00:12:22 10.0.0.100"
check_ok mbadm cmd "A 52:34:56:00:12:22 T 5 s 80 p tcp"
check_ok python3 "$PROBE" malformed
check_ok mbadm cmd "R F 52:34:56:00:12:23 10.0.0.101"
check_ok mbadm cmd "X 52:34:56:00:12:22"
check_ok mbadm cmd "R L 52:34:56:00:12:22 10.0.0.100 0 0.0.0.0 10.0.0.11"
check_ok python3 "$PROBE" lb-malformed
check_ok mbadm cmd "X 52:34:56:00:12:23"
check_ok mbadm cmd "X 52:34:56:00:12:22"
check_ok mbadm cmd "R F 52:34:56:00:12:22 10.0.0.100"
check_ok mbadm cmd "A 52:34:56:00:12:22 T 5 s 80 p tcp"
check_ok python3 "$PROBE" random 3000 1
check_ok python3 "$PROBE" random 3000 2
check_eq 1 "$(mbadm -j show | jq '.[0].rules | length')" "rules kept"
mb_test_end
