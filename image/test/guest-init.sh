#!/bin/sh
# PID 1 in the zfs-vm guest (see run-in-zfs-vm.sh): volnfs zone-setup against real OpenZFS.
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev; mount -t tmpfs tmp /tmp
ln -sf /proc/self/mounts /etc/mtab
modprobe virtio_pci && modprobe virtio_blk
modprobe zfs && cat /sys/module/zfs/version | sed 's/^/ZFS version /'
i=0; while [ ! -e /dev/vda1 ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
VDEV=/dev/vda1 VOLNFS=/usr/bin/volnfs ZFS=/sbin/zfs sh /usr/bin/zone-setup-on-zfs.sh 2>&1
echo "GUEST rc=$?"
sync
poweroff -f
