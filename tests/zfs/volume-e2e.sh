#!/bin/sh
# tests/zfs/volume-e2e.sh -- issue 6 end to end on real OpenZFS, inside the tests/zfs guest
# (or any throwaway root with the zfs and nfsv3 modules loaded, busybox sh, mount.nfs):
# a pool on $VDEV, a volume dataset with a refquota, `volnfs serve --config` with
# exports[].dataset and a control socket, the Linux kernel NFSv3 client mounting it over
# loopback, then snapshots, rollback, resize and a concurrency check through `volnfs ctl`.
# One "PASS|FAIL|INFO step detail" line per step; "VOLUME-ZFS OK" only if all passed.
#
#   VDEV=/dev/vdb1 VOLNFS=/usr/bin/volnfs ZFS=/sbin/zfs sh volume-e2e.sh
VOLNFS=${VOLNFS:-volnfs}
ZFS=${ZFS:-/sbin/zfs}
VDEV=${VDEV:?set VDEV to a disk, partition or file for the test pool}
STAT=$(command -v gstat || command -v stat)
UUID=3d1e0f7a-6c2b-4e59-8a41-5b7c9d0e1f23
DS=tank/zones/$UUID/data/vol
P=/vols/vol
M=/mnt
SOCK=/run/volnfs/control.sock
CHAN=/run/zonecontrol/volnfs.sock   # the control channel's agent socket (RFD 69)
CFG=/tmp/volnfs.json
FAILS=0
pass() { echo "PASS $*"; }
fail() { echo "FAIL $*"; FAILS=$((FAILS+1)); }
info() { echo "INFO $*"; }
ctl() { # one line of output, the exit status of volnfs ctl
  _o=$("$VOLNFS" ctl --socket "$SOCK" "$@" 2>&1); _r=$?; echo "$_o" | tr '\n' ' ' | sed 's/  */ /g; s/ $//'; return $_r; }
up() { awk '{printf "%d", $1*1000}' /proc/uptime; }
total_bytes() { $STAT -f -c '%S %b' "$1" | awk '{printf "%d", $1*$2}'; }
near() { awk -v a="$1" -v b="$2" 'BEGIN{d=a-b; if(d<0)d=-d; exit !(d <= b/50)}'; }   # within 2%
# poll up to $1 tenths of a second for a command to succeed
until_ok() { n=$1; shift; i=0; while ! "$@" 2>/dev/null; do i=$((i+1)); [ $i -ge "$n" ] && return 1; sleep 0.1; done; return 0; }
content_is() { [ "$(cat "$1")" = "$2" ]; }
gone() { [ ! -e "$1" ]; }
server_alive() { kill -0 "$SPID" 2>/dev/null; }

# ---------------------------------------------------------------- pool, volume, server
zpool create -f -o ashift=12 -O mountpoint=none -O atime=off tank "$VDEV" || { echo "FAIL zpool-create"; echo "VOLUME-ZFS FAIL"; exit 1; }
"$ZFS" create -p -o mountpoint=/vols "tank/zones/$UUID/data"
"$ZFS" create -o refquota=200M "$DS"
# a second export on the same dataset: a directory of the volume, bind-mounted
# outside it (exports must not overlap; it is on the volume by its fsid)
mkdir -p "$P/d" /vols-sub /tmp/volnfs-state /run/volnfs /run/zonecontrol
mount --bind "$P/d" /vols-sub
cat > "$CFG" <<JSON
{
  "listen": ["127.0.0.1"],
  "nfs_port": 2049,
  "mount_port": 20048,
  "portmap": { "enabled": true, "port": 111 },
  "state_dir": "/tmp/volnfs-state",
  "control_socket": "$SOCK",
  "control_connect": "$CHAN",
  "zfs": "$ZFS",
  "snapshot_limit": 64,
  "exports": [
    { "name": "/exports/data", "path": "$P", "dataset": "$DS",
      "clients": [ { "match": "127.0.0.1", "access": "rw", "squash": "no_root_squash" } ] },
    { "name": "/exports/sub", "path": "/vols-sub",
      "clients": [ { "match": "127.0.0.1", "access": "rw", "squash": "no_root_squash" } ] }
  ]
}
JSON
"$VOLNFS" check-config "$CFG" >/dev/null || fail check-config "$("$VOLNFS" check-config "$CFG" 2>&1)"
"$VOLNFS" serve --config "$CFG" >/tmp/server.out 2>/tmp/server.log &
SPID=$!
if until_ok 300 grep -q '^ready ' /tmp/server.out; then pass serve "pid $SPID: $(grep '^ready ' /tmp/server.out)"
else fail serve "no ready line"; tail -20 /tmp/server.log; echo "VOLUME-ZFS FAIL"; exit 1; fi

