#!/usr/bin/env bash
# volnfs vs nfs-ganesha on loopback, interleaved A/B (see bench/README.md).
#
#   bench/run.sh [--smoke] [--skip-build] [--dir DIR] [--only volnfs|ganesha] [harness options]
#
#   --smoke        every test once, briefly (reps 1, 64M file, 2 s runs, 200 files, no quiet wait)
#   --skip-build   do not run `cargo build --release` (use target/release/volnfs as is)
#   --dir DIR      work directory: export dirs, server state and logs (default /var/tmp/volnfs-bench)
#   --only X       benchmark one server only
#   anything else is passed to bench/harness.sh, e.g. --reps 3 --size 256M --rand-secs 5
#                  --meta-files 2000 --tests seqwrite,null1 --warmup 1 --spin --out DIR
#
# Ports (loopback only, never 111/2049): ganesha NFS 21049 / MOUNT 21048,
# volnfs NFS 21149 / MOUNT 21148 (no portmapper: libnfs is given both ports).
# Baseline = ganesha, so the `vs ganesha` column is volnfs / ganesha.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
DIR=/var/tmp/volnfs-bench; BUILD=1; ONLY=""; SMOKE=()
ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) SMOKE=(--reps 1 --size 64M --rand-secs 2 --meta-files 200 --quiet-wait 0 --warmup 0); shift;;
    --skip-build) BUILD=0; shift;;
    --dir) DIR=$2; shift 2;;
    --only) ONLY=$2; shift 2;;
    -h|--help) sed -n 2,15p "$0"; exit 0;;
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

VOLNFS_PID=""
cleanup() {
  if [ -n "$VOLNFS_PID" ]; then
    if kill -0 "$VOLNFS_PID" 2>/dev/null; then
      kill -TERM "$VOLNFS_PID"; wait "$VOLNFS_PID" 2>/dev/null || true
    else
      st=0; wait "$VOLNFS_PID" 2>/dev/null || st=$?
      echo "volnfs (pid $VOLNFS_PID) died during the run: exit status $st; log: $DIR/volnfs.log" >&2
    fi
  fi
  [ "$ONLY" = volnfs ] || "$HERE/ganesha.sh" stop --state "$DIR/ganesha" >/dev/null || true
}
trap cleanup EXIT INT TERM

mkdir -p "$DIR"
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
  rm -rf "$DIR/volnfs-export"; mkdir -p "$DIR/volnfs-export"
  : > "$DIR/volnfs.out"
  RUST_LOG=${RUST_LOG:-warn} "$BIN" serve --export "$DIR/volnfs-export" --listen 127.0.0.1 \
      --nfs-port $V_NFS --mount-port $V_MNT --no-portmap \
      > "$DIR/volnfs.out" 2> "$DIR/volnfs.log" < /dev/null &
  VOLNFS_PID=$!
  for _ in $(seq 100); do
    grep -q '^ready ' "$DIR/volnfs.out" && break
    kill -0 "$VOLNFS_PID" 2>/dev/null || { echo "volnfs exited; see $DIR/volnfs.log" >&2; tail -5 "$DIR/volnfs.log" >&2; exit 1; }
    sleep 0.1
  done
  grep -q '^ready ' "$DIR/volnfs.out" || { echo "volnfs not ready after 10 s" >&2; exit 1; }
  TARGETS+=(--target "label=volnfs,nfsport=$V_NFS,mountport=$V_MNT,export=$DIR/volnfs-export,pid=$VOLNFS_PID")
fi

"$HERE/harness.sh" "${TARGETS[@]}" "${SMOKE[@]}" "${ARGS[@]}"
