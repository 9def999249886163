#!/bin/bash
# tests/e2e/run.sh -- volnfs end to end with the REAL Linux kernel NFSv3 client.
#
# Builds volnfs, starts it on the host inside a private network namespace (so it
# owns port 111 there, never the host's), boots Debian's stock kernel under QEMU
# (TCG) in that namespace, mounts the export like a container host does
# (`mount -t nfs -o vers=3,sec=sys 10.213.0.1:/exports/data`, no port options)
# and runs the workloads; pjdfstest also runs against Linux's knfsd and a local
# ext4 inside the same guest for comparison. Exit status 0 = every check passed.
# Must run as root. See tests/e2e/README.md for the knobs (VOLNFS_E2E_*).
set -uo pipefail
{ # the whole script is one compound command: bash parses it completely before running,
  # so editing this file during a run cannot break the run
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
MODE=${VOLNFS_E2E_MODE:-quick}                  # quick (CI) | long
CACHE=${VOLNFS_E2E_CACHE:-/var/tmp/volnfs-e2e}
SERVER_KIND=${VOLNFS_E2E_SERVER:-volnfs}        # volnfs | ganesha (harness self-check)
WORKLOADS=${VOLNFS_E2E_WORKLOADS:-mounts owner restart df appmix fsx pjdfstest knfsd local}
case $MODE in
  quick) D_FSX=50000   D_TMO=2400 D_SRC=/usr/include/linux;;
  long)  D_FSX=500000  D_TMO=14400 D_SRC=/usr/include;;
  *) echo "VOLNFS_E2E_MODE must be quick or long" >&2; exit 2;;
esac
FSX_OPS=${VOLNFS_E2E_FSX_OPS:-$D_FSX}      # per fsx process (2 run concurrently)
FSX_PROCS=${VOLNFS_E2E_FSX_PROCS:-2}
TMO=${VOLNFS_E2E_TIMEOUT:-$D_TMO}
SRC_DIR=${VOLNFS_E2E_SRC_DIR:-$D_SRC}
PJD_FILTER=${VOLNFS_E2E_PJD_FILTER:-}
MEM=${VOLNFS_E2E_MEM:-1536} SMP=${VOLNFS_E2E_SMP:-2}
PROFILE=${VOLNFS_E2E_PROFILE:-debug}
NET_PREFIX=10.213.0 EXPORT_NAME=/exports/data

T0=$(date +%s.%N)
say()  { echo "e2e: $*" >&2; }
die()  { echo "e2e: ERROR: $*" >&2; exit 2; }
el()   { printf '%.1f' "$(echo "$(date +%s.%N) - $1" | bc)"; }
[ "$(id -u)" = 0 ] || die "must run as root (netns, tap, files owned by other uids)"

# ---------------------------------------------------------------- prerequisites
missing=
for c in qemu-system-x86_64 busybox mount.nfs rpcbind rpc.statd exportfs rpc.nfsd rpc.mountd mkfs.ext4 ip bc git setpriv cpio sha256sum; do
  command -v $c >/dev/null || missing="$missing $c"
