#!/bin/bash
# Runs zone-setup-on-zfs.sh on real OpenZFS in the QEMU guest of tests/zfs/
# (OpenZFS built from Debian's contrib zfs-dkms against Debian's kernel, TCG).
# The modules are built once per kernel ABI + zfs version (~8 min cold on 2
# cores) and cached under $ZFS_TEST_CACHE (default /var/tmp/zfs-vm). Must run
# as root. Prints "ZONE-SETUP-ZFS OK"; exit 0 only then.
#
#   VOLNFS_BIN=target/debug/volnfs image/test/run-in-zfs-vm.sh
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
exec "$HERE/../../tests/zfs/run.sh" zone-setup
