#!/bin/bash
# Runs zone-setup-on-zfs.sh in the QEMU guest of ../shared/tools/zfs-vm
# (OpenZFS built from Debian's zfs-dkms against Debian's 6.1 kernel, TCG).
# Reuses that harness's downloads and modules ($ZFSVM_SHARED, built by its
# 01-host-prep.sh and 02-build-module.sh, ~8 min cold on 2 cores) and its
# 03/04 steps, with this directory's guest init. Prints "ZONE-SETUP-ZFS OK".
#
#   VOLNFS_BIN=target/debug/volnfs image/test/run-in-zfs-vm.sh
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOOLS=${ZFSVM_TOOLS:-$HERE/../../../shared/tools/zfs-vm}
SHARED=${ZFSVM_SHARED:-/var/tmp/zfs-vm}
BIN=${VOLNFS_BIN:-$HERE/../../target/debug/volnfs}
W=$(mktemp -d /tmp/volnfs-zfs-vm.XXXXXX)
trap 'rm -rf "$W"' EXIT
[[ -f $SHARED/ko/zfs.ko ]] || { echo "no modules in $SHARED/ko: run $TOOLS/01-host-prep.sh and 02-build-module.sh" >&2; exit 1; }
ln -s "$SHARED/debs" "$W/debs"; ln -s "$SHARED/ko" "$W/ko"; cp "$SHARED/kabi" "$W/kabi"
# The harness's steps, with our init and test script in the guest.
mkdir -p "$W/tools"
cp "$TOOLS/03-initramfs.sh" "$TOOLS/04-run-guest.sh" "$W/tools/"
cp "$HERE/guest-init.sh" "$W/tools/guest-init.sh"
sed -i 's|^cp "$HERE/guest-init.sh" "$R/init"; chmod +x "$R/init"$|&\ncp "'"$HERE"'/zone-setup-on-zfs.sh" "$R/usr/bin/"|' "$W/tools/03-initramfs.sh"
strip -o "$W/volnfs" "$BIN"
export ZFSVM_WORK=$W
EXTRA_BINS="$W/volnfs" "$W/tools/03-initramfs.sh"
GUEST_TIMEOUT=${GUEST_TIMEOUT:-600} "$W/tools/04-run-guest.sh" | tr -d '\r' | tee "$W/guest.out" |
    grep -aE '^(ZFS version|zones/|ZONE-SETUP-ZFS|GUEST|TIME)' || true
grep -q '^ZONE-SETUP-ZFS OK' "$W/guest.out"
