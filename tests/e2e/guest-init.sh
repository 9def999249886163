#!/bin/busybox sh
# /init of the volnfs e2e initramfs (PID 1 in the guest). Loads modules, mounts the
# host root read-only over 9p at /host, makes the writable dirs tmpfs, sets up
# eth0 from ctl/env, chroots into the host root and runs ctl/guest-main.sh.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /modules.order); do
  insmod /lib/modules/$m 2>/dev/null || echo "e2e-init: insmod $m failed"
done
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144,cache=loose hostroot /host || { echo "e2e-init: 9p hostroot mount failed"; poweroff -f; }
# host /tmp is hidden in the guest; /var/tmp and the repo are visible read-only
for d in tmp run var/lib/nfs mnt srv; do
  [ -d /host/$d ] && mount -t tmpfs -o mode=1777 tmpfs /host/$d
done
chmod 755 /host/run /host/var/lib/nfs /host/mnt /host/srv
mount -t proc proc /host/proc
mount -t sysfs sysfs /host/sys
mount -t devtmpfs devtmpfs /host/dev
mkdir -p /host/dev/pts /host/dev/shm
mount -t devpts devpts /host/dev/pts
mount -t tmpfs tmpfs /host/dev/shm
mkdir -p /host/run/e2e/ctl /host/run/e2e/out
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 ctl /host/run/e2e/ctl || echo "e2e-init: ctl mount failed"
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 out /host/run/e2e/out || echo "e2e-init: out mount failed"
. /host/run/e2e/ctl/env
hostname volnfs-e2e-guest
ip link set lo up
ip link set eth0 up
ip addr add "$GUEST_IP/$GUEST_PREFIX" dev eth0
# deliberately NO default route: the guest reaches only its own /24
chroot /host /bin/bash /run/e2e/ctl/guest-main.sh
echo "e2e-init: guest-main finished rc=$?"
sync
umount -a -r 2>/dev/null
poweroff -f
