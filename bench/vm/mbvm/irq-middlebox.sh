#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The middlebox VM's half of bench/vm/interrupts.sh: started there with
# mbvm_start (tests/vm/mbvm/mbvm.sh), runs inside the nested guest with
# mbshm.ko loaded. It registers for the firewall offload through its
# ivshmem device (mbctl), then for every round and contender of the
# schedule both halves compute the same way (MBVISOR_IRQ_ROUNDS rounds of
# none, guest_filter, offload; reversed in even rounds) it
#
#   sets the contender up   none: nothing; guest_filter: an nftables netdev
#                           ingress rule on eth0 dropping the flood's source;
#                           offload: `mbctl rule add` of a drop rule for it
#   mbvm_phase rR-C-before  its NIC's counters, then waits for the host's
#                           flood
#   waits for the NIC to go quiet (rx_packets unchanged for a second)
#   mbvm_phase rR-C-after   the counters again
#   takes the contender down
#
# Then it times MBVISOR_CTL_ROUNDS add/delete pairs of a rule through each
# of its two channels, the ivshmem-doorbell device and the ivshmem-plain one
# whose mbhostd polls (bench/vm/interrupts.sh, part 4), into ctl.txt.
#
# Then, if MBVISOR_VMTP_ROUNDS is above 0, it is the middlebox of the
# throughput contenders that bench/vm/interrupts.sh runs with a VM: IPVS
# (NAT) to the backend 10.0.0.11 for 10.0.0.100 ports 5201 and 80.
set -euo pipefail
source "$MBVISOR_ROOT/tests/lib.sh"
source "$MBVISOR_ROOT/tests/vm/mbvm/mbvm.sh"

MB=$MBVISOR_MBVM_MAC
SRC_MAC=02:00:00:00:00:01
SRC_IP=10.0.0.1
ROUNDS=${MBVISOR_IRQ_ROUNDS:-3}

mb_require_cmd mbctl ip nft

modprobe virtio_net
ifc=$(ip -o link | awk -v m="$MB" 'tolower($0) ~ m { sub(":", "", $2); print $2; exit }')
[[ -n $ifc ]] || { mb_fail "no NIC with MAC $MB"; mb_test_end; }
[[ $ifc == eth0 ]] || ip link set "$ifc" name eth0
sysctl -qw net.ipv6.conf.eth0.disable_ipv6=1
ip addr add 10.0.0.100/24 dev eth0
ip link set eth0 up
# The flood's source answers no ARP: the replies of the stack (ICMP port
# unreachable, rate-limited) go out without an ARP request first.
ip neigh replace "$SRC_IP" lladdr "$SRC_MAC" dev eth0 nud permanent
mb_wait_for 30 sh -c 'ls /dev/mbshm* >/dev/null 2>&1'
check_ok test -c /dev/mbshm0
# ctl_dev KIND: the device whose host says "host: KIND" (doorbell, or
# polling the ring: the second channel of part 4). Every command of the
# interrupt rounds names the doorbell device: with two devices, mbctl's
# default (the first with a channel) may be the other one.
ctl_dev()
{
	local d

	for d in /dev/mbshm*; do
		[[ $(mbctl -d "$d" -r 2>/dev/null) == *"host: $1"* ]] && { echo "$d"; return 0; }
	done
	return 1
}
db=$(ctl_dev doorbell) || { mb_fail "no ivshmem device with a doorbell host"; mb_test_end; }
expect_out 0 "host: doorbell" mbctl -d "$db" -r
expect_out 0 "" mbctl -d "$db" -w "@R F $MB 10.0.0.100@"
log "middlebox up: $(mbvm_counters)"
mbvm_phase setup

# quiet: wait until eth0 has received nothing for a second (at most 120 s);
# builtins only (a fork and exec here take a good fraction of a second)
quiet()
{
	local a b t=0 fd

	exec {fd}<> <(:)
	read -r a </sys/class/net/eth0/statistics/rx_packets
	while ((t < 120)); do
		read -r -t 1 -u "$fd" _ || true
		read -r b </sys/class/net/eth0/statistics/rx_packets
		if [[ $a == "$b" ]]; then
			exec {fd}>&-
			return 0
		fi
		a=$b
		t=$((t + 1))
	done
	exec {fd}>&-
	mb_fail "eth0 still receiving after 120 s"
}

