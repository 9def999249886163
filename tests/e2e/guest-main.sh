#!/bin/bash
# guest-main.sh -- runs INSIDE the guest (chrooted into the read-only 9p host
# root) as root. Mounts the server under test with the real Linux kernel NFSv3
# client and runs the workloads listed in $WORKLOADS. Every check appends one
# line "NAME STATUS TEXT" to $OUT/results (STATUS: PASS FAIL GAP INFO); logs go
# to $OUT/*.log. run.sh (on the host) asserts on these lines.
CTL=/run/e2e/ctl OUT=/run/e2e/out
. $CTL/env
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/tmp TMPDIR=/tmp LANG=C.UTF-8 NO_COLOR=1 TERM=dumb
export GIT_AUTHOR_NAME=e2e GIT_AUTHOR_EMAIL=e2e@example.invalid GIT_COMMITTER_NAME=e2e GIT_COMMITTER_EMAIL=e2e@example.invalid
RES=$OUT/results; : > "$RES"
M=/mnt/v                     # the server under test
K=/mnt/k                     # knfsd (in-guest) mount
# A second mount of the server with its own superblock (nosharecache): the client checks
# lock conflicts between its own processes locally before asking the server, so only a
# lock taken through another mount (another inode, as for another client) tests the
# server's lock manager.
M2=/mnt/v2
mkdir -p $M $K $M2

say()    { echo "e2e: $*"; }
now()    { date +%s.%N; }
el()     { printf '%.1f' "$(echo "$(now) - $1" | bc)"; }
# fd 3 = the serial console (slow under TCG: workloads log to $OUT/w-NAME.log instead)
exec 3>&1
result() { local n=$1 s=$2; shift 2; echo "$n $s $*" >> "$RES"; say "RESULT $n $s $*" >&3; }
# chk NAME CMD... -> PASS/FAIL on the command's status
chk()    { local n=$1; shift; if "$@"; then result "$n" PASS; else result "$n" FAIL "($*)"; fi; }

# the guest clock follows the host's (a file written over 9p gets the host's mtime)
: > $CTL/.clock && date -s "@$(stat -c %.9Y $CTL/.clock)" >/dev/null; rm -f $CTL/.clock

# A Docker host has nfs-common running: rpcbind + rpc.statd (needed by mount.nfs
# for "lock" mounts, and by the in-guest knfsd).
mkdir -p /var/lib/nfs/sm /var/lib/nfs/sm.bak /run/rpcbind
chown statd: /var/lib/nfs/sm /var/lib/nfs/sm.bak /var/lib/nfs 2>/dev/null
rpcbind -w || say "rpcbind failed"
rpc.statd --no-notify || say "rpc.statd failed"

SRV_DEV="$SERVER:$EXPORT"
# mount_v OPTS [helper|syscall]  -- no port options: ports come from the server's portmapper
mount_v() {
  local opts=$1 how=${2:-helper} t=$(now) rc
  if [ "$how" = syscall ]; then
    # Docker's "local" volume driver: mount(2) straight into the kernel with addr=,
    # no /sbin/mount.nfs; the kernel itself asks portmap and does the MOUNT RPC
    timeout 120 mount -i -t nfs -o "addr=$SERVER,$opts" "$SRV_DEV" $M; rc=$?
  else
    timeout 120 mount -t nfs -o "$opts" "$SRV_DEV" $M; rc=$?
  fi
  MOUNT_SECS=$(el $t)
  [ $rc = 0 ] && say "mounted ($how, ${MOUNT_SECS}s): $(grep " $M " /proc/mounts)" >&3
  return $rc
}
umount_v() { timeout -k 2 30 umount $M 2>/dev/null || { say "umount $M failed, forcing lazy"; umount -f -l $M; }; }

