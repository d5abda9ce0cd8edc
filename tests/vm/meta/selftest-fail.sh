#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Harness self-test: a check fails, so tests/vm/run must report "not ok".
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../../lib.sh
source "$(dirname "$0")/../../lib.sh"
check_eq 1 2 "deliberate failure"
mb_test_end