# ---------------------------------------------------------------- mount + first write
if mount -t nfs -o vers=3,nolock,proto=tcp,port=2049,mountport=20048,mountproto=tcp 127.0.0.1:/exports/data $M; then
  pass mount "$(grep " $M " /proc/mounts | cut -d' ' -f1-4)"
else fail mount; tail -20 /tmp/server.log; echo "VOLUME-ZFS FAIL"; exit 1; fi
dd if=/dev/urandom of=/tmp/a.ref bs=1M count=8 2>/dev/null
A_SUM=$(sha256sum /tmp/a.ref | cut -d' ' -f1)
M2=/tmp/mnt2; mkdir -p $M2
if mount -t nfs -o vers=3,nolock,proto=tcp,port=2049,mountport=20048,mountproto=tcp 127.0.0.1:/exports/sub $M2; then
  pass mount-second-export "/exports/sub (a directory of the same dataset) at $M2"
else fail mount-second-export; fi
if cp /tmp/a.ref $M/a && echo v1 > $M/f && echo in-d > $M/d/x && sync &&
   [ "$(sha256sum $M/a | cut -d' ' -f1)" = "$A_SUM" ] && [ "$(sha256sum $P/a | cut -d' ' -f1)" = "$A_SUM" ]; then
  pass write "8 MiB + small files through the client; same bytes on the dataset"
else fail write; fi
info birth-time "dataset: $($STAT -c '%W %w' $P/a) ; through NFS: $($STAT -c '%W' $M/a) (0/- = not reported)"

# ---------------------------------------------------------------- snapshot create + list
if out=$(ctl snapshot create s1 2>&1); then pass snapshot-create "$out"; else fail snapshot-create "$out"; fi
out=$(ctl snapshot list 2>&1)
if echo "$out" | grep -q 's1' && "$ZFS" list -H -t snapshot -o name | grep -qx "$DS@s1"; then pass snapshot-list "$(echo "$out" | tr '\n' ' ')"
else fail snapshot-list "$out"; fi

# ---------------------------------------------------------------- write more, roll back
if echo v2 > $M/f && dd if=/dev/urandom of=$M/b bs=1M count=4 2>/dev/null && dd if=/dev/urandom of=$M/a bs=1M count=1 conv=notrunc 2>/dev/null &&
   echo new > $M2/sub-new && echo changed > $M2/x && sync &&
   content_is $M/f v2 && [ -e $M/b ] && content_is $M/d/sub-new new; then pass write-more "f=v2, new file b, a overwritten; through the second export x changed and sub-new made"
else fail write-more; fi
t0=$(up)
if out=$(ctl snapshot rollback s1 2>&1); then
  ok=1
  until_ok 100 content_is $M/f v1 || { ok=0; why="f=$(cat $M/f 2>&1)"; }
  until_ok 100 gone $M/b || { ok=0; why="$why b still visible"; }
  [ "$(sha256sum $M/a 2>&1 | cut -d' ' -f1)" = "$A_SUM" ] || { ok=0; why="$why a differs"; }
  content_is $M/d/x in-d || { ok=0; why="$why d/x"; }
  # the second export was paused and rolled back with the first
  until_ok 100 content_is $M2/x in-d || { ok=0; why="$why second export x=$(cat $M2/x 2>&1)"; }
  until_ok 100 gone $M2/sub-new || { ok=0; why="$why second export still shows sub-new"; }
  echo "$out" | grep -q /exports/sub || { ok=0; why="$why the rollback did not pause /exports/sub"; }
  server_alive || { ok=0; why="$why server pid $SPID gone"; }
  [ "$(pidof volnfs)" = "$SPID" ] || { ok=0; why="$why pidof=$(pidof volnfs)"; }
  if [ $ok = 1 ]; then pass snapshot-rollback "$out; client sees old data after $(( $(up) - t0 )) ms; server pid $SPID unchanged"
  else fail snapshot-rollback "$out; $why"; fi
