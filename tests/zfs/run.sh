#!/bin/bash
# tests/zfs/run.sh [zone-setup] [volume] -- volnfs on real OpenZFS in a QEMU guest.
# Prepares the host (apt: Debian bookworm contrib, kernel + headers, qemu; downloads the
# zfs debs), builds the OpenZFS modules once per kernel ABI + zfs version (cached),
# builds volnfs (or uses $VOLNFS_BIN), assembles an initramfs and boots one guest that runs
# the selected tests, each on its own disk:
#   zone-setup  image/test/zone-setup-on-zfs.sh  -> prints ZONE-SETUP-ZFS OK
#   volume      tests/zfs/volume-e2e.sh          -> prints VOLUME-ZFS OK
#   rollback-curve  bench/growth/rollback-zfs.sh -> the rollback pause vs files (not in CI)
# Exit 0 only if every selected test printed its OK line. Must run as root.
# Knobs: ZFS_TEST_CACHE (/var/tmp/zfs-vm), ZFS_TEST_SKIP_PREP=1 (no apt), REBUILD=1,
# ZFS_TEST_TIMEOUT (900 s), ZFS_TEST_MEM (1536 MiB), VOLNFS_BIN, VAPI_AGENT_BIN (else
# cargo builds examples/vapi_agent), ZFS_TEST_KEEP_LOG.
set -euo pipefail
{ # one compound command: bash parses it whole, so editing this file mid-run is safe
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
export ZFS_TEST_CACHE=${ZFS_TEST_CACHE:-/var/tmp/zfs-vm}
TESTS=("$@"); [ ${#TESTS[@]} -gt 0 ] || TESTS=(zone-setup volume)
T0=$(date +%s)
say() { echo "zfs-test: $*" >&2; }
[ "$(id -u)" = 0 ] || { say "must run as root (apt, depmod into a private root)"; exit 2; }
args=() oks=()
for t in "${TESTS[@]}"; do
  case $t in
    zone-setup) args+=("zone-setup=$REPO/image/test/zone-setup-on-zfs.sh"); oks+=("ZONE-SETUP-ZFS OK");;
    volume) args+=("volume=$HERE/volume-e2e.sh"); oks+=("VOLUME-ZFS OK");;
    rollback-curve) args+=("rollback-curve=$REPO/bench/growth/rollback-zfs.sh"); oks+=("ROLLBACK-CURVE OK");;
    *) say "unknown test $t (zone-setup, volume, rollback-curve)"; exit 2;;
  esac
done
if [ "${ZFS_TEST_SKIP_PREP:-0}" != 1 ] || [ ! -s "$ZFS_TEST_CACHE/kabi" ]; then
  "$HERE/host-prep.sh"; fi
t=$(date +%s); KO=$("$HERE/build-module.sh"); say "modules: $KO ($(( $(date +%s) - t ))s)"
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
if [ -n "${VOLNFS_BIN:-}" ]; then BIN=$VOLNFS_BIN
else t=$(date +%s); (cd "$REPO" && cargo build -q --bin volnfs) >&2; BIN=$TARGET/debug/volnfs; say "cargo build: $(( $(date +%s) - t ))s"; fi
# the control channel's agent (examples/vapi_agent.rs) for the volume test
if [ -n "${VAPI_AGENT_BIN:-}" ]; then AGENT=$VAPI_AGENT_BIN
else (cd "$REPO" && cargo build -q --example vapi_agent) >&2; AGENT=$TARGET/debug/examples/vapi_agent; fi
W=$(mktemp -d "${TMPDIR:-/tmp}/volnfs-zfs.XXXXXX")
trap 'rm -rf "$W"' EXIT
t=$(date +%s)
ZFS_TEST_KO=$KO ZFS_TEST_AGENT=$AGENT "$HERE/build-initramfs.sh" "$W/initramfs.gz" "$BIN" "${args[@]}"
say "initramfs: $(( $(date +%s) - t ))s, $(du -h "$W/initramfs.gz" | cut -f1)"
t=$(date +%s)
"$HERE/run-guest.sh" "$W/initramfs.gz" "${#TESTS[@]}" "$W/guest.log" |
  grep -aE --line-buffered '^(ZFS version|GUEST|PASS|FAIL|INFO|VOLUME-ZFS|ZONE-SETUP-ZFS|ROLLBACK-CURVE|zones/)' || true
say "guest: $(( $(date +%s) - t ))s"
[ -n "${ZFS_TEST_KEEP_LOG:-}" ] && cp "$W/guest.log" "$ZFS_TEST_KEEP_LOG"
rc=0
for i in "${!TESTS[@]}"; do
  if grep -q "^${oks[$i]}" "$W/guest.log"; then say "${TESTS[$i]}: OK"; else say "${TESTS[$i]}: FAILED"; rc=1; fi
done
say "total $(( $(date +%s) - T0 ))s"
[ $rc = 0 ] || { say "guest log tail:"; tail -40 "$W/guest.log" >&2; }
exit $rc
}
