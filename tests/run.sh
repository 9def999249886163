#!/usr/bin/env bash
# Runs every test of volnfs: unit and integration tests (cargo test, real clients:
# libnfs-utils, nfs3_client, rpcinfo, showmount), then real OpenZFS in a QEMU guest
# (tests/zfs/run.sh: zone-setup and the snapshot/rollback/resize volume test), then the
# Linux kernel client end to end in a QEMU guest (tests/e2e/run.sh). Needs root and the
# packages .ci/run installs (tests/zfs/run.sh installs its own: contrib zfs debs, headers).
#
#   bash tests/run.sh                      # everything
#   VOLNFS_SKIP_ZFS=1 bash tests/run.sh    # without the ZFS guest (say so loudly)
#   VOLNFS_SKIP_E2E=1 bash tests/run.sh    # without the kernel-client guest (say so loudly)
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo test (unit + integration)"
cargo test --all-targets -- --test-threads="${VOLNFS_TEST_THREADS:-2}"

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