done
KERNEL=${VOLNFS_E2E_KERNEL:-$(ls -1 /boot/vmlinuz-* 2>/dev/null | sort -V | tail -1)}
[ -n "$KERNEL" ] || missing="$missing linux-image-amd64"
[ -z "$missing" ] || die "missing:$missing -- apt-get install qemu-system-x86 linux-image-amd64 busybox-static nfs-common nfs-kernel-server rpcbind e2fsprogs bc git cpio"
mkdir -p "$CACHE/runs"
# the guest sees the host root read-only over 9p, except /tmp (its own tmpfs there)
for d in "$HERE" "$CACHE"; do case $d in /tmp|/tmp/*) die "$d is under /tmp, which the guest cannot see; set VOLNFS_E2E_CACHE / move the checkout";; esac; done

# ---------------------------------------------------------------- build volnfs
if [ "$SERVER_KIND" = volnfs ]; then
  if [ -n "${VOLNFS_BIN:-}" ]; then BIN=$VOLNFS_BIN
  else
    t=$(date +%s.%N); pflag=; [ "$PROFILE" = release ] && pflag=--release
    (cd "$REPO" && cargo build $pflag --bin volnfs) >&2 || die "cargo build failed"
    BIN=$REPO/target/$PROFILE/volnfs; say "cargo build ($PROFILE): $(el $t)s"
  fi
  [ -x "$BIN" ] || die "no volnfs binary at $BIN"
fi

# ---------------------------------------------------------------- tools (cached)
PJD_VER=0.2.2 FSX_VER=0.3.2
TOOLS=$CACHE/tools-pjdfstest$PJD_VER-fsx$FSX_VER-$(rustc -V 2>/dev/null | awk '{print "rustc"$2}')
if [ -n "${VOLNFS_E2E_TOOLS:-}" ]; then TOOLS=$VOLNFS_E2E_TOOLS
elif [ ! -x "$TOOLS/bin/pjdfstest" ] || [ ! -x "$TOOLS/bin/fsx" ]; then
  t=$(date +%s.%N)
  (cd "$CACHE" && cargo install --locked --root "$TOOLS.tmp" "pjdfstest@$PJD_VER" "fsx@$FSX_VER") >&2 || die "cargo install pjdfstest fsx failed"
  rm -rf "$TOOLS"; mv "$TOOLS.tmp" "$TOOLS"; say "cargo install pjdfstest fsx: $(el $t)s"
fi
case $TOOLS in /tmp/*) die "tools must not live under /tmp (hidden in the guest)";; esac

# ---------------------------------------------------------------- initramfs (cached)
INITRD=$(VOLNFS_E2E_CACHE=$CACHE VOLNFS_E2E_KERNEL=$KERNEL "$HERE/build-initramfs.sh") || die "initramfs build failed"

# ---------------------------------------------------------------- app-mix source tree (cached)
SRC_KEY=$(echo "$SRC_DIR" | tr '/' '_')-$(find "$SRC_DIR" -type f -printf '%s %T@ %P\n' 2>/dev/null | sort | sha256sum | cut -c1-12)
SRC_TGZ=$CACHE/appmix/src$SRC_KEY.tgz SRC_SUMS=$CACHE/appmix/src$SRC_KEY.sha256
if [ ! -s "$SRC_TGZ" ] || [ ! -s "$SRC_SUMS" ]; then
  mkdir -p "$CACHE/appmix"
  tar -C "$(dirname "$SRC_DIR")" --transform "s,^$(basename "$SRC_DIR"),src," -czf "$SRC_TGZ.tmp" "$(basename "$SRC_DIR")" || die "tar $SRC_DIR"
  x=$(mktemp -d "$CACHE/appmix/x.XXXXXX"); tar -C "$x" -xzf "$SRC_TGZ.tmp"
  (cd "$x/src" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum) > "$SRC_SUMS"
  rm -rf "$x"; mv "$SRC_TGZ.tmp" "$SRC_TGZ"
fi

# ---------------------------------------------------------------- run dir, netns
RUN=$CACHE/runs/$(date +%Y%m%d-%H%M%S)-$$
EXP=$RUN/export OUT=$RUN/out CTL=$RUN/ctl
mkdir -p "$EXP" "$OUT" "$CTL"; chmod 755 "$EXP"
# keep the logs of the last 10 runs (exports are removed at the end of each run)
ls -1d "$CACHE"/runs/*/ 2>/dev/null | head -n -10 | xargs -r rm -rf
NS=volnfs-e2e-$$ TAP=e2e-tap
SERVER_IP=$NET_PREFIX.1 GUEST_IP=$NET_PREFIX.2
SPID= QPID=
cleanup() {
  [ -n "$QPID" ] && kill "$QPID" 2>/dev/null
  stop_server
  [ -n "${GANESHA_NS_PID:-}" ] && kill "$GANESHA_NS_PID" 2>/dev/null
  ip netns pids "$NS" 2>/dev/null | xargs -r kill 2>/dev/null; sleep 0.2
  ip netns del "$NS" 2>/dev/null
  [ "${VOLNFS_E2E_KEEP:-0}" = 1 ] || rm -rf "$EXP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
ip netns add "$NS" || die "ip netns add $NS"
ip -n "$NS" link set lo up
ip -n "$NS" tuntap add "$TAP" mode tap
ip -n "$NS" addr add "$SERVER_IP/24" dev "$TAP"
ip -n "$NS" link set "$TAP" up
# Fuzz seeds from the kernel client (fuzz/capture/kernel.sh): every packet on the tap.
if [ -n "${VOLNFS_E2E_PCAP:-}" ]; then
  ip netns exec "$NS" tcpdump -Z root -i "$TAP" -s 0 -U -w "$VOLNFS_E2E_PCAP" >"$RUN/tcpdump.log" 2>&1 &
  for i in $(seq 50); do grep -q listening "$RUN/tcpdump.log" && break; sleep 0.1; done
  grep -q listening "$RUN/tcpdump.log" || die "tcpdump did not start: $(cat "$RUN/tcpdump.log")"
fi

# ---------------------------------------------------------------- server
stop_server() {
  [ -n "$SPID" ] || return 0
  kill -TERM "$SPID" 2>/dev/null
  for i in $(seq 100); do kill -0 "$SPID" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$SPID" 2>/dev/null; then kill -9 "$SPID"; SERVER_STOP="killed after 10 s"
  else wait "$SPID" 2>/dev/null; SERVER_STOP="exit $?"; fi
  SPID=
}
t=$(date +%s.%N)
case $SERVER_KIND in
  volnfs)
    # mount port 0 = ephemeral: the client can only find it through our portmapper
    # a private copy: a concurrent `cargo build` cannot swap the binary under the run
    # (named e2e-server so a stray `pkill volnfs` elsewhere does not hit it)
    cp "$BIN" "$RUN/e2e-server"
    sopts=(); "$BIN" serve --help 2>&1 | grep -q -- --state-dir && sopts+=(--state-dir "$RUN/state")
    # a short lock grace period: the restart workload waits it out twice
    lopts=(); "$BIN" serve --help 2>&1 | grep -q -- --lock-grace && lopts+=(--lock-grace "${VOLNFS_E2E_LOCK_GRACE:-15}")
    start_volnfs_server() {  # the same export, state and ports every time (restarts keep handles)
      : > "$RUN/server.out"
      NO_COLOR=1 ip netns exec "$NS" "$RUN/e2e-server" serve --export "$EXP" --name "$EXPORT_NAME" --listen "$SERVER_IP" \
        --nfs-port 2049 --mount-port 20048 --portmap-port 111 --allow "$NET_PREFIX.0/24" "${sopts[@]}" "${lopts[@]}" \
        > "$RUN/server.out" 2>> "$RUN/server.log" &
      SPID=$!
      for i in $(seq 300); do grep -q '^ready ' "$RUN/server.out" 2>/dev/null && break; kill -0 $SPID 2>/dev/null || break; sleep 0.1; done
      grep -q '^ready ' "$RUN/server.out"
    }
    start_volnfs_server || { tail -20 "$RUN/server.log" >&2; die "volnfs did not print ready (see $RUN/server.log)"; }
    say "volnfs up in $(el $t)s: $(grep '^ready ' "$RUN/server.out")"
    ;;
  ganesha)
    # nfs-ganesha + a private rpcbind on 111 inside the netns (harness self-check only).
    # Ganesha answers MNT only for its real Path, so the export name is the path.
    EXPORT_NAME=$EXP
    cat > "$RUN/ganesha.conf" <<CONF
