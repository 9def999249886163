#!/bin/sh
# PID 1 of the tests/zfs guest: load virtio, zfs and the NFS client, then run every test
# in /tests/list; test number N gets its own disk /dev/vd<a+N>1 as $VDEV. Each test's
# exit status is printed as "GUEST-TEST name rc=N".
export PATH=/usr/sbin:/usr/bin:/sbin:/bin NO_COLOR=1
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev; mount -t tmpfs tmp /tmp
mkdir -p /run && mount -t tmpfs run /run
ln -sf /proc/self/mounts /etc/mtab
ip link set lo up
modprobe virtio_pci && modprobe virtio_blk
for m in zfs nfsv3; do modprobe $m || echo "GUEST modprobe $m failed"; done
sed 's/^/ZFS version /' /sys/module/zfs/version
n=0
for t in $(cat /tests/list); do
  dev=/dev/vd$(echo abcdefgh | cut -c$((n+1)))1
  i=0; while [ ! -e $dev ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
  echo "GUEST-TEST-BEGIN $t vdev=$dev"
  VDEV=$dev VOLNFS=/usr/bin/volnfs ZFS=/sbin/zfs sh /tests/$t.sh 2>&1
  echo "GUEST-TEST $t rc=$?"
  n=$((n+1))
done
sync
poweroff -f
