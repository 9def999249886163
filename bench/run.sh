#!/usr/bin/env bash
# volnfs vs nfs-ganesha on loopback, interleaved A/B (see bench/README.md).
#
#   bench/run.sh [--smoke] [--skip-build] [--dir DIR] [--only volnfs|ganesha] [harness options]
#
#   --smoke        every test once, briefly (reps 1, 64M file, 2 s runs, 200 files, no quiet wait)
#   --skip-build   do not run `cargo build --release` (use target/release/volnfs as is)
#   --dir DIR      work directory: export dirs, server state and logs (default /var/tmp/volnfs-bench)
#   --only X       benchmark one server only
#   --variants     also run volnfs-async (--async: namespace changes not fsynced before the
#                  reply, ganesha's behaviour) and volnfs-nostore (--no-state: handle index
#                  in memory), to measure what sync metadata and the handle store cost
#   --compare LABEL=BIN  also run another volnfs binary (e.g. a build of an older commit)
#                  as target LABEL, interleaved with the rest (repeatable): an A/B of two builds
#   --no-local     leave out the local rows (`local`: the same operations as system calls on
#                  the work directory's filesystem, no NFS; `local-sync`: the same, with the
#                  metadata test fsyncing the directory after each create and remove, as volnfs
#                  does): the physical limit each server's number is read against
#   --fresh-fs SIZE  make a new ext4 filesystem of SIZE (e.g. 16G, sparse file DIR.img, loop
#                  device) and mount it on DIR for the run: every target starts on the same
#                  empty filesystem (ext4's create rate differs many-fold between directories
#                  of an aged filesystem); unmounted and removed at the end
#   --peers        also run peers that are not NFS servers people deploy but Rust crates:
#                  nfsserve's mirrorfs example (bench/peers/nfsserve.sh builds it once)
#   anything else is passed to bench/harness.sh, e.g. --reps 3 --size 256M --rand-secs 5
#                  --meta-files 2000 --tests seqwrite,null1 --warmup 1 --spin --out DIR
#
# Ports (loopback only, never 111/2049): ganesha NFS 21049 / MOUNT 21048,
# volnfs NFS 21149 / MOUNT 21148 (no portmapper: libnfs is given both ports).
# Baseline = ganesha, so the `vs ganesha` column is volnfs / ganesha.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
DIR=/var/tmp/volnfs-bench; BUILD=1; ONLY=""; SMOKE=(); VARIANTS=0; COMPARE=(); LOCAL=1; FRESH=""; PEERS=0
ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) SMOKE=(--reps 1 --size 64M --rand-secs 2 --meta-files 200 --quiet-wait 0 --warmup 0); shift;;
    --skip-build) BUILD=0; shift;;
    --dir) DIR=$2; shift 2;;
    --only) ONLY=$2; shift 2;;
    --variants) VARIANTS=1; shift;;
    --compare) COMPARE+=("$2"); shift 2;;
    --no-local) LOCAL=0; shift;;
    --fresh-fs) FRESH=$2; shift 2;;
    --peers) PEERS=1; shift;;
    -h|--help) sed -n 2,27p "$0"; exit 0;;
    *) ARGS+=("$1"); shift;;
  esac
done
G_NFS=21049; G_MNT=21048; V_NFS=21149; V_MNT=21148

need() { command -v "$1" >/dev/null || { echo "missing $1: apt-get install $2" >&2; exit 1; }; }
need gcc gcc; need make make; need pkg-config pkg-config; need ss iproute2; need python3 python3
pkg-config --exists libnfs || { echo "missing libnfs: apt-get install libnfs-dev" >&2; exit 1; }
[ "$ONLY" = volnfs ] || need ganesha.nfsd "nfs-ganesha nfs-ganesha-vfs"

if [ "$BUILD" = 1 ] && [ "$ONLY" != ganesha ]; then
  (cd "$ROOT" && cargo build --release --bin volnfs)
fi
make -s -C "$HERE/client"
make -s -C "$HERE/shim"

VOLNFS_PIDS=()
cleanup() {
  for pid in "${VOLNFS_PIDS[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
    else
      st=0; wait "$pid" 2>/dev/null || st=$?
      echo "a server (pid $pid) died during the run: exit status $st; logs: $DIR/*.log" >&2
    fi
  done
  [ "$ONLY" = volnfs ] || "$HERE/ganesha.sh" stop --state "$DIR/ganesha" >/dev/null || true
  if [ -n "$FRESH" ] && mountpoint -q "$DIR"; then
    umount "$DIR" || umount -l "$DIR"; rm -f "$DIR.img"; fi
}
trap cleanup EXIT INT TERM