NFS_CORE_PARAM { Protocols = 3; NFS_Port = 2049; MNT_Port = 20048; Bind_Addr = $SERVER_IP;
  Enable_NLM = false; Enable_RQUOTA = false; }
NFSV4 { Graceless = true; }
EXPORT { Export_Id = 1; Path = $EXP; Pseudo = $EXP; Access_Type = RW; Squash = No_Root_Squash;
  SecType = sys; Protocols = 3; Transports = TCP, UDP; FSAL { Name = VFS; } }
LOG { Default_Log_Level = EVENT; }
CONF
    ip netns exec "$NS" unshare -m --propagation private bash -c '
      mount -t tmpfs tmpfs /run; mkdir -p /run/rpcbind
      rpcbind -f -w & for i in $(seq 100); do [ -S /run/rpcbind.sock ] && break; sleep 0.1; done
      ganesha.nfsd -F -f $1/ganesha.conf -L $1/server.log -p $1/ganesha.pid -N NIV_EVENT & wait' _ "$RUN" \
      > "$RUN/server.out" 2>&1 &
    GANESHA_NS_PID=$!
    for i in $(seq 150); do ip netns exec "$NS" ss -ltn | grep -q ":2049 " && break; sleep 0.2; done
    ip netns exec "$NS" ss -ltn | grep -q ":2049 " || die "ganesha did not start ($RUN/server.log)"
    say "ganesha up in $(el $t)s"
    ;;
  *) die "VOLNFS_E2E_SERVER must be volnfs or ganesha";;
