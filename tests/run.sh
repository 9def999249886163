#!/usr/bin/env bash
# Runs every test of volnfs, in this order:
#  1. the illumos type check (tests/illumos/check.sh: every target, zero warnings);
#  2. unit and integration tests (cargo test, real clients: libnfs-utils, nfs3_client,
#     rpcinfo, showmount), once with the Linux implementations of src/sys and once in
#     posix mode (--cfg volnfs_posix: the implementations illumos runs); both with
#     --include-ignored, so the `needs root` and `slow` tests run too;
#  3. the fuzz targets (fuzz/smoke.sh): every committed corpus input once, then a few
#     seconds of fuzzing each (cargo +nightly fuzz; ~3 min with a warm target dir);
#  4. real OpenZFS in a QEMU guest (tests/zfs/run.sh: zone-setup and the
#     snapshot/rollback/resize volume test);
#  5. the Linux kernel client end to end in a QEMU guest (tests/e2e/run.sh), all workloads,
#     then the Docker-style mounts, restart and application-mix workloads again against
#     the posix-mode binary.
# Needs root and the packages .ci/run installs (tests/zfs/run.sh installs its own: contrib
# zfs debs, headers).
#
#   bash tests/run.sh                         # everything
#   VOLNFS_SKIP_ILLUMOS=1 bash tests/run.sh   # without the illumos check (say so loudly)
#   VOLNFS_SKIP_POSIX=1 bash tests/run.sh     # without the posix-mode runs (say so loudly)
#   VOLNFS_SKIP_FUZZ=1 bash tests/run.sh      # without the fuzz targets (say so loudly)
#   VOLNFS_SKIP_ZFS=1 bash tests/run.sh       # without the ZFS guest (say so loudly)
#   VOLNFS_SKIP_E2E=1 bash tests/run.sh       # without the kernel-client guest (say so loudly)
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${VOLNFS_TEST_THREADS:-2}
# The posix-mode build keeps its own target dir, so the two builds do not evict each other.
posix_env=(env RUSTFLAGS="--cfg volnfs_posix" CARGO_TARGET_DIR=target/posix)

if [ "${VOLNFS_SKIP_ILLUMOS:-0}" = 1 ]; then
  echo "== SKIPPED: illumos type check (VOLNFS_SKIP_ILLUMOS=1)"
else
  echo "== illumos type check (tests/illumos/check.sh)"
  bash tests/illumos/check.sh
fi

echo "== cargo test (unit + integration), Linux implementations"
cargo test --all-targets -- --include-ignored --test-threads="$threads"

if [ "${VOLNFS_SKIP_POSIX:-0}" = 1 ]; then
  echo "== SKIPPED: posix-mode cargo test (VOLNFS_SKIP_POSIX=1)"
else
  echo "== cargo test (unit + integration), posix mode: the illumos implementations of src/sys"
  "${posix_env[@]}" cargo test --all-targets -- --include-ignored --test-threads="$threads"
fi

if [ "${VOLNFS_SKIP_FUZZ:-0}" = 1 ]; then
  echo "== SKIPPED: fuzz targets (VOLNFS_SKIP_FUZZ=1)"
else
  echo "== fuzz targets over their committed corpora, then briefly each (fuzz/smoke.sh)"
  bash fuzz/smoke.sh
fi

if [ "${VOLNFS_SKIP_ZFS:-0}" = 1 ]; then
  echo "== SKIPPED: real-ZFS tests (VOLNFS_SKIP_ZFS=1)"
else
  echo "== real OpenZFS in a QEMU guest (tests/zfs/run.sh)"
  bash tests/zfs/run.sh
fi

if [ "${VOLNFS_SKIP_E2E:-0}" = 1 ]; then
  echo "== SKIPPED: kernel-client end-to-end tests (VOLNFS_SKIP_E2E=1)"
  exit 0
fi
echo "== kernel-client end to end (tests/e2e/run.sh)"
bash tests/e2e/run.sh

if [ "${VOLNFS_SKIP_POSIX:-0}" = 1 ]; then
  echo "== SKIPPED: posix-mode kernel-client workloads (VOLNFS_SKIP_POSIX=1)"
  exit 0
fi
echo "== kernel-client end to end, posix-mode binary: mounts, restart, appmix"
"${posix_env[@]}" cargo build --bin volnfs
VOLNFS_BIN=$PWD/target/posix/debug/volnfs VOLNFS_E2E_WORKLOADS="mounts restart appmix" \
  bash tests/e2e/run.sh
