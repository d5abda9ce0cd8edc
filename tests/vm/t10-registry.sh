#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The registry through mbadm: registration and unregistration, refusals with
# the kernel's message and no change, parse errors, limits, change
# notifications, namespaces, and an unprivileged user.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/mb.sh"

MB=52:34:56:00:12:22
MB2=52:34:56:00:12:23
MB3=52:34:56:00:12:24

mb_require_cmd mbadm jq setpriv
mb_fresh_registry

registry()
{
	mbadm -j show | jq -c '[.[] | {mac, ip, enabled, rules: (.rules | length)}]'
}

log "# registration"
check_eq "[]" "$(registry)" "empty registry"
check_ok mbadm cmd "R F $MB 10.129.126.115"
check_eq 10.129.126.115 "$(mb_json $MB .ip)" "IPv4 address"
check_eq true "$(mb_json $MB .enabled)" "starts enabled"
check_eq firewall "$(mb_json $MB '.services | join(",")')" "services"
check_ok mbadm cmd "Q $MB"
check_eq "$MB" "$(mbadm -j cmd "Q $MB" | jq -r '.[0].mac')" "Q returns state"

log "# refusals: exit 1, the kernel's sentence, nothing changed"
before=$(registry)
expect 1 "already registered" mbadm cmd "R F $MB 10.129.126.115"
expect 1 "another IPv4" mbadm cmd "R F $MB 10.129.126.116"
rmmod mblb 2>/dev/null || true
expect 1 "modprobe mblb" mbadm cmd "R L $MB2 10.0.0.2 0 0.0.0.0 10.0.0.9"
mb_load_modules
expect 1 "no middlebox" mbadm cmd "X $MB2"
expect 1 "no middlebox" mbadm cmd "A $MB2 M 4 s 12:13:14:15:16:17"
expect 1 "no rule" mbadm cmd "D $MB T 4 s"
check_ok mbadm cmd "A $MB T 4 s 80"
expect 1 "already has this rule" mbadm cmd "A $MB T 4 s 80"
check_ok mbadm cmd "D $MB T 4 s"
check_eq "$before" "$(registry)" "registry after refusals"

log "# parse errors: exit 2, the bad token quoted, nothing sent"
expect 2 "52:34:56'" mbadm cmd "R F 52:34:56 10.0.0.1"
expect 2 "Z'" mbadm cmd "Z $MB"
expect 2 "\`01:00:5e:00:00:01' is multicast" mbadm cmd "R F 01:00:5e:00:00:01 10.0.0.1"
expect 2 "Missing field \`p'" mbadm cmd "A $MB M 5 s 12:13:14:15:16:17"
expect 2 "Mask 2 of class M names field t" mbadm cmd "A $MB M 2 t 1"
expect 2 "Unknown load-balancer type \`2'" mbadm cmd "R L $MB 10.0.0.1 2 0.0.0.0 10.0.0.9"
expect 2 "Invalid subcommand: \`frobnicate'" mbadm frobnicate
check_eq "$before" "$(registry)" "registry after parse errors"

log "# a service whose module is not loaded"
check_ok mbadm cmd "X $MB"
check_ok rmmod mbfw
expect 1 "modprobe mbfw" mbadm cmd "R F $MB 10.0.0.1"
mb_load_modules
check_ok mbadm cmd "R F $MB 10.0.0.1"

log "# unloading mbfw forgets the firewall state"
check_ok mbadm cmd "A $MB I 1 p icmp"
check_ok rmmod mbfw
check_eq "[]" "$(registry)" "registry after rmmod mbfw"
mb_load_modules