esac

# ---------------------------------------------------------------- guest
cat > "$CTL/env" <<ENV
GUEST_IP=$GUEST_IP
GUEST_PREFIX=24
SERVER=$SERVER_IP
SERVER_KIND=$SERVER_KIND
EXPORT='$EXPORT_NAME'
WORKLOADS='$WORKLOADS'
FSX='$TOOLS/bin/fsx'
PJDFSTEST='$TOOLS/bin/pjdfstest'
PJD_FILTER='$PJD_FILTER'
FSX_OPS=$FSX_OPS
FSX_PROCS=$FSX_PROCS
SRC_TGZ='$SRC_TGZ'
SRC_SUMS='$SRC_SUMS'
E2E_DIR='$HERE'
ENV
cp "$HERE/guest-main.sh" "$CTL/guest-main.sh"
# this machine's /dev/kvm may be PVM (kvm_pvm), which cannot boot a stock kernel: TCG then
ACCEL=${VOLNFS_E2E_ACCEL:-auto}
if [ "$ACCEL" = auto ]; then
  ACCEL=tcg
  if [ -w /dev/kvm ] && [ ! -d /sys/module/kvm_pvm ] && grep -qwE 'vmx|svm' /proc/cpuinfo; then ACCEL=kvm; fi
fi
if [ "$ACCEL" = kvm ]; then ACC=(-accel kvm -cpu host); else ACC=(-accel tcg,thread=multi,tb-size=512 -cpu max); fi
say "booting guest ($ACCEL, ${MEM}M, $SMP vCPU; timeout ${TMO}s); workloads: $WORKLOADS; logs: $RUN"
tg=$(date +%s.%N)
timeout "$TMO" ip netns exec "$NS" qemu-system-x86_64 -nodefaults -no-user-config -M pc "${ACC[@]}" \
  -m "$MEM" -smp "$SMP" -display none -no-reboot \
  -chardev file,id=con,path="$RUN/console.log" -serial chardev:con \
  -kernel "$KERNEL" -initrd "$INITRD" -append "console=ttyS0 panic=-1 rdinit=/init loglevel=4" \
  -fsdev local,id=fs0,path=/,security_model=none,readonly=on,multidevs=remap -device virtio-9p-pci,fsdev=fs0,mount_tag=hostroot \
  -fsdev local,id=fs1,path="$CTL",security_model=none -device virtio-9p-pci,fsdev=fs1,mount_tag=ctl \
  -fsdev local,id=fs2,path="$OUT",security_model=none -device virtio-9p-pci,fsdev=fs2,mount_tag=out \
  -netdev tap,id=n0,ifname=$TAP,script=no,downscript=no -device virtio-net-pci,netdev=n0 \
  </dev/null > "$RUN/qemu.log" 2>&1 &
QPID=$!
# progress: follow the console for the guest's own lines
tail -n +1 -F --pid=$QPID "$RUN/console.log" 2>/dev/null | sed -u 's/\r$//' | grep --line-buffered -E '^e2e: (RESULT|====|mounted)|e2e-init|Kernel panic|BUG:' >&2 &
TPID=$!
# watchdog: if the server dies, a hard mount would hang the guest until the timeout
SERVER_DIED=; RESTARTS=0
while kill -0 $QPID 2>/dev/null; do
  # the guest's `restart` workload asks for a server restart (term = SIGTERM, kill = kill -9)
  if [ "$SERVER_KIND" = volnfs ] && [ -e "$OUT/restart.req" ]; then
    mode=$(cat "$OUT/restart.req"); rm -f "$OUT/restart.req"; RESTARTS=$((RESTARTS+1))
    if [ "$mode" = kill ]; then kill -9 "$SPID"; else kill -TERM "$SPID"; fi
    wait "$SPID" 2>/dev/null; say "server stopped ($mode) for restart $RESTARTS, exit $?"
    if start_volnfs_server; then say "server restarted: $(grep '^ready ' "$RUN/server.out")"
    else say "server did not restart"; fi
    touch "$OUT/restart.done.$RESTARTS"
  fi
  if [ -n "$SPID" ] && ! kill -0 "$SPID" 2>/dev/null; then
    SERVER_DIED="volnfs exited while the guest was running ($(date +%T)); see $RUN/server.log"
    say "$SERVER_DIED -- stopping the guest"; sleep 5; kill $QPID 2>/dev/null; break
  fi
  sleep 1