else fail snapshot-rollback "$out"; fi
# the mount still works for new writes
if echo after > $M/g && sync && content_is $P/g after; then pass write-after-rollback; else fail write-after-rollback; fi

# ---------------------------------------------------------------- control channel (RFD 69)
# The agent (examples/vapi_agent.rs) listens; volnfs, started without it, connects out to it.
# A rollback is requested over the channel, the agent is killed while it runs, a new agent
# asks for its result by id, and the channel still answers status after it.
agent_start() { # N: agent N, stdin from a fifo on fd 3, lines in /tmp/agentN.{out,err}
  rm -f /tmp/agent.in; mkfifo /tmp/agent.in
  vapi-agent "$CHAN" < /tmp/agent.in > /tmp/agent$1.out 2> /tmp/agent$1.err &
  APID=$!; exec 3> /tmp/agent.in; }
send() { echo "$1" >&3; }
reply_ok() { grep -q "\"id\":\"$1\",\"ok\":true" /tmp/agent$2.out; }   # ID N
hello_seen() { grep -q '"hello"' /tmp/agent$1.out; }
sent() { grep -q "^> .*\"id\":\"$1\"" /tmp/agent$2.err; }
if ! command -v vapi-agent >/dev/null; then fail channel "no vapi-agent in the guest (run.sh builds examples/vapi_agent)"
else
  absent=$(grep -c 'no agent to talk to' /tmp/server.log)
  agent_start 1
  if until_ok 50 hello_seen 1 && grep -q "\"dataset\":\"$DS\"" /tmp/agent1.out && [ "$absent" = 1 ]; then
    pass channel-hello "volnfs connected out to $CHAN; absence logged $absent time(s) before; $(grep -o '"protocol":[0-9]*' /tmp/agent1.out)"
  else fail channel-hello "absent logged $absent times; agent: $(head -c 300 /tmp/agent1.out) $(cat /tmp/agent1.err)"; fi
  send '{"v":1,"id":"ch-snap","op":"snapshot.create","args":{"name":"ch"}}'
  if until_ok 100 reply_ok ch-snap 1; then pass channel-snapshot-create "$(grep '"ch-snap"' /tmp/agent1.out | head -c 200)"
  else fail channel-snapshot-create "$(cat /tmp/agent1.out /tmp/agent1.err | tail -3)"; fi
  echo changed-after-ch > $M/f && sync
  t0=$(up)
  send '{"v":1,"id":"ch-rb","op":"snapshot.rollback","args":{"name":"ch"}}'
  until_ok 50 sent ch-rb 1
  kill -9 $APID; wait $APID 2>/dev/null; exec 3>&-   # the agent dies with the rollback in flight
  agent_start 2
  if until_ok 50 hello_seen 2 && grep -q '"ch-rb"' /tmp/agent2.out; then
    pass channel-reconnect "a new agent got a hello listing ch-rb: $(grep -oE '"(running|results)":\[[^]]*\]' /tmp/agent2.out | xargs)"
  else fail channel-reconnect "$(head -c 400 /tmp/agent2.out) $(cat /tmp/agent2.err)"; fi
  send '{"v":1,"id":"ch-res","op":"result","args":{"id":"ch-rb","wait":true}}'
  if until_ok 200 reply_ok ch-res 2 && grep '"ch-res"' /tmp/agent2.out | grep '"state":"done"' | grep -q '"rolled_back_to":"ch"' &&
     until_ok 100 content_is $M/f v1 && server_alive; then
    pass channel-rollback "rolled back over the channel, result asked for by id on the next connection after $(( $(up) - t0 )) ms: $(grep '"ch-res"' /tmp/agent2.out | grep -oE '"(paused_ms|state)":[^,]*' | xargs); client sees f=v1"
  else fail channel-rollback "f=$(cat $M/f 2>&1); $(grep '"ch-res"' /tmp/agent2.out | head -c 400) $(tail -3 /tmp/agent2.err)"; fi
  send '{"v":1,"id":"ch-st","op":"status"}'
  if until_ok 100 reply_ok ch-st 2 && grep '"ch-st"' /tmp/agent2.out | grep -q '"snapshot_count":2'; then
    pass channel-status-after-rollback "the channel answers status after the rollback: $(grep '"ch-st"' /tmp/agent2.out | grep -oE '"snapshot_count":[0-9]+')"
  else fail channel-status-after-rollback "$(grep '"ch-st"' /tmp/agent2.out | head -c 300) $(tail -3 /tmp/agent2.err)"; fi
  send '{"v":1,"id":"ch-del","op":"snapshot.delete","args":{"name":"ch"}}'
  until_ok 100 reply_ok ch-del 2 || fail channel-snapshot-delete "$(tail -2 /tmp/agent2.out)"
  exec 3>&-; wait $APID 2>/dev/null
  info channel-log "$(grep 'control channel' /tmp/server.log | sed 's/.*control channel: //; s/ error=.*//' | cut -c1-60 | uniq -c | xargs)"
