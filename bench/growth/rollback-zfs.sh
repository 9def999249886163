#!/bin/sh
# bench/growth/rollback-zfs.sh -- the rollback pause against the number of files, on real
# OpenZFS, inside the tests/zfs guest (`sudo tests/zfs/run.sh rollback-curve`): a volume
# dataset served by volnfs and mounted by the Linux kernel client over loopback; for each
# size the files are made on the dataset, listed through the client (so the handle index
# holds every one of them), snapshotted, one file is added, and the volume is rolled back
# through `volnfs ctl`. Per size three lines:
#   INFO curve files=N dataset_files=.. rollback_ms=.. paused_ms=.. zfs_rollback_ms=..
#        first_stat_ms=.. list_before_ms=.. relist_ms=.. relist_again_ms=.. state_kb=.. rebuilds=..
#   INFO calls files=N before: READDIRPLUS:calls/rtt_ms ...   (and "after:")
# rollback_ms: the ctl call as the operator sees it; paused_ms: how long NFS calls were held
# (the server's own figure); zfs_rollback_ms: the same kind of rollback done by `zfs
# rollback` alone, which is ZFS's share of the pause; first_stat_ms: the first stat of an
# old file through the client afterwards (its handle from before the rollback);
# list_before_ms / relist_ms / relist_again_ms: listing the directory's names through the
# client before the snapshot, right after the rollback and once more; state_kb: the state
# directory (handle index); rebuilds: index walks the server has logged so far; the calls
# lines: the client's READDIR/READDIRPLUS/GETATTR/LOOKUP/ACCESS calls and their rtt during
# the listings before and after, from /proc/self/mountstats. TCG guest: absolute numbers
# are many times a real machine's; read the growth, not the values.
VOLNFS=${VOLNFS:-volnfs}
ZFS=${ZFS:-/sbin/zfs}
VDEV=${VDEV:?set VDEV to a disk, partition or file for the test pool}
SIZES=${ROLLBACK_SIZES:-1000 10000 100000}
DS=tank/vols/curve
P=/vols/curve
M=/mnt
SOCK=/run/volnfs/control.sock
CFG=/tmp/volnfs.json
up() { awk '{printf "%d", $1*1000}' /proc/uptime; }
ctl() { "$VOLNFS" ctl --socket "$SOCK" "$@" 2>&1 | tr '\n' ' '; }
bad() { echo "FAIL $*"; echo "ROLLBACK-CURVE FAIL"; exit 1; }
# the client's own count of calls and their round-trip time (ms) per procedure, from
# /proc/self/mountstats (one NFS mount here): "READDIRPLUS=ops/rtt_ms/execute_ms ..."
opstats() { awk '$1 ~ /^(READDIR|READDIRPLUS|GETATTR|LOOKUP|ACCESS):$/ { sub(":", "", $1); printf "%s=%d/%d/%d ", $1, $2, $8, $9 }' /proc/self/mountstats; }
# what was done between two opstats lines: per procedure, calls and rtt ms
opdiff() { echo "$1 | $2" | awk -F' [|] ' '{ n = split($1, a, " "); split($2, b, " ");
  for (i = 1; i <= n; i++) { split(a[i], x, "[=/]"); split(b[i], y, "[=/]");
    if (y[2] - x[2] > 0) printf "%s:%d/%dms ", x[1], y[2] - x[2], y[3] - x[3] } }'; }