done
wait $QPID; qrc=$?; QPID=
for i in $(seq 30); do kill -0 $TPID 2>/dev/null || break; sleep 0.1; done
GUEST_SECS=$(el $tg)
sleep 0.3
[ $qrc = 124 ] && say "guest TIMEOUT after ${TMO}s"

# ---------------------------------------------------------------- host-side checks
RES=$OUT/results; touch "$RES"
hres() { echo "$1 $2 ${*:3}" >> "$RES"; }
[ -e "$OUT/guest-done" ] || hres guest FAIL "guest did not finish (qemu rc=$qrc, ${GUEST_SECS}s; see $RUN/console.log)"
if [ "$SERVER_KIND" = volnfs ]; then
  if [ -n "$SERVER_DIED" ]; then hres server FAIL "$SERVER_DIED"; SPID=
  elif [ -n "$SPID" ] && ! kill -0 "$SPID" 2>/dev/null; then hres server FAIL "volnfs died during the run (see $RUN/server.log)"; SPID=; fi
fi
if [ -s "$OUT/owner.paths" ]; then   # ownership on the server's disk
  got=$(cd "$EXP" && stat -c %u:%g $(cat "$OUT/owner.paths") 2>&1 | xargs)
  if [ "$got" = "1000:1000 1000:1000" ]; then hres owner:server-disk PASS "uid/gid 1000 on disk"
  else hres owner:server-disk FAIL "on disk: $got"; fi
fi
if [ -s "$OUT/df.guest" ]; then      # FSSTAT total == the export's filesystem size
  read -r gS gb _ < "$OUT/df.guest"; read -r hS hb < <(stat -f -c '%S %b' "$EXP")
  g=$((gS*gb)) h=$((hS*hb))
  if [ $((g > h ? g-h : h-g)) -le $((h/100)) ]; then hres df PASS "size $g bytes (server fs $h)"
  else hres df FAIL "guest sees $g bytes, server fs has $h"; fi
fi
if [ "$SERVER_KIND" = volnfs ]; then
  stop_server
  case $SERVER_STOP in "exit 0") hres server:sigterm PASS;; *) hres server:sigterm FAIL "$SERVER_STOP";; esac
fi

# pjdfstest: volnfs must fail nothing that knfsd passes, unless KNOWN_DIFFERENCES.md explains it
pjd_line() { # name -> "ok/(ok+failed)"
  local l; l=$(grep "^pjdfstest:$1 INFO " "$RES" | head -1)
  [ -n "$l" ] || { echo "-"; return; }
  local ok=$(sed -n 's/.* ok=\([0-9]*\).*/\1/p' <<<"$l") f=$(sed -n 's/.* failed=\([0-9]*\).*/\1/p' <<<"$l") s=$(sed -n 's/.* skipped=\([0-9]*\).*/\1/p' <<<"$l")
  echo "$ok/$((ok+f)) (skipped $s)"
}
if [ -f "$OUT/pjdfstest-volnfs.failed" ]; then
  # test names (or globs such as `*::block`) in backticks in KNOWN_DIFFERENCES.md
  grep -oE '`[*a-z0-9_]+(::[*a-z0-9_]+)+`' "$HERE/KNOWN_DIFFERENCES.md" 2>/dev/null | tr -d '`' | sort -u > "$RUN/known.txt"
  ok=$(sed -n 's/^pjdfstest:volnfs INFO ok=\([0-9]*\).*/\1/p' "$RES")
  if [ -f "$OUT/pjdfstest-knfsd.failed" ]; then
    comm -23 "$OUT/pjdfstest-volnfs.failed" "$OUT/pjdfstest-knfsd.failed" > "$RUN/pjd-worse.txt"
  else cp "$OUT/pjdfstest-volnfs.failed" "$RUN/pjd-worse.txt"; fi
  mapfile -t known < "$RUN/known.txt"
  while read -r tname; do
    hit=0; for k in "${known[@]}"; do [[ $tname == $k ]] && { hit=1; break; }; done
    [ $hit = 1 ] || echo "$tname"
  done < "$RUN/pjd-worse.txt" > "$RUN/pjd-unexplained.txt"
  min=100; [ -n "$PJD_FILTER" ] && min=1
  if [ "${ok:-0}" -lt $min ]; then hres pjdfstest:bar FAIL "volnfs passed only ${ok:-0} tests"
  elif [ -s "$RUN/pjd-unexplained.txt" ]; then
    hres pjdfstest:bar FAIL "$(wc -l < "$RUN/pjd-unexplained.txt") fail where knfsd passes, not in KNOWN_DIFFERENCES.md: $(head -12 "$RUN/pjd-unexplained.txt" | xargs)$([ "$(wc -l < "$RUN/pjd-unexplained.txt")" -gt 12 ] && echo " ... (all: $RUN/pjd-unexplained.txt)")"
  else hres pjdfstest:bar PASS "$(wc -l < "$RUN/pjd-worse.txt") differences from knfsd, all in KNOWN_DIFFERENCES.md"; fi