log "# limits are module parameters, and a clear error"
P=/sys/module/mbstate/parameters
old_mbs=$(cat $P/max_middleboxes) old_rules=$(cat $P/max_rules)
echo 2 >$P/max_middleboxes
check_ok mbadm cmd "R F $MB 10.0.0.1"
check_ok mbadm cmd "R F $MB2 10.0.0.2"
expect 1 "max_middleboxes" mbadm cmd "R F $MB3 10.0.0.3"
echo 3 >$P/max_rules
check_ok mbadm cmd "A $MB T 8 d 1"
check_ok mbadm cmd "A $MB T 8 d 2"
check_ok mbadm cmd "A $MB T 8 d 3"
expect 1 "max_rules" mbadm cmd "A $MB T 8 d 4"
printf 'A %s T 8 d %d\n' $MB 10 $MB 11 $MB 12 $MB 13 >/tmp/four
expect 1 "max_rules" mbadm replace $MB /tmp/four
check_eq "1 2 3" "$(mbadm -j show $MB | jq -r '[.[0].rules[].rule] | map(split(" ")[-1]) | join(" ")')" \
	"rule set unchanged by the refused replace"
printf 'A %s T 8 d %d\n' $MB 10 $MB 11 >/tmp/two
check_ok mbadm replace $MB /tmp/two
check_eq 2 "$(mb_json $MB '.rules | length')" "rules after replace"
echo "$old_rules" >$P/max_rules
# W1: distinct masks bound a lookup. d 10 and d 11 share one mask; the
# 1024-port block is a second, the 256-port block would be a third.
old_sub=$(cat $P/max_subtables) old_entries=$(cat $P/max_entries)
check_eq 256 "$old_sub" "max_subtables by default"
echo 2 >$P/max_subtables
check_ok mbadm cmd "A $MB T 8 d 1024-2047"
expect 1 "max_subtables" mbadm cmd "A $MB T 8 d 512-767"
check_eq "10 11 1024-2047" "$(mbadm -j show $MB | jq -r '[.[0].rules[].rule] | map(split(" ")[-1]) | join(" ")')" \
	"rule set unchanged by the refused add"
# each of the three expands to a TCP and a UDP entry
echo 6 >$P/max_entries
expect 1 "max_entries" mbadm cmd "A $MB T 8 d 12"
check_eq 3 "$(mb_json $MB '.rules | length')" "rules after the refusal by max_entries"
echo "$old_sub" >$P/max_subtables
echo "$old_entries" >$P/max_entries
check_ok mbadm cmd "A $MB T 8 d 512-767"
echo "$old_mbs" >$P/max_middleboxes

log "# batch: many rules in few messages"
for i in $(seq 1 2000); do echo "A $MB2 T 8 d $i"; done >/tmp/batch
check_ok mbadm batch /tmp/batch
check_eq 2000 "$(mb_json $MB2 '.rules | length')" "rules after batch"
printf 'A %s T 8 d 3000\nA %s T 8 d 1\n' $MB2 $MB2 >/tmp/dup
expect 1 "line 2" mbadm batch /tmp/dup
check_eq 2001 "$(mb_json $MB2 '.rules | length')" "rules after the batch refused at line 2"

log "# notifications"
mbadm monitor >/tmp/monitor 2>&1 &
mon=$!
mb_defer kill $mon
sleep 1
check_ok mbadm cmd "R F $MB3 10.0.0.3"
check_ok mbadm cmd "A $MB3 M 4 s 12:13:14:15:16:17"
check_ok mbadm cmd "D $MB3"
check_ok mbadm cmd "X $MB3"
sleep 1
check_ok grep -q "R F $MB3 10.0.0.3" /tmp/monitor
check_ok grep -q "A $MB3 M 4 s 12:13:14:15:16:17" /tmp/monitor
check_ok grep -q "D $MB3" /tmp/monitor
check_ok grep -q "X $MB3" /tmp/monitor

