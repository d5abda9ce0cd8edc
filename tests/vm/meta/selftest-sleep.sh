#!/bin/bash
# Harness self-test: runs past a short MBVISOR_TEST_TIMEOUT.
echo sleeping; sleep 1000