fi
for w in $WORKLOADS; do   # every requested workload must have reported
  case $w in mounts) k=mount:;; pjdfstest) k=pjdfstest:volnfs;; knfsd) k=pjdfstest:knfsd;; local) k=pjdfstest:local;; *) k=$w;; esac
  [ "$w" = appmix ] && k=app:
  grep -q "^$k" "$RES" || hres "$w" FAIL "no result (guest died or timed out?)"
done

# ---------------------------------------------------------------- summary
echo "==== volnfs e2e summary ($MODE, server=$SERVER_KIND, guest ${GUEST_SECS}s, total $(el $T0)s) ===="
sum() { # prefix label
  local l; l=$(grep -E "^$1" "$RES"); [ -n "$l" ] || return 0
  local p=$(grep -c ' PASS' <<<"$l") f=$(grep -c ' FAIL' <<<"$l") g=$(grep -c ' GAP' <<<"$l")
  printf '%-10s %s\n' "$2:" "$p passed, $f failed$([ $g -gt 0 ] && echo ", $g known gap")$(grep ' FAIL' <<<"$l" | awk '{printf "; FAIL %s", $1}')$(grep ' GAP' <<<"$l" | awk '{printf "; GAP %s", $1}')"
}
sum 'mount:' mounts
sum 'lock:' locks
sum 'owner' owner
sum 'restart:' restart
sum 'df ' df
sum 'app:' appmix
grep '^fsx ' "$RES" | sed 's/^fsx \([A-Z]*\) /fsx:       \1 /'
grep -q '^pjdfstest:' "$RES" && echo "pjdfstest $SERVER_KIND: $(pjd_line volnfs); knfsd: $(pjd_line knfsd); local: $(pjd_line local)"
grep '^pjdfstest:bar ' "$RES" | sed 's/^pjdfstest:bar /pjdfstest bar: /'
grep -E '^(guest|server)' "$RES" | sed 's/^/          /'
flist() { # file -> "N: first names ..."
  local n; n=$(wc -l < "$1"); echo "$n: $(grep -vE '::(block|char)$' "$1" | head -12 | xargs)$(c=$(grep -cE '::(block|char)$' "$1"); [ "$c" -gt 0 ] && echo " + $c ::block/::char (device nodes)")"; }
for t in volnfs knfsd local; do
  [ -s "$OUT/pjdfstest-$t.failed" ] && printf 'pjdfstest %-7s failed %s\n' "$t" "$(flist "$OUT/pjdfstest-$t.failed")"
done
fails=$(grep -c ' FAIL' "$RES")
echo "details: $RES (logs in $RUN)"
if [ "$fails" -gt 0 ]; then echo "E2E FAILED: $fails check(s)"; grep ' FAIL' "$RES" | sed 's/^/  /'; exit 1; fi
echo "E2E PASSED"
exit 0
}
