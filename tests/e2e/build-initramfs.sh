#!/bin/bash
# build-initramfs.sh -- tiny initramfs for the e2e guest: static busybox, our /init
# and the kernel modules for virtio (pci/net/9p), the NFS client (nfsv3, lockd),
# the in-guest comparison server (nfsd) and a local ext4 (ext4, loop).
# Prints the path of $CACHE/initramfs-$KVER-$HASH.cpio.gz; the hash covers this
# script and guest-init.sh, so an edit rebuilds it and old ones stay cached.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${VOLNFS_E2E_CACHE:-/var/tmp/volnfs-e2e}
KERNEL=${VOLNFS_E2E_KERNEL:-$(ls -1 /boot/vmlinuz-* 2>/dev/null | sort -V | tail -1)}
[ -n "$KERNEL" ] && [ -f "$KERNEL" ] || { echo "no kernel in /boot (apt-get install linux-image-amd64)" >&2; exit 1; }
KVER=${KERNEL#/boot/vmlinuz-}
MODS="virtio_pci virtio_net virtio_blk 9pnet_virtio 9p nfsv3 nfs_acl lockd nfsd ext4 loop"
HASH=$(cat "$HERE/build-initramfs.sh" "$HERE/guest-init.sh" | sha256sum | cut -c1-12)
OUT=$CACHE/initramfs-$KVER-$HASH.cpio.gz
[ -f "$OUT" ] && { echo "$OUT"; exit 0; }
BUSYBOX=$(command -v busybox || true)
[ -x "$BUSYBOX" ] && { LC_ALL=C ldd "$BUSYBOX" 2>&1 || true; } | grep -q 'not a dynamic' || { echo "need static busybox (apt-get install busybox-static)" >&2; exit 1; }
mkdir -p "$CACHE"
T=$(mktemp -d "$CACHE/ird.XXXXXX"); trap 'rm -rf "$T"' EXIT
mkdir -p "$T"/{bin,proc,sys,dev,host,lib/modules,tmp}
cp "$BUSYBOX" "$T/bin/busybox"
cp "$HERE/guest-init.sh" "$T/init"; chmod 755 "$T/init"
: > "$T/modules.order"
for m in $MODS; do
  modprobe -S "$KVER" --show-depends "$m" | awk '$1=="insmod"{print $2}'
done | awk '!seen[$0]++' | while read -r ko; do
  b=$(basename "$ko")
  case "$ko" in
    *.ko.xz) xz -dc "$ko" > "$T/lib/modules/${b%.xz}"; b=${b%.xz};;
    *.ko.zst) zstd -qdc "$ko" > "$T/lib/modules/${b%.zst}"; b=${b%.zst};;
    *) cp "$ko" "$T/lib/modules/$b";;
  esac
  echo "$b" >> "$T/modules.order"
done
(cd "$T" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) | gzip -1 > "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
# drop initramfs images of older script versions for this kernel
for f in "$CACHE"/initramfs-"$KVER"-*.cpio.gz; do [ "$f" = "$OUT" ] || rm -f "$f"; done
echo "$OUT"