# ---------------------------------------------------------------- workloads
w_mounts() {
  local opts
  # 1. exactly what a container host runs (mount.nfs, default "lock")
  if mount_v "vers=3,sec=sys"; then
    opts=$(awk -v m=$M '$2==m{print $4}' /proc/mounts)
    result mount:default PASS "${MOUNT_SECS}s ${opts}"
    echo hello > $M/e2e-mount-probe 2>/dev/null || true
    chk mount:default-rw test "$(cat $M/e2e-mount-probe 2>/dev/null)" = hello
    umount_v
  else result mount:default FAIL "mount -t nfs -o vers=3,sec=sys $SRV_DEV failed"; dmesg | tail -20; return 1; fi
  # 2. Docker "local" driver style: mount(2) with addr=, no helper
  if mount_v "vers=3,sec=sys" syscall; then
    chk mount:docker-syscall test "$(cat $M/e2e-mount-probe)" = hello; umount_v
  else result mount:docker-syscall FAIL "mount(2) addr=$SERVER failed"; dmesg | tail -5; fi
  # 3. read-only
  if mount_v "vers=3,sec=sys,ro"; then
    if test "$(cat $M/e2e-mount-probe)" = hello && ! touch $M/e2e-ro-probe 2>/dev/null; then result mount:ro PASS
    else result mount:ro FAIL "read failed or write allowed"; fi; umount_v
  else result mount:ro FAIL "mount ro failed"; fi
  # 4. nolock: locks are local to the client and must work
  if mount_v "vers=3,sec=sys,nolock"; then
    chk mount:nolock flock -x -w 5 $M/e2e-lock true; umount_v
  else result mount:nolock FAIL "mount nolock failed"; fi
  # 5. MOUNT protocol over UDP (this kernel has no NFS-over-UDP: CONFIG_NFS_DISABLE_UDP_SUPPORT)
  if mount_v "vers=3,sec=sys,mountproto=udp,nolock"; then
    chk mount:mountproto-udp test "$(cat $M/e2e-mount-probe)" = hello; umount_v
  else result mount:mountproto-udp FAIL "mount mountproto=udp failed"; fi
  if mount_v "vers=3,sec=sys,mountproto=udp,nolock" syscall; then
    chk mount:docker-mountproto-udp test "$(cat $M/e2e-mount-probe)" = hello; umount_v
  else result mount:docker-mountproto-udp FAIL "mount(2) mountproto=udp failed"; fi
  # 6. last: locks on a default ("lock") mount go to the server's NLM (found via its
  # portmapper); every probe is bounded so a broken lock manager cannot hang the run.
  if mount_v "vers=3,sec=sys"; then
    w_locks
    umount_v
  else result mount:lock FAIL "default mount for the lock checks failed"; fi
  true
}

# held_by_other FILE -> 0 when a lock on FILE is held elsewhere (a non-blocking flock fails)
held_by_other() { timeout -k 3 90 flock -n -x "$1" true 2>/dev/null; [ $? = 1 ]; }
mount_v2() { mountpoint -q $M2 || timeout 120 mount -t nfs -o vers=3,sec=sys,nosharecache "$SRV_DEV" $M2; }
umount_v2() { mountpoint -q $M2 && { timeout -k 2 30 umount $M2 || umount -f -l $M2; }; true; }

