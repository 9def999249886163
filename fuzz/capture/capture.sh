#!/usr/bin/env bash
# Records real client traffic for the fuzz seeds: starts volnfs on a scratch
# export, puts recording proxies (proxy.py) in front of its NFS, MOUNT and
# portmapper ports, drives them with libnfs (nfs-ls, nfs-cp, nfs-cat, the
# nfsbench load generator in bench/client), rpcinfo and showmount, then
# splits the records into per-target seeds (split.py).
#
#   bash fuzz/capture/capture.sh [CORPUS_DIR]     # default fuzz/corpus
#
# Needs root (the portmapper proxy takes 127.0.0.1:111 so that rpcinfo and
# showmount find it), libnfs-utils, rpcbind (rpcinfo), nfs-common
# (showmount), gcc and libnfs-dev for nfsbench (skipped without them).
# Kernel-client traffic is not captured here (it needs the QEMU guest of
# tests/e2e).
set -euo pipefail
cd "$(dirname "$0")/../.."
corpus=${1:-fuzz/corpus}
work=$(mktemp -d /var/tmp/volnfs-capture.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

cargo build -q --bin volnfs
mkdir -p "$work/export/sub" "$work/raw"
head -c 200000 /dev/urandom >"$work/export/big.bin"
echo hello >"$work/export/hello.txt"
echo inner >"$work/export/sub/inner.txt"
ln -s hello.txt "$work/export/link"

target/debug/volnfs serve --export "$work/export" --name /exports/data \
  --nfs-port 0 --mount-port 0 --portmap-port 0 --state-dir "$work/state" >"$work/ready" 2>"$work/log" &
pids+=($!)
for _ in $(seq 100); do grep -q ready "$work/ready" && break; sleep 0.1; done
read -r nfs mnt pm < <(sed -E 's/.*nfs_port=([0-9]+) mount_port=([0-9]+) portmap_port=([0-9]+).*/\1 \2 \3/' "$work/ready")
echo "== volnfs: nfs $nfs mount $mnt portmap $pm"

# A proxy is ready when it has printed "listening".
proxy() {
  python3 fuzz/capture/proxy.py "$1" "$2" "$work/raw" "$3" >"$work/proxy-$3" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do grep -q listening "$work/proxy-$3" && return 0; sleep 0.1; done
  echo "proxy $3 on port $1 did not start: $(cat "$work/proxy-$3")" >&2
  return 1
}
pnfs=${VOLNFS_CAPTURE_PORT:-40001}
pmnt=$((pnfs + 1))
proxy "$pnfs" "$nfs" nfs
proxy "$pmnt" "$mnt" mount
have_pm=0
if ! ss -ltn | grep -qE '(127.0.0.1|0.0.0.0|\*|\[::\]):111 '; then
  proxy 111 "$pm" portmap
  have_pm=1
fi
url="nfs://127.0.0.1/exports/data"
q="nfsport=$pnfs&mountport=$pmnt"
run() { echo "+ $*"; "$@" >/dev/null 2>&1 || echo "  (exit $?)"; }

run nfs-ls "$url/?$q"
run nfs-ls -R "$url/?$q"
run nfs-ls -l "$url/sub/?$q"
run nfs-cat "$url/hello.txt?$q"
run nfs-cat "$url/big.bin?$q"
run nfs-cp "$url/big.bin?$q" "$work/copy.bin"
run nfs-cp "$work/copy.bin" "$url/uploaded.bin?$q"
run nfs-cp "$work/export/hello.txt" "$url/sub/up.txt?$q"
if make -s -C bench/client nfsbench >/dev/null 2>&1; then
  b=bench/client/nfsbench
  run $b "$url?$q" null -t 1 -q 4
  run $b "$url?$q" meta -n 20 -z 100 -d m1
  run $b "$url?$q" seqwrite -s 256K -b 32K -f w.dat
  run $b "$url?$q" seqread -s 256K -b 32K -f w.dat
  run $b "$url?$q" randwrite -s 256K -b 4K -t 1 -f w.dat
  run $b "$url?$q" randread -s 256K -b 4K -t 1 -f w.dat
  run $b "$url?$q" rm -f w.dat
else
  echo "== nfsbench not built (gcc/libnfs-dev missing): skipped"
fi
if [ "$have_pm" = 1 ]; then
  run rpcinfo -p 127.0.0.1
  run rpcinfo -s 127.0.0.1
  run rpcinfo -m 127.0.0.1
  run rpcinfo -l 127.0.0.1 100003 3
  run rpcinfo -T tcp 127.0.0.1 100003 3
  run rpcinfo -T tcp 127.0.0.1 100005 3
  run rpcinfo -t 127.0.0.1 nfs 3
  run rpcinfo -a "127.0.0.1.$((nfs / 256)).$((nfs % 256))" -T tcp 100003 3
  run showmount -e 127.0.0.1
  run showmount -a 127.0.0.1
  run showmount -d 127.0.0.1
  run nfs-ls "$url/"
else
  echo "== port 111 is taken: no portmapper seeds"
fi
sleep 1
echo "== recorded $(ls "$work/raw" | wc -l) calls"
python3 fuzz/capture/split.py "$work/raw" "$corpus"
