#!/bin/bash
# Harness self-test: a WARNING line in the kernel log must fail this script.
echo "<4>WARNING: CPU: 0 PID: $$ at mbvisor-selftest (not a real warning)" >/dev/kmsg