fi

# ---------------------------------------------------------------- resize
check_df() { # step quota-bytes
  if until_ok 50 near "$(total_bytes $M)" "$2"; then pass "$1" "df through the client: $(df -k $M | awk 'END{print $(NF-4) " KiB total, " $(NF-3) " used, " $(NF-2) " available"}') (refquota $2)"
  else fail "$1" "client total $(total_bytes $M) bytes, refquota $2; $(df -k $M | tail -1 | xargs)"; fi
}
out=$(ctl quota get 2>&1); info quota-get "$out"
check_df df-initial 209715200
if out=$(ctl quota set 314572800 2>&1) && [ "$("$ZFS" get -H -p -o value refquota $DS)" = 314572800 ]; then pass quota-up "$out"; else fail quota-up "$out"; fi
check_df df-after-up 314572800
if out=$(ctl quota set 104857600 2>&1) && [ "$("$ZFS" get -H -p -o value refquota $DS)" = 104857600 ]; then pass quota-down "$out"; else fail quota-down "$out"; fi
check_df df-after-down 104857600
if out=$(ctl quota set 1048576 2>&1); then fail quota-below-usage "accepted: $out"
elif echo "$out" | grep -q quota_below_usage && [ "$("$ZFS" get -H -p -o value refquota $DS)" = 104857600 ]; then pass quota-below-usage "refused: $out"
else fail quota-below-usage "$out"; fi
check_df df-after-refused 104857600

# ---------------------------------------------------------------- snapshot_has_newer, delete
ctl snapshot create s2 >/dev/null 2>&1; ctl snapshot create s3 >/dev/null 2>&1
if out=$(ctl snapshot rollback s1 2>&1); then fail snapshot-has-newer "accepted: $out"
elif echo "$out" | grep -q snapshot_has_newer && "$ZFS" list -H -t snapshot -o name | grep -qx "$DS@s3"; then pass snapshot-has-newer "refused: $out"
else fail snapshot-has-newer "$out"; fi
if out=$(ctl snapshot create s2 2>&1); then fail snapshot-exists "accepted"; elif echo "$out" | grep -q snapshot_exists; then pass snapshot-exists "$out"; else fail snapshot-exists "$out"; fi
if o1=$(ctl snapshot delete s3 2>&1) && o2=$(ctl snapshot delete s2 2>&1) && o3=$(ctl snapshot delete s1 2>&1) &&
   [ -z "$("$ZFS" list -H -t snapshot -o name -r tank)" ]; then pass snapshot-delete "$o1 / $o2 / $o3"
else fail snapshot-delete "$o1 / $o2 / $o3 / left: $("$ZFS" list -H -t snapshot -o name -r tank | xargs)"; fi
if out=$(ctl snapshot delete s1 2>&1); then fail snapshot-not-found "accepted"; elif echo "$out" | grep -q snapshot_not_found; then pass snapshot-not-found "$out"; else fail snapshot-not-found "$out"; fi