zpool create -f -o ashift=12 -O mountpoint=none -O atime=off tank "$VDEV" || bad zpool-create
"$ZFS" create -p -o mountpoint=/vols tank/vols
"$ZFS" create "$DS"
mkdir -p /tmp/volnfs-state /run/volnfs
cat > "$CFG" <<JSON
{
  "listen": ["127.0.0.1"], "nfs_port": 2049, "mount_port": 20048,
  "portmap": { "enabled": true, "port": 111 },
  "state_dir": "/tmp/volnfs-state", "control_socket": "$SOCK", "zfs": "$ZFS",
  "exports": [ { "name": "/exports/data", "path": "$P", "dataset": "$DS",
    "clients": [ { "match": "127.0.0.1", "access": "rw", "squash": "no_root_squash" } ] } ]
}
JSON
"$VOLNFS" serve --config "$CFG" >/tmp/server.out 2>/tmp/server.log &
SPID=$!
i=0; until grep -q '^ready ' /tmp/server.out 2>/dev/null; do i=$((i+1)); [ $i -gt 300 ] && bad serve "$(tail -5 /tmp/server.log)"; sleep 0.1; done
mount -t nfs -o vers=3,nolock,proto=tcp,port=2049,mountport=20048,mountproto=tcp 127.0.0.1:/exports/data $M || bad mount
total=0
for n in $SIZES; do
  d=t$n
  mkdir "$P/$d"
  awk -v n="$n" -v d="$P/$d" 'BEGIN { for (i = 1; i <= n; i++) printf "%s/f%07d\n", d, i }' | xargs touch || bad "creating $n files"
  total=$((total + n))
  listed=$(ls -l "$M/$d" | grep -c '^-')
  [ "$listed" = "$n" ] || bad "listing $d through the client: $listed of $n files"
  stat "$M/$d/f0000001" >/dev/null || bad "stat before the rollback"
  # the same listing as after the rollback, done now: what a rollback adds to it
  o0=$(opstats); t7=$(up); before=$(ls -1 "$M/$d" | grep -c '^f'); t8=$(up); o1=$(opstats)
  [ "$before" = "$n" ] || bad "listing before the rollback: $before of $n files"
  out=$(ctl snapshot create "c$n") || bad "snapshot create: $out"
  touch "$M/$d/after"
  t0=$(up); out=$(ctl snapshot rollback "c$n"); t1=$(up)
  paused=$(echo "$out" | grep -oE 'paused_ms"?: *[0-9]+' | grep -oE '[0-9]+$')
  [ -n "$paused" ] || bad "rollback of c$n: $out"
  t2=$(up); stat "$M/$d/f0000001" >/dev/null || bad "stat of an old file after the rollback"; t3=$(up)
  o2=$(opstats); again=$(ls -1 "$M/$d" | grep -c '^f'); t4=$(up); o3=$(opstats)
  [ "$again" = "$n" ] || bad "listing after the rollback: $again of $n files"
  ls -1 "$M/$d" >/dev/null; t9=$(up)
  [ -e "$M/$d/after" ] && bad "a file made after the snapshot is still there"
  idx=$(du -sk /tmp/volnfs-state | cut -f1)
  ctl snapshot delete "c$n" >/dev/null
  # the same rollback by zfs alone (volnfs not asked; nothing is written meanwhile): the
  # part of the pause that is ZFS's own
  "$ZFS" snapshot "$DS@z$n" && touch "$P/$d/after"
  t5=$(up); "$ZFS" rollback "$DS@z$n" || bad "zfs rollback z$n"; t6=$(up)
  "$ZFS" destroy "$DS@z$n"
  echo "INFO curve files=$n dataset_files=$total rollback_ms=$((t1 - t0)) paused_ms=$paused zfs_rollback_ms=$((t6 - t5)) first_stat_ms=$((t3 - t2)) list_before_ms=$((t8 - t7)) relist_ms=$((t4 - t3)) relist_again_ms=$((t9 - t4)) state_kb=$idx rebuilds=$(grep -c 'rebuilding the handle index' /tmp/server.log)"
  echo "INFO calls files=$n before: $(opdiff "$o0" "$o1")"
  echo "INFO calls files=$n after: $(opdiff "$o2" "$o3")"
done
kill -0 $SPID || bad "the server exited: $(tail -5 /tmp/server.log)"
umount $M
echo "ROLLBACK-CURVE OK"
