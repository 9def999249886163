#!/usr/bin/env bash
# Builds nfsserve's mirrorfs demo (the Rust NFSv3 crate's own example: a directory served
# through its NFSFileSystem trait) once, and prints the binary's path.
#
#   bench/peers/nfsserve.sh            -> /var/tmp/volnfs-bench-peers/nfsserve-<rev>/mirrorfs
#
# Knobs: NFSSERVE_SRC  a git repository of https://github.com/xetdata/nfsserve to build from
#                      (a clone, or any local mirror); default: clone it from GitHub
#        NFSSERVE_REV  commit to build (default below: the last one checked here)
#        PEERS_CACHE   where builds are kept (default /var/tmp/volnfs-bench-peers)
# The demo listens on 127.0.0.1:11111 (fixed in its source), MOUNT and NFS on that one port,
# and exports "/" (the directory given as its argument). Its code is not part of volnfs: it is
# fetched and built here only to be measured against.
set -euo pipefail
REV=${NFSSERVE_REV:-4a9d99af2ea034dbc3fb8cd654aab83154271f12}
CACHE=${PEERS_CACHE:-/var/tmp/volnfs-bench-peers}
SRC=${NFSSERVE_SRC:-https://github.com/xetdata/nfsserve}
mkdir -p "$CACHE"
co=$CACHE/nfsserve-src
if [ ! -d "$co/.git" ]; then
  git clone -q "$SRC" "$co" >&2
fi
full=$(git -C "$co" rev-parse "$REV^{commit}" 2>/dev/null) || {
  git -C "$co" fetch -q origin >&2; full=$(git -C "$co" rev-parse "$REV^{commit}"); }
out=$CACHE/nfsserve-${full:0:12}
if [ ! -x "$out/mirrorfs" ]; then
  git -C "$co" checkout -q --detach "$full"
  (cd "$co" && CARGO_TARGET_DIR=$CACHE/target cargo build -q --release --features demo --example mirrorfs) >&2
  mkdir -p "$out"; cp "$CACHE/target/release/examples/mirrorfs" "$out/mirrorfs"
fi
echo "$out/mirrorfs"