# ---------------------------------------------------------------- concurrency
rm -f /tmp/stop /tmp/werr /tmp/wcount /tmp/ncount
mkdir -p $M/many
# writer 1: 1 MiB files rewritten and fsync'd in a loop; writer 2: namespace churn
( n=0; while [ ! -e /tmp/stop ]; do
    dd if=/dev/urandom of=$M/w bs=64k count=16 conv=fsync 2>/tmp/dd.err || echo "dd rc=$? $(cat /tmp/dd.err)" >> /tmp/werr
    n=$((n+1)); echo $n > /tmp/wcount
  done ) &
W1=$!
( n=0; while [ ! -e /tmp/stop ]; do
    { echo $n > $M/many/f$n && mv $M/many/f$n $M/many/g$n && content_is $M/many/g$n $n && rm $M/many/g$n; } 2>>/tmp/werr || echo "churn $n failed" >> /tmp/werr
    n=$((n+1)); echo $n > /tmp/ncount
  done ) &
W2=$!
sleep 1
NC=20 cok=0 cerr=
for i in $(seq 1 $NC); do
  if ctl snapshot create c$i >/tmp/c.out; then cok=$((cok+1)); else cerr="$cerr c$i:$(cat /tmp/c.out)"; fi
  sleep 0.2
done
touch /tmp/stop; wait $W1 $W2
nsnap=$("$ZFS" list -H -t snapshot -o name -r "$DS" | grep -c '@c')
lastok=1; dd if=$M/w of=/dev/null bs=64k 2>/dev/null || lastok=0
if [ $cok = $NC ] && [ ! -s /tmp/werr ] && [ "$nsnap" = $NC ] && [ $lastok = 1 ] && server_alive; then
  pass concurrency "$NC snapshot.create while clients wrote: $(cat /tmp/wcount) x 1 MiB fsync'd rewrites + $(cat /tmp/ncount) create/rename/read/remove rounds, no client error"
else fail concurrency "created $cok/$NC ($nsnap in zfs)$cerr; client errors: $(head -3 /tmp/werr 2>/dev/null | xargs)"; fi
out=$(ctl status 2>&1)
if echo "$out" | grep -q snapshot_count; then info status "$(echo "$out" | grep -oE '(size|used|available|snapshot_count|connected_clients): [0-9]+' | xargs)"
else fail status "$out"; fi
for i in $(seq 1 $NC); do ctl snapshot delete c$i >/dev/null 2>&1; done

# ---------------------------------------------------------------- snapshots browsable (read-only)
echo before > $M/browse && sync
ctl snapshot create b1 >/dev/null || fail snapshot-browse-create
echo after > $M/browse && sync
if until_ok 50 content_is $M/.zfs/snapshot/b1/browse before && content_is $M/browse after; then
  pass snapshot-browse "$M/.zfs/snapshot/b1/browse has the snapshot's bytes, the live file the new ones"
