#!/bin/bash
# Harness self-test: exit 4 (skip) must be reported as a failure.
# shellcheck source-path=SCRIPTDIR source=../../lib.sh
source "$(dirname "$0")/../../lib.sh"
mb_skip "deliberate skip"
