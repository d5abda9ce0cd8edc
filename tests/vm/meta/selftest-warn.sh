#!/bin/bash
# Harness self-test: a real WARN_ON in a module's init. With panic_on_warn=1
# the guest panics; tests/vm/run must fail this script and the ones after.
insmod "$MBVISOR_WARN_KO"
echo "still alive: panic_on_warn did not work"