else fail snapshot-browse "snapshot: $(cat $M/.zfs/snapshot/b1/browse 2>&1), live: $(cat $M/browse 2>&1); ls: $(ls $M/.zfs/snapshot 2>&1 | xargs)"; fi
if cp $M/.zfs/snapshot/b1/browse $M/restored && content_is $M/restored before; then pass snapshot-restore-one-file "cp out of the snapshot"
else fail snapshot-restore-one-file; fi
if ls $M/.zfs/snapshot | grep -qx b1; then pass snapshot-list-dir "$(ls $M/.zfs/snapshot | xargs)"; else fail snapshot-list-dir "$(ls $M/.zfs/snapshot 2>&1)"; fi
ro=1
(echo x > $M/.zfs/snapshot/b1/browse) 2>/dev/null && ro=0
(echo x > $M/.zfs/snapshot/b1/newfile) 2>/dev/null && ro=0
mkdir $M/.zfs/snapshot/evil 2>/dev/null && ro=0
rmdir $M/.zfs/snapshot/b1 2>/dev/null && ro=0
"$ZFS" list -H -t snapshot -o name | grep -q '@evil' && ro=0
"$ZFS" list -H -t snapshot -o name | grep -qx "$DS@b1" || ro=0
if [ $ro = 1 ] && content_is $P/.zfs/snapshot/b1/browse before; then pass snapshot-read-only "writes, mkdir and rmdir under .zfs refused; no snapshot made or destroyed"
else fail snapshot-read-only "a write under .zfs got through"; fi
# snapdir: .zfs listed only when visible; found by name either way
hidden_ok=1; ls -a $M | grep -qx .zfs && hidden_ok=0
"$ZFS" set snapdir=visible "$DS"; echo 3 > /proc/sys/vm/drop_caches
umount $M && mount -t nfs -o vers=3,nolock,proto=tcp,port=2049,mountport=20048,mountproto=tcp 127.0.0.1:/exports/data $M
visible_ok=0; ls -a $M | grep -qx .zfs && visible_ok=1
"$ZFS" set snapdir=hidden "$DS"
if [ $hidden_ok = 1 ] && [ $visible_ok = 1 ]; then pass snapshot-snapdir "hidden: not in ls -a; visible: listed"
else fail snapshot-snapdir "hidden listed=$((1-hidden_ok)) visible listed=$visible_ok"; fi
# handles survive a restart while the snapshot exists, and are STALE once it is gone
exec 4< $M/.zfs/snapshot/b1/browse
kill -TERM $SPID; wait $SPID
"$VOLNFS" serve --config "$CFG" >/tmp/server.out 2>>/tmp/server.log 4<&- &   # not holding the test's open file (it would keep $M busy)
SPID=$!
until_ok 300 grep -q '^ready ' /tmp/server.out || fail snapshot-restart "no ready line after restart"
echo 3 > /proc/sys/vm/drop_caches   # the READ must reach the server
if [ "$(cat <&4)" = before ]; then pass snapshot-handle-after-restart "an open file of the snapshot reads after a server restart"
else fail snapshot-handle-after-restart; fi
exec 4<&-
exec 5< $M/.zfs/snapshot/b1/browse
if out=$(ctl snapshot delete b1 2>&1) && ! "$ZFS" list -H -t snapshot -o name | grep -qx "$DS@b1"; then
  echo 3 > /proc/sys/vm/drop_caches
  if cat <&5 >/dev/null 2>&1; then fail snapshot-deleted-while-open "the deleted snapshot still reads"
  else pass snapshot-deleted-while-open "deleted while a client had a file open: $out; the file no longer reads"; fi
else fail snapshot-deleted-while-open "$out"; fi
exec 5<&-

# ---------------------------------------------------------------- full volume (issue 14)
# The refquota (100M after the resize steps) reached through the kernel client: the write
# that does not fit fails at the client with EDQUOT/ENOSPC (its fsync, i.e. COMMIT or a
# FILE_SYNC WRITE, says so: nothing is claimed stable that is not), creating and making
# directories fail the same way or succeed, never another error; the server keeps
# serving; removing the file frees the space and writes work again.
quota_err() { grep -qiE 'quota|no space' "$1"; }
sync
if dd if=/dev/zero of=$M/fill bs=1M count=150 conv=fsync 2>/tmp/fill.err; then
  fail full-write "150M written past a 100M refquota: $(ls -l $P/fill)"
elif quota_err /tmp/fill.err; then pass full-write "$(tail -1 /tmp/fill.err) (server has $(du -m $P/fill | cut -f1)M of it)"
else fail full-write "not a quota error: $(cat /tmp/fill.err | tr '\n' ' ')"; fi
if ( echo x > $M/full-create ) 2>/tmp/full-create.err; then info full-create "an empty-ish file still fits (ZFS keeps slack for metadata)"
elif quota_err /tmp/full-create.err; then pass full-create "$(cat /tmp/full-create.err | tr '\n' ' ')"
else fail full-create "$(cat /tmp/full-create.err | tr '\n' ' ')"; fi
if mkdir $M/full-dir 2>/tmp/full-mkdir.err; then info full-mkdir "a directory still fits"
elif quota_err /tmp/full-mkdir.err; then pass full-mkdir "$(cat /tmp/full-mkdir.err | tr '\n' ' ')"
else fail full-mkdir "$(cat /tmp/full-mkdir.err | tr '\n' ' ')"; fi
if server_alive && ctl status >/dev/null && ls $M >/dev/null && [ "$(sha256sum $M/a | cut -d' ' -f1)" = "$A_SUM" ]; then
  pass full-still-serving "reads, listing and the control socket work on the full volume"
