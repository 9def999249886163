#!/bin/sh
# volnfs zone-setup against real OpenZFS, first and second boot. Meant for a
# throwaway root environment with the zfs module loaded (e.g. the guest of
# tests/zfs/run.sh zone-setup, which puts volnfs in the guest): it creates a pool
# named "zones" on $VDEV and mounts a dataset at /exports. Busybox sh is enough.
#
# Run in the tests/zfs QEMU guest (OpenZFS 2.1.11, Debian 6.1 kernel, TCG):
# passes (tests/zfs/run.sh zone-setup, or image/test/run-in-zfs-vm.sh).
#
#   VDEV=/dev/vda1 VOLNFS=/usr/bin/volnfs sh zone-setup-on-zfs.sh
set -eu
VOLNFS=${VOLNFS:-volnfs}
ZFS=${ZFS:-/sbin/zfs}
VDEV=${VDEV:?set VDEV to a disk, partition or file for the test pool}
UUID=8f2c1d5e-4b7e-4f7a-9d55-0a1b2c3d4e5f
D=zones/$UUID/data
fail() { echo "ZONE-SETUP-ZFS FAIL: $*"; exit 1; }

zpool create -f -O mountpoint=none zones "$VDEV"
"$ZFS" create -p "$D"
cat >/tmp/zone-metadata.json <<JSON
{"sdc:uuid": "$UUID", "export-volumes": "[\"data\"]", "volume-size-mib": "100"}
JSON

"$VOLNFS" zone-setup --metadata /tmp/zone-metadata.json --zfs "$ZFS" >/tmp/first.out
cat /tmp/first.out
grep -q "$D/data created refquota=104857600" /tmp/first.out || fail "first boot output"
[ "$("$ZFS" get -H -p -o value refquota "$D/data")" = 104857600 ] || fail "refquota"
[ "$("$ZFS" get -H -o value mountpoint "$D")" = /exports ] || fail "mountpoint"
[ "$("$ZFS" get -H -o value mounted "$D/data")" = yes ] || fail "volume not mounted"
[ -d /exports/.volnfs ] || fail "state directory"

# Second boot changes nothing; a resize made since is kept.
"$ZFS" set refquota=200M "$D/data"
"$VOLNFS" zone-setup --metadata /tmp/zone-metadata.json --zfs "$ZFS" >/tmp/second.out
cat /tmp/second.out
grep -q "$D/data exists refquota=209715200" /tmp/second.out || fail "second boot output"
[ "$("$ZFS" get -H -p -o value refquota "$D/data")" = 209715200 ] || fail "resize reverted"

# A missing delegated dataset is a clear, classified error.
sed "s/$UUID/no-such-zone/" /tmp/zone-metadata.json >/tmp/bad.json
if "$VOLNFS" zone-setup --metadata /tmp/bad.json --zfs "$ZFS" 2>/tmp/bad.err; then fail "missing dataset accepted"; fi
grep -q "not found" /tmp/bad.err || fail "missing dataset not classified: $(cat /tmp/bad.err)"

# Captured output for the parsers' unit tests (src/zfs.rs).
echo "CAPTURE-GET-BEGIN"
"$ZFS" get -H -p -o name,property,value,source mountpoint,mounted,refquota,quota,used "$D/data"
echo "CAPTURE-GET-END"
echo "CAPTURE-STDERR-BEGIN"
"$ZFS" create "$D/data" 2>&1 || true
"$ZFS" get -H -p -o name,property,value,source mountpoint zones/nope 2>&1 || true
"$ZFS" set refquota=1K "$D/data" 2>&1 || true
echo "CAPTURE-STDERR-END"

zpool export zones
echo "ZONE-SETUP-ZFS OK"
