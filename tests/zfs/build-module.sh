#!/bin/bash
# tests/zfs/build-module.sh -- step 2: build the OpenZFS kernel modules from Debian's
# zfs-dkms source against the installed Debian headers (plain configure + make: what dkms
# runs, without dkms). Cached in $CACHE/ko-$KABI-zfs$VERSION/; prints that directory.
# A cache made by the older ../shared/tools/zfs-vm harness ($CACHE/ko) is reused when its
# vermagic and version match. About 7-8 min on 2 cores when cold.
set -euo pipefail
CACHE=${ZFS_TEST_CACHE:-/var/tmp/zfs-vm}
KABI=$(cat "$CACHE/kabi")
DEB=$(ls -1 "$CACHE"/debs/zfs-dkms_*.deb | sort -V | tail -1)
ZVER=$(dpkg-deb -f "$DEB" Version | sed 's/-.*//')        # 2.1.11
KO=$CACHE/ko-$KABI-zfs$ZVER
ok() { [ -f "$1/zfs.ko" ] && modinfo -F vermagic "$1/zfs.ko" | grep -q "^$KABI " &&
       [ "$(modinfo -F version "$1/zfs.ko" | sed 's/-.*//')" = "$ZVER" ]; }
if [ "${REBUILD:-0}" != 1 ]; then
  ok "$KO" && { echo "$KO"; exit 0; }
  if ok "$CACHE/ko"; then rm -rf "$KO.tmp"; cp -a "$CACHE/ko" "$KO.tmp"; mv "$KO.tmp" "$KO"; echo "$KO"; exit 0; fi
fi
KDIR=/usr/src/linux-headers-$KABI
[ -d "$KDIR" ] || { echo "no $KDIR (run host-prep.sh)" >&2; exit 1; }
t0=$(date +%s)
B=$CACHE/build-$KABI-zfs$ZVER
rm -rf "$B" && mkdir -p "$B" && dpkg-deb -x "$DEB" "$B"
cd "$B"/usr/src/zfs-*
./configure --prefix=/usr --with-config=kernel --with-linux="${KDIR/%amd64/common}" \
  --with-linux-obj="$KDIR" > "$B/configure.log" 2>&1 || { tail -40 "$B/configure.log" >&2; exit 1; }
t1=$(date +%s); echo "zfs-test: configure $((t1-t0))s" >&2
make -j"$(nproc)" > "$B/make.log" 2>&1 || { tail -40 "$B/make.log" >&2; exit 1; }
echo "zfs-test: make $(( $(date +%s) - t1 ))s" >&2
rm -rf "$KO.tmp" && mkdir -p "$KO.tmp"
find module -name '*.ko' -exec cp {} "$KO.tmp/" \;
strip --strip-debug "$KO.tmp"/*.ko
rm -rf "$KO" && mv "$KO.tmp" "$KO"
cd / && rm -rf "$B"
ok "$KO" || { echo "built modules do not match $KABI / $ZVER" >&2; exit 1; }
echo "$KO"