w_locks() {   # flock (whole-file NLM locks) and fcntl byte ranges through the server's NLM
  local f=$M/e2e-lock f2=$M2/e2e-lock t p i rc
  : > $f; rm -f $OUT/lock.holding
  t=$(now)
  if timeout -k 3 60 flock -x -w 50 $f true 2>$OUT/flock.err; then result mount:lock PASS "flock via NLM ($(el $t)s)"
  else result mount:lock FAIL "flock on a lock mount failed (rc $?) after $(el $t)s: $(head -c 200 $OUT/flock.err | tr '\n' ' ')"; return; fi
  mount_v2 || { result lock:second-mount FAIL "nosharecache mount failed"; return; }
  # contention through the server: a holder on one mount; through the other mount a
  # request is refused, then waits and is granted (BLOCKED, then GRANTED) when the holder ends
  flock -x $f bash -c "touch $OUT/lock.holding; sleep 8" & p=$!
  for i in $(seq 100); do [ -e $OUT/lock.holding ] && break; sleep 0.1; done
  if held_by_other $f2; then result lock:conflict PASS "refused by the server while another owner holds the lock"
  else result lock:conflict FAIL "got a lock that another owner holds"; fi
  t=$(now); timeout -k 3 90 flock -x -w 80 $f2 true; rc=$?
  local waited=$(el $t); wait $p
  if [ $rc = 0 ]; then result lock:wait PASS "blocked request granted ${waited}s later (the holder had ~7 s left; the client polls only every 30 s, so sooner means the GRANTED callback arrived)"
  else result lock:wait FAIL "blocked request not granted (rc $rc after ${waited}s)"; fi
  # fcntl byte ranges: a lock on 0-9 stops 5-6 but not 10-19, for an owner on the other mount
  if python3 - "$f" "$f2" <<'PY' > $OUT/fcntl.log 2>&1
import fcntl, os, subprocess, sys
path, other = sys.argv[1], sys.argv[2]
fd = os.open(path, os.O_RDWR)
fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 0)
probe = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
start, length = int(sys.argv[2]), int(sys.argv[3])
try:
    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, length, start)
    print("granted", start, length)
except OSError as e:
    print("refused", start, length, e.errno)