mkdir -p "$DIR"
if [ -n "$FRESH" ]; then
  need mkfs.ext4 e2fsprogs
  mountpoint -q "$DIR" && { echo "$DIR is already a mount point" >&2; exit 1; }
  rm -f "$DIR.img"; truncate -s "$FRESH" "$DIR.img"
  mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$DIR.img"
  mount -o loop "$DIR.img" "$DIR"
  echo "# fresh ext4 of $FRESH on $DIR ($(findmnt -no SOURCE "$DIR"))"
fi
TARGETS=()
if [ "$ONLY" != volnfs ]; then
  rm -rf "$DIR/ganesha-export"; mkdir -p "$DIR/ganesha-export"
  GP=$("$HERE/ganesha.sh" start --export "$DIR/ganesha-export" --nfsport $G_NFS --mountport $G_MNT \
       --state "$DIR/ganesha")
  TARGETS+=(--target "label=ganesha,nfsport=$G_NFS,mountport=$G_MNT,export=$DIR/ganesha-export,pid=$GP")
fi
if [ "$ONLY" != ganesha ]; then
  BIN=$ROOT/target/release/volnfs
  [ -x "$BIN" ] || { echo "no $BIN (drop --skip-build)" >&2; exit 1; }
  # start_volnfs LABEL NFS_PORT MOUNT_PORT [extra serve flags...]
  start_volnfs() {
    local label=$1 nfs=$2 mnt=$3 bin=${START_BIN:-$BIN}; shift 3
    rm -rf "$DIR/$label-export" "$DIR/$label-state"; mkdir -p "$DIR/$label-export"
    : > "$DIR/$label.out"
    RUST_LOG=${RUST_LOG:-warn} "$bin" serve --export "$DIR/$label-export" --listen 127.0.0.1 \
        --nfs-port "$nfs" --mount-port "$mnt" --no-portmap "$@" \
        > "$DIR/$label.out" 2> "$DIR/$label.log" < /dev/null &
    local pid=$!
    VOLNFS_PIDS+=("$pid")
    for _ in $(seq 100); do
      grep -q '^ready ' "$DIR/$label.out" && break
      kill -0 "$pid" 2>/dev/null || { echo "$label exited; see $DIR/$label.log" >&2; tail -5 "$DIR/$label.log" >&2; exit 1; }
      sleep 0.1
    done
    grep -q '^ready ' "$DIR/$label.out" || { echo "$label not ready after 10 s" >&2; exit 1; }
    TARGETS+=(--target "label=$label,nfsport=$nfs,mountport=$mnt,export=$DIR/$label-export,pid=$pid")
  }
  start_volnfs volnfs $V_NFS $V_MNT --state-dir "$DIR/volnfs-state"
  if [ "$VARIANTS" = 1 ]; then
    start_volnfs volnfs-async 21249 21248 --state-dir "$DIR/volnfs-async-state" --async
    start_volnfs volnfs-nostore 21349 21348 --no-state
  fi
  port=21449
  for c in "${COMPARE[@]}"; do
    label=${c%%=*} cbin=${c#*=}
    [ -x "$cbin" ] || { echo "--compare $c: no executable $cbin" >&2; exit 1; }
    START_BIN=$cbin start_volnfs "$label" $port $((port - 1)) --state-dir "$DIR/$label-state"
    port=$((port + 100))
  done
fi

if [ "$PEERS" = 1 ]; then
  # nfsserve's mirrorfs demo: port 11111 (fixed in its source), MOUNT on the same port, export "/"
  NS=$("$HERE/peers/nfsserve.sh")
  ss -ltn "sport = :11111" | grep -q LISTEN && { echo "port 11111 is taken; nfsserve's demo needs it" >&2; exit 1; }
  rm -rf "$DIR/nfsserve-export"; mkdir -p "$DIR/nfsserve-export"
  "$NS" "$DIR/nfsserve-export" > "$DIR/nfsserve.log" 2>&1 < /dev/null &
  NSP=$!; VOLNFS_PIDS+=("$NSP")
  for _ in $(seq 100); do ss -ltn "sport = :11111" | grep -q LISTEN && break; sleep 0.1; done
  TARGETS+=(--target "label=nfsserve,nfsport=11111,mountport=11111,export=/,pid=$NSP")
fi

# after the servers: the first target is the baseline of the ratio column
if [ "$LOCAL" = 1 ]; then
  for l in local local-sync; do rm -rf "${DIR:?}/$l-export"; mkdir -p "$DIR/$l-export"; done
  TARGETS+=(--target "label=local,local=$DIR/local-export")
  TARGETS+=(--target "label=local-sync,local=$DIR/local-sync-export,sync=1")
fi
"$HERE/harness.sh" "${TARGETS[@]}" "${SMOKE[@]}" "${ARGS[@]}"
