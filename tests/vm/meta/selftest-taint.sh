#!/bin/bash
# Harness self-test: a new taint flag (W, 512) must fail this script only.
echo 512 >/proc/sys/kernel/tainted