"""
out = [subprocess.run([sys.executable, "-c", probe, other, s, l], capture_output=True, text=True, timeout=60).stdout.strip()
       for s, l in (("5", "2"), ("10", "10"))]
print(out)
sys.exit(0 if out[0].startswith("refused") and out[1].startswith("granted") else 1)
PY
  then result lock:fcntl-range PASS "$(tail -1 $OUT/fcntl.log)"
  else result lock:fcntl-range FAIL "$(tail -3 $OUT/fcntl.log | tr '\n' ' ')"; fi
  umount_v2
  rm -f $f $M/e2e-mount-probe 2>/dev/null
}

w_owner() {   # files made by uid 1000 in the guest; run.sh checks them on the server's disk
  local d=$M/e2e-owner
  rm -rf $d; mkdir $d && chmod 777 $d
  setpriv --reuid=1000 --regid=1000 --clear-groups bash -c "echo u > $d/by1000 && mkdir $d/dir1000 && ln -s by1000 $d/sym1000"
  ls -ln $d
  chk owner:guest-view test "$(stat -c %u:%g $d/by1000) $(stat -c %u:%g $d/dir1000)" = "1000:1000 1000:1000"
  echo "e2e-owner/by1000 e2e-owner/dir1000" > $OUT/owner.paths
  mkdir -p $d/rootonly && chmod 755 $d/rootonly
  if setpriv --reuid=1000 --regid=1000 --clear-groups bash -c ": > $d/rootonly/x" 2>/dev/null; then result owner:eacces FAIL "uid 1000 wrote into a 0755 root dir"
  else result owner:eacces PASS; fi
  # chmod 600 by one user denies another (and not the owner)
  setpriv --reuid=1000 --regid=1000 --clear-groups bash -c "echo secret > $d/secret1000 && chmod 600 $d/secret1000"
  if setpriv --reuid=1001 --regid=1001 --clear-groups cat $d/secret1000 >/dev/null 2>&1; then result owner:chmod600 FAIL "uid 1001 read uid 1000's mode-600 file"
  elif ! setpriv --reuid=1000 --regid=1000 --clear-groups cat $d/secret1000 >/dev/null 2>&1; then result owner:chmod600 FAIL "the owner cannot read its own mode-600 file"
  else result owner:chmod600 PASS; fi
  # chown by root to another uid, seen back
  : > $d/chowned; chown 1234:2345 $d/chowned
  chk owner:chown test "$(stat -c %u:%g $d/chowned)" = 1234:2345
}

w_restart() { # the server restarts (SIGTERM, then kill -9) under a mounted client: no ESTALE
  local d=$M/e2e-restart n=0 mode
  rm -rf $d; mkdir -p $d/sub; echo before > $d/sub/f
  cd $d/sub || return 1     # the cwd is a handle the client keeps across the restarts
  exec 4<f                  # and so is an open file
  # and a lock, which the server loses on restart: the client must reclaim it when the
  # server's status monitor says it restarted (SM_NOTIFY), during the grace period
  : > $d/lockfile; rm -f $OUT/lock.holding
  flock -x $d/lockfile bash -c "touch $OUT/lock.holding; exec sleep 900" & local holder=$!
  for i in $(seq 100); do [ -e $OUT/lock.holding ] && break; sleep 0.1; done
  mount_v2 || result lock:second-mount FAIL "nosharecache mount failed"
  if held_by_other $M2/e2e-restart/lockfile; then result lock:before-restart PASS "held, seen through the other mount"
  else result lock:before-restart FAIL "the lock is not held on the server"; fi
  for mode in term kill; do
    n=$((n+1)); echo $mode > $OUT/restart.req.tmp; mv $OUT/restart.req.tmp $OUT/restart.req
    for i in $(seq 240); do [ -e $OUT/restart.done.$n ] && break; sleep 0.5; done
    [ -e $OUT/restart.done.$n ] || { result restart:$mode FAIL "the host did not restart the server"; continue; }
    local errs=""
    echo "after-$mode" >> f 2>>$OUT/restart.err || errs="$errs append"
    grep -q "after-$mode" f 2>>$OUT/restart.err || errs="$errs read"
    head -c 6 <&4 >/dev/null 2>>$OUT/restart.err || errs="$errs open-fd"
    ls . > /dev/null 2>>$OUT/restart.err || errs="$errs readdir"
    : > "new-$mode" 2>>$OUT/restart.err || errs="$errs create"
    # rename the parent directory: the handles below it must not care
    mv $d/sub $d/sub-$mode 2>>$OUT/restart.err && mv $d/sub-$mode $d/sub 2>>$OUT/restart.err || errs="$errs rename-parent"
    cat f > /dev/null 2>>$OUT/restart.err || errs="$errs read-after-rename"
    if [ -z "$errs" ]; then result restart:$mode PASS "no ESTALE after a $mode restart"
    else result restart:$mode FAIL "failed after a $mode restart:$errs ($(tr '\n' ' ' < $OUT/restart.err))"; fi
    local t=$(now)
    if ! kill -0 $holder 2>/dev/null; then result lock:reclaim-$mode FAIL "the lock holder process died"
    elif held_by_other $M2/e2e-restart/lockfile; then result lock:reclaim-$mode PASS "lock reclaimed after a $mode restart: another process is refused ($(el $t)s, grace included)"
    else result lock:reclaim-$mode FAIL "after a $mode restart another process got the lock the holder had (not reclaimed)"; fi
  done
  kill $holder 2>/dev/null; wait $holder 2>/dev/null
  umount_v2
  exec 4<&-
  cd $M
}

w_df() {      # FSSTAT: the mount's size must be the export's size (run.sh compares to the host)
  df -h $M | tee $OUT/df.txt
  stat -f -c '%S %b %f %a %c %d' $M > $OUT/df.guest
  say "statfs: $(cat $OUT/df.guest)"
  result df:info INFO "$(df -B1 --output=size,used,avail $M | tail -1 | xargs)"
}

w_appmix() {
  local d=$M/e2e-app t t0=$(now) ok=1
  rm -rf $d; mkdir -p $d; cd $d || return 1
  t=$(now); tar xzf "$SRC_TGZ" || ok=0; local tx=$(el $t)
  local n=$(find src -type f | wc -l)
  t=$(now); (cd src && sha256sum --quiet -c "$SRC_SUMS") > $OUT/appmix-sha.log 2>&1 && result app:untar-sha256 PASS "$n files untar ${tx}s, sha256sum -c $(el $t)s" \
    || { result app:untar-sha256 FAIL "$(head -3 $OUT/appmix-sha.log | tr '\n' ' ')"; ok=0; }
  t=$(now)
  if (cd src && git init -q && git add -A && git commit -q -m import && git fsck --strict --no-progress 2>&1 && [ -z "$(git status --porcelain)" ] \
      && [ "$(git ls-files | wc -l)" = "$n" ]) > $OUT/appmix-git.log 2>&1; then result app:git PASS "init/add/commit/fsck $n files $(el $t)s"
  else result app:git FAIL "see appmix-git.log: $(tail -3 $OUT/appmix-git.log | tr '\n' ' ')"; fi
  # build: compile and run a program from the mount (exec over NFS)
  if command -v cc >/dev/null; then
    printf '#include <stdio.h>\nint main(void){puts("built-on-nfs");return 0;}\n' > hello.c
    chk app:cc-exec bash -c 'cc -o hello hello.c && test "$(./hello)" = built-on-nfs'
  fi
  # cp -a must keep modes, owners, times, symlinks, hard links
  ln -s nowhere src/dangling; ln src/.git/HEAD src/hardlink; printf '#!/bin/sh\n' > src/suid; chmod 4711 src/suid
  touch -h -d '2001-02-03 04:05:06.123456789' src/dangling src/suid src; chmod 0750 src
  t=$(now)
  if cp -a src copy; then
    (cd src && find . -printf '%y %m %U %G %s %T@ %l %n %P\n' | sort) > $OUT/appmix-src.lst
    (cd copy && find . -printf '%y %m %U %G %s %T@ %l %n %P\n' | sort) > $OUT/appmix-copy.lst
    if diff -q $OUT/appmix-src.lst $OUT/appmix-copy.lst >/dev/null && diff -r --no-dereference src copy >/dev/null; then
      result app:cp-a PASS "$(wc -l < $OUT/appmix-src.lst) entries, modes/times/links equal, $(el $t)s"
    else result app:cp-a FAIL "$(diff $OUT/appmix-src.lst $OUT/appmix-copy.lst | head -4 | tr '\n' ' ')"; fi
  else result app:cp-a FAIL "cp -a failed"; fi
  # cold cache: drop the client's page cache and verify everything again
  sync; echo 3 > /proc/sys/vm/drop_caches
  chk app:cold-sha256 bash -c "cd copy && sha256sum --quiet -c '$SRC_SUMS'"
  t=$(now); cd $M && rm -rf $d && result app:rm-rf PASS "$(el $t)s" || result app:rm-rf FAIL
  say "appmix total $(el $t0)s"
}

w_fsx() {
  local d=$M/e2e-fsx t=$(now) pids=() i rc=0
  rm -rf $d; mkdir -p $d $OUT/fsx
  for i in $(seq 1 ${FSX_PROCS:-2}); do
    "$FSX" -N "$FSX_OPS" -S $((1000+i)) -f "$E2E_DIR/fsx.toml" -P $OUT/fsx $d/file$i > $OUT/fsx-$i.log 2>&1 &
    pids+=($!)
  done
  for i in "${!pids[@]}"; do wait ${pids[$i]} || { rc=1; say "fsx $((i+1)) FAILED"; tail -20 $OUT/fsx-$((i+1)).log; }; done
  local s=$(el $t)
  if [ $rc = 0 ]; then result fsx PASS "${FSX_PROCS:-2}x$FSX_OPS ops, no corruption, ${s}s"
  else result fsx FAIL "${FSX_PROCS:-2}x$FSX_OPS ops: miscompare or error (see fsx-*.log), ${s}s"; fi
  rm -rf $d
}

# pjd NAME DIR SECONDARY -> $OUT/pjdfstest-NAME.log and an INFO line with the counts
pjd() {
  local name=$1 dir=$2 t=$(now)
  mkdir -p "$dir" /tmp/pjd-secondary
  (cd "$dir" && timeout "${PJD_TIMEOUT:-1800}" "$PJDFSTEST" -c "$E2E_DIR/pjdfstest.toml" -p "$dir" -s /tmp/pjd-secondary $PJD_FILTER) \
    > $OUT/pjdfstest-$name.log 2>&1
  local rc=$?
  sed -i 's/\x1b\[[0-9;]*m//g' $OUT/pjdfstest-$name.log
  local ok=$(grep -cE ' ok$' $OUT/pjdfstest-$name.log) failed=$(grep -cE ' FAILED$| PASSED UNEXPECTEDLY$' $OUT/pjdfstest-$name.log)
  local skip=$(grep -cE ' skipped$' $OUT/pjdfstest-$name.log)
  grep -E ' FAILED$' $OUT/pjdfstest-$name.log | awk '{print $1}' | sort > $OUT/pjdfstest-$name.failed
  result pjdfstest:$name INFO "ok=$ok failed=$failed skipped=$skip rc=$rc time=$(el $t)s"
}

w_pjdfstest() { mount_v "vers=3,sec=sys" || { result pjdfstest:volnfs FAIL "mount failed"; return 1; }
  rm -rf $M/e2e-pjd; pjd volnfs $M/e2e-pjd; rm -rf $M/e2e-pjd; umount_v; }

# in-guest baselines: ext4 on a loop device, used directly ("local") and exported
# by Linux's own knfsd over the guest's loopback
ext4_up() {
  [ -d /srv/ext4/local ] && return 0
  truncate -s 384M /tmp/ext4.img && mkfs.ext4 -q -F /tmp/ext4.img && mkdir -p /srv/ext4 \
    && mount -o loop /tmp/ext4.img /srv/ext4 && mkdir -p /srv/ext4/local /srv/ext4/knfsd
}
knfsd_up() {
  ext4_up || return 1
  mountpoint -q /proc/fs/nfsd || mount -t nfsd nfsd /proc/fs/nfsd
  mkdir -p /var/lib/nfs/v4recovery; touch /var/lib/nfs/etab /var/lib/nfs/rmtab
  exportfs -i -o rw,sync,no_root_squash,no_subtree_check,insecure 127.0.0.1:/srv/ext4/knfsd || return 1
  rpc.mountd -N 4 || return 1
  rpc.nfsd -N 4 -N 4.1 -N 4.2 4 || return 1
  timeout 120 mount -t nfs -o vers=3,sec=sys 127.0.0.1:/srv/ext4/knfsd $K
}
w_knfsd() { knfsd_up || { result pjdfstest:knfsd FAIL "knfsd setup failed"; return 1; }
  pjd knfsd $K/e2e-pjd; rm -rf $K/e2e-pjd; umount $K; }
w_local() { ext4_up || { result pjdfstest:local FAIL "ext4 setup failed"; return 1; }
  pjd local /srv/ext4/local/e2e-pjd; }

# ---------------------------------------------------------------- main
say "workloads: $WORKLOADS (server $SERVER_KIND at $SRV_DEV)"
NEED_V=0; for w in $WORKLOADS; do case $w in owner|restart|df|appmix|fsx) NEED_V=1;; esac; done
for w in $WORKLOADS; do
  t=$(now); say "==== $w ====" >&3
  case $w in
    owner|restart|df|appmix|fsx)
      if ! mountpoint -q $M; then mount_v "vers=3,sec=sys" || { result $w FAIL "mount failed"; continue; }; fi
      cd $M; w_$w > $OUT/w-$w.log 2>&1; cd /;;
    mounts|pjdfstest|knfsd|local)
      mountpoint -q $M && umount_v; w_$w > $OUT/w-$w.log 2>&1;;
    *) say "unknown workload $w";;
  esac
  say "==== $w done in $(el $t)s ====" >&3
  echo "$w $(el $t)" >> $OUT/timings
done
umount_v2; mountpoint -q $M && umount_v
say "guest done"
echo done > $OUT/guest-done
