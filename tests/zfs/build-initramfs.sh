#!/bin/bash
# tests/zfs/build-initramfs.sh OUT VOLNFS_BIN NAME=SCRIPT...
# Step 3: a guest initramfs: static busybox, Debian's virtio + NFS client modules
# (sunrpc, lockd, nfs, nfsv3 and their dependencies), the OpenZFS modules from
# build-module.sh, the zfs/zpool userland extracted (not installed) from the contrib debs,
# mount.nfs and GNU stat from the host, volnfs and (with $ZFS_TEST_AGENT) the example
# control-channel agent as vapi-agent (stripped), every binary with its
# ldd-resolved libraries, guest-init.sh as /init and the named test scripts under /tests.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${ZFS_TEST_CACHE:-/var/tmp/zfs-vm}
OUT=$1 BIN=$2; shift 2
KABI=$(cat "$CACHE/kabi")
KO=${ZFS_TEST_KO:?set ZFS_TEST_KO to the directory build-module.sh printed}
BUSYBOX=$(command -v busybox)
{ LC_ALL=C ldd "$BUSYBOX" 2>&1 || true; } | grep -q 'not a dynamic' || { echo "need static busybox (busybox-static)" >&2; exit 1; }
T=$(mktemp -d "${TMPDIR:-/tmp}/zfs-initramfs.XXXXXX"); trap 'rm -rf "$T"' EXIT
R=$T/root U=$T/userland
mkdir -p "$R"/{bin,sbin,dev,proc,sys,tmp,etc,mnt,run,lib64,usr/bin,usr/sbin,tests} "$U"
for p in zfsutils-linux libzfs4linux libnvpair3linux libuutil3linux libzfsbootenv1linux libzpool5linux; do
  dpkg-deb -x "$(ls -1 "$CACHE"/debs/${p}_*.deb | sort -V | tail -1)" "$U"; done
cp "$BUSYBOX" "$R/bin/busybox"
for a in $("$BUSYBOX" --list); do [ "$a" = busybox ] || ln -sf busybox "$R/bin/$a"; done
# ZFS mounts a snapshot on first access by running `/usr/bin/env mount -t zfs -n ...`
# (zfsctl_snapshot_mount): without it .zfs/snapshot/<name> fails with ELOOP.
ln -sf /bin/busybox "$R/usr/bin/env"
# kernel modules: zfs (built) in extra/, Debian's virtio + NFS client stack in kernel/
M=$R/lib/modules/$KABI; mkdir -p "$M/extra" "$M/kernel"
cp "$KO"/*.ko "$M/extra/"
for m in virtio_pci virtio_blk nfsv3; do
  modprobe -S "$KABI" --show-depends "$m" | awk '$1=="insmod"{print $2}'
done | awk '!seen[$0]++' | while read -r ko; do
  b=$(basename "$ko")
  case $ko in
    *.ko.xz) xz -dc "$ko" > "$M/kernel/${b%.xz}";;
    *.ko.zst) zstd -qdc "$ko" > "$M/kernel/${b%.zst}";;
    *) cp "$ko" "$M/kernel/$b";;
  esac
done
cp /lib/modules/$KABI/modules.{order,builtin,builtin.modinfo} "$M/" 2>/dev/null || true
depmod -b "$R" "$KABI"
copy_bin() { # binary, destination dir in the root, [name]
  cp "$1" "$R/$2/${3:-$(basename "$1")}"
  LD_LIBRARY_PATH="$U/lib/x86_64-linux-gnu:$U/usr/lib/x86_64-linux-gnu" ldd "$1" | awk '/=>/ {print $3} /ld-linux/ {print $1}' |
  while read -r lib; do [ -f "$lib" ] || continue; d=${lib#$U}; mkdir -p "$R$(dirname "$d")"; cp -L "$lib" "$R$d"; done
}
copy_bin "$U/sbin/zpool" sbin; copy_bin "$U/sbin/zfs" sbin
copy_bin "$(command -v mount.nfs)" sbin
copy_bin "$(command -v stat)" usr/bin gstat     # GNU stat: %W (birth time); busybox has none
strip -o "$T/volnfs" "$BIN"; copy_bin "$T/volnfs" usr/bin
# the control channel's agent side (examples/vapi_agent.rs), when given
if [ -n "${ZFS_TEST_AGENT:-}" ]; then strip -o "$T/vapi-agent" "$ZFS_TEST_AGENT"; copy_bin "$T/vapi-agent" usr/bin; fi
cp -L /lib64/ld-linux-x86-64.so.2 "$R/lib64/"
cp /etc/netconfig "$R/etc/" 2>/dev/null || true   # libtirpc (mount.nfs)
echo "root:x:0:0:root:/:/bin/sh" > "$R/etc/passwd"; echo "root:x:0:" > "$R/etc/group"
cp "$HERE/guest-init.sh" "$R/init"; chmod 755 "$R/init"
: > "$R/tests/list"
for nv in "$@"; do n=${nv%%=*} s=${nv#*=}; cp "$s" "$R/tests/$n.sh"; echo "$n" >> "$R/tests/list"; done
(cd "$R" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) | gzip -1 > "$OUT"
