#!/bin/bash
# Harness self-test: passes (after failing ones, it must still pass).
echo "taint is $(cat /proc/sys/kernel/tainted), that is fine"
