#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Deployment as an administrator does it, inside the test guest (whose root
# is a writable overlay; no network: apt resolves the local files against
# what is installed): `apt install ./*.deb` of the packages from `make deb`,
# DKMS builds the modules for the running kernel, modprobe loads them from
# the installed tree, mbadm works from /usr/sbin, the man pages render, the
# systemd unit verifies and its sandbox paths would mount; `apt purge`
# leaves nothing behind. Then `make install-modules`, `make install-tools`
# and `make uninstall` into a staging directory.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/mb.sh"

mb_require_cmd apt dpkg dkms man
KV=$(uname -r)
VERSION=$(cat "$MBVISOR_ROOT/VERSION")
DEBS=("$MBVISOR_ROOT"/dist/mbvisor-dkms_"$VERSION"_all.deb
	"$MBVISOR_ROOT"/dist/mbvisor-host_"$VERSION"_amd64.deb
	"$MBVISOR_ROOT"/dist/mbvisor-guest_"$VERSION"_amd64.deb)
for d in "${DEBS[@]}"; do
	[[ -f $d ]] || { mb_fail "$d missing: run make deb first"; mb_test_end; }
done

# DKMS runs depmod, which reads every .ko of the kernel: 4,000 files over
# 9p under TCG take longer than this whole test. The install below is the
# real one, into a module tree trimmed to what it needs (the builtin lists
# and the headers link); the modules the guest already loaded stay loaded.
trim=$(mktemp -d)
cp -a /lib/modules/"$KV"/{modules.builtin*,modules.order,build,source} "$trim"/
mount --bind "$trim" /lib/modules/"$KV"
mb_defer rm -rf "$trim"
mb_defer umount /lib/modules/"$KV"

log "# the packages install, and DKMS builds the modules"
mb_unload_modules
export DEBIAN_FRONTEND=noninteractive
# apt takes local files by path (./x.deb or absolute); the -o quiets its
# note that the _apt user cannot read them
check_ok apt -y -o APT::Sandbox::User=root install \
	"${DEBS[@]}"
check_ok sh -c "dkms status | grep -q 'mbvisor/$VERSION, $KV, .*: installed'"
for m in mbstate mbhook mbfw mblb mbshm; do
	check_ok sh -c "modinfo -n $m | grep -q '^/lib/modules/$KV/updates/dkms/$m.ko'"
done

log "# modprobe loads them from the installed tree; the tool works"
check_ok modprobe mbfw
check_ok grep -q '^mbstate ' /proc/modules
check_ok /usr/sbin/mbadm cmd "R F 52:34:56:00:12:22 10.0.0.100"
check_eq 10.0.0.100 "$(/usr/sbin/mbadm -j show | jq -r '.[0].ip')" "registered"
for page in man8/mbadm.8 man8/mbhostd.8 man8/mbctl.8 man4/mbshm.4; do
	check_ok sh -c "man -l /usr/share/man/$page.gz | grep -q mb"
done
log "# the systemd unit and the libvirt hook are in place and valid"
check_ok systemd-analyze verify mbhostd@fw1.service
# systemd fails the start (226/NAMESPACE) if a ReadWritePaths= entry without
# "-" does not exist, except the RuntimeDirectory= it creates first; this
# guest has no /var/lib/libvirt
unit=/lib/systemd/system/mbhostd@.service
rundir=/run/$(sed -n 's/^RuntimeDirectory=//p' $unit)
for p in $(sed -n 's/^ReadWritePaths=//p' $unit); do
	[[ $p == -* || $p == "$rundir" ]] && continue
	check_ok test -e "$p"
done
check_ok grep -q '^ExecStart=/usr/sbin/mbhostd --socket-group ' \
	/lib/systemd/system/mbhostd@.service
check_ok test -x /etc/libvirt/hooks/qemu.d/mbvisor
check_ok test -x /usr/sbin/mbhostd
check_ok test -x /usr/sbin/mbctl
check_eq "mbfw mblb" "$(grep -v '^#' /etc/modules-load.d/mbvisor.conf | xargs)" \
	"modules loaded at boot"

log "# removal leaves nothing behind"
check_ok modprobe -r mbfw mblb mbhook mbstate
check_ok apt -y -o APT::Sandbox::User=root purge mbvisor-host mbvisor-guest mbvisor-dkms
check_eq "" "$(dpkg-query -W -f '${db:Status-Abbrev} ${Package}\n' 'mbvisor-*' 2>/dev/null | grep -v '^un ' || true)" \
	"mbvisor packages known to dpkg after purge"
check_eq "" "$(dkms status 2>/dev/null | grep mbvisor || true)" "dkms status"
check_fail test -e "/usr/src/mbvisor-$VERSION"
for f in /usr/sbin/mbadm /usr/sbin/mbhostd /usr/sbin/mbctl \
	/lib/systemd/system/mbhostd@.service /etc/libvirt/hooks/qemu.d/mbvisor; do
	check_fail test -e $f
done
check_eq "" "$(find /lib/modules/"$KV"/updates -name 'mb*.ko' 2>/dev/null)" \
	"modules left in /lib/modules"

log "# make install-modules, make install-tools and make uninstall, staged"
stage=$(mktemp -d)
mb_defer rm -rf "$stage"
# KVER=none: uninstall must find the modules from KDIR, as install does
check_ok make -s -C "$MBVISOR_ROOT" install-modules DESTDIR="$stage" \
	KDIR=/lib/modules/"$KV"/build KVER=none
for m in mbstate/mbstate bridge_hook/mbhook offload_fw/mbfw offload_lb/mblb \
	guest_driver/mbshm; do
	check_eq "$KV" "$(modinfo -F vermagic "$stage/lib/modules/$KV/updates/mbvisor/$m.ko" 2>&1 | cut -d' ' -f1)" \
		"staged $m.ko"
done
check_ok make -s -C "$MBVISOR_ROOT" install-tools DESTDIR="$stage" PREFIX=/usr
for f in usr/sbin/mbadm usr/sbin/mbhostd usr/sbin/mbctl \
	usr/share/man/man8/mbadm.8 usr/include/linux/mbstate.h \
	lib/systemd/system/mbhostd@.service etc/libvirt/hooks/qemu.d/mbvisor \
	etc/modules-load.d/mbvisor.conf; do
	check_ok test -f "$stage/$f"
done
check_ok make -s -C "$MBVISOR_ROOT" uninstall DESTDIR="$stage" PREFIX=/usr \
	KDIR=/lib/modules/"$KV"/build KVER=none
check_eq "" "$(find "$stage" -type f 2>/dev/null)" "files left after make uninstall"
check_eq "" "$(find "$stage" -name '*.ko' 2>/dev/null)" "modules left after make uninstall"

mb_fresh_registry
mb_test_end
