#!/bin/bash
# tests/zfs/run-guest.sh INITRD NDISKS LOG -- step 4: boot Debian's kernel with INITRD under
# QEMU (TCG unless real VT-x/AMD-V KVM exists; PVM's /dev/kvm cannot boot a stock kernel),
# NDISKS file-backed virtio disks of $ZFS_TEST_DISK (default 1G), each with one ready-made MBR
# partition (the guest has no udev, and zpool's whole-disk labelling waits for udev).
# The serial console goes to LOG (CRs stripped) and to stdout.
set -euo pipefail
CACHE=${ZFS_TEST_CACHE:-/var/tmp/zfs-vm}
INITRD=$1 N=$2 LOG=$3
KABI=$(cat "$CACHE/kabi")
D=$(dirname "$LOG"); drives=()
for i in $(seq "$N"); do
  img=$D/disk$i.img; rm -f "$img"; truncate -s "${ZFS_TEST_DISK:-1G}" "$img"
  python3 - "$img" <<'PY'
import os, struct, sys
f = sys.argv[1]; n = os.path.getsize(f) // 512; start = 2048
ent = struct.pack('<B3sB3sII', 0, b'\xfe\xff\xff', 0x83, b'\xfe\xff\xff', start, n - start)
with open(f, 'r+b') as d:
    d.seek(446); d.write(ent + b'\0' * 48 + b'\x55\xaa')
PY
  drives+=(-drive "file=$img,if=virtio,format=raw,cache=unsafe")
done
ACC=(-accel tcg,thread=multi,tb-size=512 -cpu max)
if [ -w /dev/kvm ] && [ ! -d /sys/module/kvm_pvm ] && grep -qwE 'vmx|svm' /proc/cpuinfo; then ACC=(-accel kvm -cpu host); fi
timeout "${ZFS_TEST_TIMEOUT:-900}" qemu-system-x86_64 "${ACC[@]}" -m "${ZFS_TEST_MEM:-1536}" -smp 2 \
  -nographic -no-reboot -kernel "/boot/vmlinuz-$KABI" -initrd "$INITRD" \
  -append "console=ttyS0 panic=-1 quiet loglevel=3" "${drives[@]}" </dev/null | tr -d '\r' | tee "$LOG"
rm -f "$D"/disk*.img