up()
{
	case $1 in
	none) ;;
	guest_filter)
		nft -f - <<-EOF2
			table netdev irqbench {
				chain in {
					type filter hook ingress device eth0 priority 0;
					ip saddr $SRC_IP drop
				}
			}
		EOF2
		;;
	offload) expect_out 0 "" mbctl -d "$db" -w "@A $MB I 4 s $SRC_IP@" ;;
	esac
}

down()
{
	case $1 in
	none) ;;
	guest_filter) nft delete table netdev irqbench ;;
	offload) expect_out 0 "" mbctl -d "$db" -w "@D $MB I 4 s $SRC_IP@" ;;
	esac
}

for ((r = 1; r <= ROUNDS; r++)); do
	order=(none guest_filter offload)
	((r % 2)) || order=(offload guest_filter none)
	for c in "${order[@]}"; do
		up "$c"
		mbvm_phase "r$r-$c-before"
		quiet
		mbvm_phase "r$r-$c-after"
		down "$c"
	done
done

# Part 4: time from mbctl to the rule being active (mbctl returns with the
# host's answer, sent once mbstate has published the rule), per channel.
# EPOCHREALTIME: no fork for the clock. ms of one mbctl: usec/1000 with 3
# decimals. Each round times an add and its delete on both channels (the
# order alternating) and one `mbctl --version`; its figure is their mean.
# ctl_us CMD...: microseconds CMD took; fails if CMD failed
ctl_us()
{
	local t0 t1

	t0=${EPOCHREALTIME/./}
	"$@" >/dev/null || return 1
	t1=${EPOCHREALTIME/./}
	echo $((t1 - t0))
}

ms()
{
	printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000))
}

CTL_ROUNDS=${MBVISOR_CTL_ROUNDS:-0}
if ((CTL_ROUNDS > 0)); then
	log "# control plane: mbctl to an active rule, doorbell vs. polling"
	poll=$(ctl_dev "polling the ring") || mb_fail "no ivshmem device with a polling host"
	log "doorbell: $db, polling: $poll"
	: >"$MBVISOR_RESULTS/ctl.txt"
	for ((r = 1; r <= CTL_ROUNDS && MB_FAILED == 0; r++)); do
		devs=("$db" "$poll")
		((r % 2)) || devs=("$poll" "$db")
		declare -A sum=()
		for d in "${devs[@]}"; do
			a=$(ctl_us mbctl -q -d "$d" -w "@A $MB T 8 d 4000@") ||
				{ mb_fail "mbctl add through $d"; break; }
			b=$(ctl_us mbctl -q -d "$d" -w "@D $MB T 8 d 4000@") ||
				{ mb_fail "mbctl delete through $d"; break; }
			sum[$d]=$(((a + b) / 2))
		done
		e=$(ctl_us mbctl --version) || mb_fail "mbctl --version"
		((MB_FAILED == 0)) || break
		echo "$r $(ms "$e") $(ms "${sum[$db]}") $(ms "${sum[$poll]}")" >>"$MBVISOR_RESULTS/ctl.txt"
	done
	cat "$MBVISOR_RESULTS/ctl.txt"
	mbvm_phase ctl-done 1800
fi

# The throughput experiment's contenders with this VM as the middlebox
# (bench/vm/interrupts.sh, vm_throughput): it forwards with IPVS itself.
if ((${MBVISOR_VMTP_ROUNDS:-0} > 0)); then
	log "# throughput: IPVS (NAT) in this VM, to the backend 10.0.0.11"
	modprobe ip_vs
	modprobe ip_vs_rr
	sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.send_redirects=0 \
		net.ipv4.conf.eth0.send_redirects=0 net.ipv4.vs.conn_reuse_mode=1
	for port in 5201 80; do
		ipvsadm -A -t "10.0.0.100:$port" -s rr
		ipvsadm -a -t "10.0.0.100:$port" -r "10.0.0.11:$port" -m
	done
	mbvm_phase tp-ready 3000
	mbvm_phase tp-done 3000
	log "IPVS in this VM: $(ipvsadm -L -n --stats | tr -s ' ' | tail -n 4 | paste -sd ' ')"
fi
mb_test_end