log "# W2: what a request leaves in the kernel is charged to its sender's memory cgroup"
# mbhostd runs one unit (a cgroup) per VM, so MemoryMax= there bounds what
# a guest can make the kernel keep. The rules' per-CPU counters are the
# exact part: 2,000 rules of 16 bytes per CPU.
CG=/sys/fs/cgroup
mountpoint -q $CG || mount -t cgroup2 none $CG
echo +memory >$CG/cgroup.subtree_control
mkdir -p $CG/mbtest
memstat()
{
	awk -v k="$1" '$1 == k { print $2 }' $CG/mbtest/memory.stat
}
pcpu0=$(memstat percpu) slab0=$(memstat slab_unreclaimable)
for i in $(seq 1 2000); do echo "A $MB3 T 8 d $i"; done >/tmp/batch3
check_ok sh -c "echo \$\$ >$CG/mbtest/cgroup.procs && mbadm cmd 'R F $MB3 10.0.0.3' && mbadm batch /tmp/batch3"
check_eq 2000 "$(mb_json $MB3 '.rules | length')" "rules added from the cgroup"
check_ge $((pcpu0 + 2000 * 16 * $(nproc))) "$(memstat percpu)" "per-CPU bytes charged to the cgroup"
check_ge $((slab0 + 2000 * 64)) "$(memstat slab_unreclaimable)" "slab bytes charged to the cgroup"
check_ok mbadm cmd "X $MB3"
percpu_back()
{
	(($(memstat percpu) < pcpu0 + 2000 * 16))
}
mb_wait_for 10 percpu_back || mb_fail "per-CPU charge not given back after X: $(memstat percpu) (was $pcpu0)"
check_ok rmdir $CG/mbtest

log "# the registry is per network namespace"
ns_create other
check_eq "[]" "$(ip netns exec other mbadm -j show | jq -c .)" \
	"another namespace sees nothing"
check_ok ip netns exec other mbadm cmd "R F $MB 10.0.0.99"
check_eq 10.0.0.1 "$(mb_json $MB .ip)" "root namespace unchanged"

log "# an unprivileged user can neither read nor change the registry"
expect 1 "not permitted" setpriv --reuid=65534 --regid=65534 --clear-groups \
	mbadm show
expect 1 "not permitted" setpriv --reuid=65534 --regid=65534 --clear-groups \
	mbadm cmd "X $MB"
check_eq 10.0.0.1 "$(mb_json $MB .ip)" "still registered"

log "# A7: a rule dump of one middlebox is not disturbed by another's changes"
check_ok mbadm cmd "R F $MB3 10.0.0.3"
for i in $(seq 1 20000); do echo "A $MB3 T 8 d $i"; done >/run/t10-big
check_ok mbadm batch /run/t10-big
# the churn: one process making changes as fast as it can (an A and a D a
# request each), counting its rounds, so that the test knows it ran meanwhile
for i in $(seq 40001 40050); do
	echo "A $MB2 T 8 d $i"
	echo "D $MB2 T 8 d $i"
done >/run/t10-churn-cmds
(
	set +e
	i=0
	while :; do
		mbadm batch /run/t10-churn-cmds >/dev/null && echo $i >/run/t10-churn
		i=$((i + 1))
	done
) &
churn=$!
mb_defer kill $churn
churned()
{
	[[ -s /run/t10-churn ]]
}
mb_wait_for 20 churned || mb_fail "$MB2's churn did not start"
c0=$(cat /run/t10-churn)
for i in 1 2 3; do
	check_eq 20000 "$(mbadm -j show $MB3 | jq '.[0].rules | length')" \
		"dump $i of 20,000 rules while $MB2 changes"
done
check_ge $((c0 + 1)) "$(cat /run/t10-churn)" "$MB2's rounds of 100 changes meanwhile"
kill $churn
wait $churn 2>/dev/null || true
check_ok mbadm cmd "X $MB3"

log "# A6: nor follow its changes (the changes group needs CAP_NET_ADMIN)"
setpriv --reuid=65534 --regid=65534 --clear-groups mbadm monitor \
	>/run/t10-monitor 2>&1 &
umon=$!
mb_defer kill $umon
sleep 1
check_ok mbadm cmd "R F $MB3 10.0.0.3"
check_ok mbadm cmd "X $MB3"
sleep 1
check_fail grep -q "$MB3" /run/t10-monitor
check_ok grep -q "Unable to join the .changes' multicast group: Operation not permitted" \
	/run/t10-monitor

mb_test_end