else fail full-still-serving "server alive: $(server_alive && echo yes || echo no)"; fi
rm -f $M/fill $M/full-create; rmdir $M/full-dir 2>/dev/null
# ZFS frees asynchronously: wait until the space is back (up to 20 s)
avail_mb() { df -m $M | awk 'END{print $(NF-2)}'; }
i=0; while [ "$(avail_mb)" -lt 60 ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done
dd if=/dev/urandom of=/tmp/after.ref bs=1M count=20 2>/dev/null
if cp /tmp/after.ref $M/after-full && sync && [ "$(sha256sum $M/after-full | cut -d' ' -f1)" = "$(sha256sum /tmp/after.ref | cut -d' ' -f1)" ]; then
  pass full-then-freed "after rm, 20M written and read back ($(avail_mb)M available)"
else fail full-then-freed "$(avail_mb)M available"; fi
rm -f $M/after-full

# ---------------------------------------------------------------- shutdown
umount $M2 || fail umount-second-export
# the kernel client mounted each snapshot it entered as a submount (its own fsid), as it
# does for any server's crossed mountpoint; they expire after 500 s idle, or go first
subs=$(awk -v m="$M/" 'index($2, m) == 1 {print $2}' /proc/mounts | sort -r)
[ -n "$subs" ] && info client-submounts "$(echo $subs | xargs)"
for s in $subs; do umount "$s" || fail umount-submount "$s"; done
umount $M || fail umount "$(awk -v m="$M" 'index($2, m) == 1' /proc/mounts | xargs)"
kill -TERM $SPID; i=0; while server_alive && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
if server_alive; then fail server-exit "still running 10 s after SIGTERM"; kill -9 $SPID
else wait $SPID; rc=$?; [ $rc = 0 ] && pass server-exit "exit 0 on SIGTERM" || fail server-exit "exit $rc"; fi
# the operator's check, after all of the above (rollbacks, a full volume, snapshots)
if out=$("$VOLNFS" check-state --config "$CFG" 2>&1); then pass check-state "$(echo "$out" | tail -3 | xargs)"
else fail check-state "$(echo "$out" | xargs)"; fi
if grep -qiE 'panic|error' /tmp/server.log; then info server-log "$(grep -iE 'panic|error' /tmp/server.log | head -5 | tr '\n' ' ')"; fi
umount /vols-sub 2>/dev/null

# ---------------------------------------------------------------- full state_dir (issue 14)
# The dataset holding state_dir (handle key and index) reaches its quota while clients work:
# the server keeps serving, says once that the index cannot be committed, keeps the new
# entries in memory; after a restart on the still-full dataset (the index cannot be marked
# "in use", so it is removed and the server runs on one in memory) every handle resolves:
# an open file made before the fill, and one made after it; once space is back, a restart
# keeps the index on disk again and check-state agrees with the tree.
"$ZFS" create -o mountpoint=/vstate -o quota=32M "tank/zones/$UUID/state"
CFG2=/tmp/volnfs-vstate.json
sed 's#"state_dir": "/tmp/volnfs-state"#"state_dir": "/vstate"#' "$CFG" > $CFG2
start_server() { "$VOLNFS" serve --config $CFG2 >/tmp/server.out 2>>/tmp/server-vstate.log 6<&- 7<&- & SPID=$!; until_ok 300 grep -q '^ready ' /tmp/server.out; }
if start_server && mount -t nfs -o vers=3,nolock,proto=tcp,port=2049,mountport=20048,mountproto=tcp 127.0.0.1:/exports/data $M; then
  mkdir -p $M/sf; for i in 1 2 3 4 5 6 7 8 9 10; do echo "b$i" > $M/sf/before$i; done
  sleep 1   # the index's write-behind batch (200 ms) commits these
  dd if=/dev/zero of=/vstate/fill bs=1M count=64 2>/dev/null; sync
  info statefull-filled "$(df -m /vstate | awk 'END{print $(NF-2) "M available on the state dataset"}')"
  for i in 1 2 3 4 5 6 7 8 9 10; do echo "a$i" > $M/sf/after$i; done
  sleep 1
  ok=1; for i in 1 2 3 4 5 6 7 8 9 10; do content_is $M/sf/before$i "b$i" && content_is $M/sf/after$i "a$i" || ok=0; done
  n=$(grep -c 'committing the handle index failed' /tmp/server-vstate.log)
  if [ $ok = 1 ] && server_alive && ctl status >/dev/null; then pass statefull-serving "20 files made and read back with the state dataset full; 'index commit failed' logged $n time(s)"
  else fail statefull-serving "files ok=$ok alive=$(server_alive && echo yes || echo no)"; fi
  [ "$n" -ge 1 ] && [ "$n" -le 2 ] || fail statefull-logged-once "logged $n times"
  exec 6< $M/sf/before3 7< $M/sf/after7
  kill -TERM $SPID; wait $SPID
  if start_server; then
    echo 3 > /proc/sys/vm/drop_caches
    if [ "$(cat <&6)" = b3 ] && [ "$(cat <&7)" = a7 ]; then pass statefull-restart "restarted on the full state dataset; open files made before and after the fill read through their old handles"
    else fail statefull-restart "old handles do not read: $(tail -3 /tmp/server-vstate.log | tr '\n' ' ')"; fi
  else fail statefull-restart "no ready line on the full state dataset: $(tail -3 /tmp/server-vstate.log | tr '\n' ' ')"; fi
  exec 6<&- 7<&-
  # Space again: the next start keeps the index on disk again (the one that could not be
  # marked "in use" was removed at the full start, so it cannot claim to be complete).
  rm -f /vstate/fill; sync
  # ZFS frees asynchronously: wait until the space is back (up to 20 s)
  i=0; while [ "$(df -m /vstate | awk 'END{print $(NF-2)}')" -lt 8 ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done
  exec 6< $M/sf/after3   # while the server runs (a hard mount waits for it)
  kill -TERM $SPID; wait $SPID
  if start_server && echo 3 > /proc/sys/vm/drop_caches && [ "$(cat <&6)" = a3 ] && echo z > $M/sf/freed && content_is $M/sf/freed z; then
    sleep 1   # one index batch
    if ls /vstate | grep -q '^index-.*redb$'; then pass statefull-freed "restarted with space ($(df -m /vstate | awk 'END{print $(NF-2)}')M): old handles read, new files written, the index is on disk again"
    else fail statefull-freed "restarted with space, but no index on disk: $(ls /vstate | xargs)"; fi
  else fail statefull-freed "$(tail -3 /tmp/server-vstate.log | tr '\n' ' ')"; fi
  exec 6<&-
  umount $M || fail statefull-umount
  kill -TERM $SPID; wait $SPID
  if out=$("$VOLNFS" check-state --config $CFG2 2>&1); then pass statefull-check-state "$(echo "$out" | tail -2 | xargs)"
  else fail statefull-check-state "$(echo "$out" | xargs)"; fi
else fail statefull-start "$(tail -3 /tmp/server-vstate.log | tr '\n' ' ')"; fi
info statefull-log "$(ls /vstate | xargs); $(grep -E 'WARN|ERROR' /tmp/server-vstate.log | grep -v control_channel | head -8 | tr '\n' ' ')"
if grep -qiE 'panic' /tmp/server-vstate.log; then fail statefull-panic "$(grep -i panic /tmp/server-vstate.log | head -3)"; fi

zpool export tank
if [ $FAILS = 0 ]; then echo "VOLUME-ZFS OK"; else echo "VOLUME-ZFS FAIL ($FAILS failed)"; tail -30 /tmp/server.log; exit 1; fi
